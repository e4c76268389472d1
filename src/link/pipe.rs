//! Forwarding one TCP connection through a link, honouring delay, rate, pause and cut.

use super::protocol::LinkSettings;
use crate::clock::PreciseTimer;
use bytes::{Bytes, BytesMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Chunks in flight per direction: bounds memory while paused (then TCP pushes back).
const IN_FLIGHT: usize = 256;
const READ_SIZE: usize = 64 * 1024;

/// Byte counters of one link, shared by its connections.
#[derive(Default)]
pub struct Counters {
    pub connections: AtomicU64,
    pub to_upstream: AtomicU64,
    pub to_node: AtomicU64,
}

/// Forward `node` <-> `upstream` until either side closes or the link is cut; on a cut, both
/// sockets are reset (SO_LINGER 0), as a partition would look to PostgreSQL.
pub async fn forward(
    mut node: TcpStream,
    mut upstream: TcpStream,
    settings: watch::Receiver<LinkSettings>,
    counters: &Counters,
) {
    let _ = node.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let cut = {
        let (nr, nw) = node.split();
        let (ur, uw) = upstream.split();
        let up = direction(nr, uw, settings.clone(), &counters.to_upstream);
        let down = direction(ur, nw, settings.clone(), &counters.to_node);
        tokio::select! {
            _ = async { tokio::join!(up, down) } => false,
            _ = wait_for_cut(settings) => true,
        }
    };
    if cut {
        reset_on_close(&node);
        reset_on_close(&upstream);
    }
}

/// Make dropping the socket send RST instead of FIN, as a partitioned peer looks.
/// (tokio deprecates `set_linger` because a non-zero linger blocks on drop; zero never does.)
#[allow(deprecated)]
pub fn reset_on_close(stream: &TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
}

async fn wait_for_cut(mut settings: watch::Receiver<LinkSettings>) {
    loop {
        if settings.borrow_and_update().cut {
            return;
        }
        if settings.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// One direction: a reader stamps each chunk with its arrival time, a writer releases it when
/// `arrival + delay` has passed, the link is not paused, and the rate allows.
async fn direction<R, W>(
    mut reader: R,
    mut writer: W,
    settings: watch::Receiver<LinkSettings>,
    counter: &AtomicU64,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(IN_FLIGHT);
    let read = async move {
        let mut buf = BytesMut::with_capacity(READ_SIZE);
        loop {
            buf.reserve(READ_SIZE);
            match reader.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let chunk = buf.split().freeze();
                    if tx.send((Instant::now(), chunk)).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let write = async move {
        let mut settings = settings;
        let mut bucket = TokenBucket::new();
        let mut timer = PreciseTimer::new();
        while let Some((arrived, chunk)) = rx.recv().await {
            let mut rest = chunk;
            while !rest.is_empty() {
                let rate = release_time(&mut settings, &mut timer, arrived).await;
                let n = bucket.take(rate, rest.len()).await;
                let part = rest.split_to(n);
                if writer.write_all(&part).await.is_err() {
                    return;
                }
                counter.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        let _ = writer.shutdown().await;
    };
    tokio::join!(read, write);
}

/// Wait until a chunk that arrived at `arrived` may go: its delay has passed and the link is
/// not paused. Settings changes are seen while waiting. Returns the rate in force.
async fn release_time(
    settings: &mut watch::Receiver<LinkSettings>,
    timer: &mut PreciseTimer,
    arrived: Instant,
) -> u64 {
    loop {
        let s = settings.borrow_and_update().clone();
        let due = arrived + Duration::from_micros(s.delay_us);
        if !s.paused && Instant::now() >= due {
            return s.rate;
        }
        if s.paused {
            if settings.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            continue;
        }
        tokio::select! {
            _ = timer.sleep_until(due) => {}
            r = settings.changed() => if r.is_err() { timer.sleep_until(due).await },
        }
    }
}

/// A token bucket in bytes, refilled at the link's rate, with a burst of 1/20 s of traffic.
struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new() -> Self {
        TokenBucket {
            tokens: 0.0,
            last: Instant::now(),
        }
    }

    /// How many of `want` bytes may be written now (waiting if none may); all when unlimited.
    async fn take(&mut self, rate: u64, want: usize) -> usize {
        if rate == 0 {
            return want;
        }
        let burst = (rate as f64 / 20.0).max(1500.0);
        loop {
            let now = Instant::now();
            self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate as f64)
                .min(burst);
            self.last = now;
            if self.tokens >= 1.0 {
                let n = (self.tokens as usize).min(want);
                self.tokens -= n as f64;
                return n;
            }
            let wait = (1.0 - self.tokens) / rate as f64;
            tokio::time::sleep(Duration::from_secs_f64(wait.max(0.0005))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_paces_to_rate() {
        let mut b = TokenBucket::new();
        let start = Instant::now();
        let mut sent = 0;
        while sent < 100_000 {
            sent += b.take(50_000, 100_000 - sent).await;
        }
        let took = start.elapsed().as_secs_f64();
        assert!((1.9..2.1).contains(&took), "100 kB at 50 kB/s took {took}s");
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_takes_all() {
        let mut b = TokenBucket::new();
        assert_eq!(b.take(0, 12345).await, 12345);
    }
}
