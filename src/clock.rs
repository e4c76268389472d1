//! A precise sleep, for the link shaper's delays and the heartbeat's polls. tokio's timer
//! counts in whole milliseconds and fires at the first tick after the deadline: a 20 ms delay came out as 21.1 ms on average
//! (42.9 ms round trips through a link set to 20 ms each way). A timerfd on CLOCK_MONOTONIC,
//! awaited through the reactor, fires within tens of microseconds of its deadline.

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// How long before its deadline the timer wakes.
const EARLY: std::time::Duration = std::time::Duration::from_micros(150);

struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// One timer, re-armed for every sleep (one per direction of a link's connection).
pub struct PreciseTimer {
    fd: Option<AsyncFd<Fd>>,
}

impl PreciseTimer {
    /// A timer; when the system refuses one, sleeps fall back to tokio's timer.
    pub fn new() -> Self {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .ok()
        // SAFETY: the timerfd is owned by `Fd`, which the AsyncFd owns; nothing else closes
        // or replaces it while it is registered.
        .and_then(|t| unsafe { AsyncFd::register(Fd(t)) }.ok());
        PreciseTimer { fd }
    }

    /// Sleep until `due`: the timer wakes EARLY before it (a CPU woken from a long idle
    /// takes about 0.1 ms to run again here), the rest is spent yielding.
    pub async fn sleep_until(&mut self, due: Instant) {
        self.sleep_until_early(due.checked_sub(EARLY).unwrap_or(due))
            .await;
        while Instant::now() < due {
            tokio::task::yield_now().await;
        }
    }

    /// Sleep until `due` without the final yielding: up to about 0.1 ms late, no CPU spent
    /// (the heartbeat's polls, where a tenth of a millisecond does not matter).
    pub async fn sleep_until_early(&mut self, due: Instant) {
        let now = Instant::now();
        if due <= now {
            return;
        }
        let Some(fd) = self.fd.as_ref() else {
            return tokio::time::sleep_until(due).await;
        };
        let spec = TimeSpec::from_duration(due - now);
        if fd
            .get_ref()
            .0
            .set(Expiration::OneShot(spec), TimerSetTimeFlags::empty())
            .is_err()
        {
            return tokio::time::sleep_until(due).await;
        }
        loop {
            let Ok(mut ready) = fd.readable().await else {
                return tokio::time::sleep_until(due).await;
            };
            let expired = ready.try_io(|inner| {
                let mut buf = [0u8; 8];
                match nix::unistd::read(inner.get_ref().as_raw_fd(), &mut buf) {
                    Ok(_) => Ok(()),
                    Err(Errno::EAGAIN) => Err(std::io::ErrorKind::WouldBlock.into()),
                    Err(e) => Err(std::io::Error::from(e)),
                }
            });
            match expired {
                Ok(_) => return,
                Err(_would_block) => continue,
            }
        }
    }
}

impl Default for PreciseTimer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn it_never_wakes_before_its_deadline() {
        // How late it wakes is measured by benches/lag_accuracy.py (the link's round trips),
        // not asserted here: a busy machine may delay any wake-up.
        let mut t = PreciseTimer::new();
        for i in 0..20u64 {
            let due = Instant::now() + Duration::from_micros(500 + 150 * i);
            t.sleep_until(due).await;
            assert!(Instant::now() >= due);
            let due = Instant::now() + Duration::from_micros(300 * i);
            t.sleep_until_early(due).await;
            assert!(Instant::now() >= due);
        }
    }
}
