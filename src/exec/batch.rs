//! A load thread's records on their way to the recorder: its clients push into one buffer
//! (no channel message, no task wake-up per transaction), and a forwarder hands the buffer
//! over every BATCH_EVERY, or sooner once BATCH_MAX records wait.

use crate::messages::Record;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// How long a worker collects records before it hands them over.
pub const BATCH_EVERY: Duration = Duration::from_millis(10);
/// ... or how many it collects at most.
pub const BATCH_MAX: usize = 512;

/// One load thread's buffer (its clients and forwarder share the thread: the lock is never
/// contended).
#[derive(Default)]
pub struct Batch {
    buf: Mutex<Vec<Record>>,
    /// The buffer got its first record: a hand-over is due in BATCH_EVERY.
    filled: Notify,
    /// The buffer holds BATCH_MAX records: hand them over now.
    full: Notify,
    /// The recorder is gone (the run is ending): clients stop.
    gone: AtomicBool,
}

impl Batch {
    /// Add a record; false once the recorder has gone.
    pub fn push(&self, r: Record) -> bool {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        buf.push(r);
        match buf.len() {
            1 => self.filled.notify_one(),
            BATCH_MAX => self.full.notify_one(),
            _ => {}
        }
        !self.gone.load(Ordering::Relaxed)
    }

    fn take(&self) -> Vec<Record> {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *buf, Vec::with_capacity(BATCH_MAX))
    }
}

/// Hand the batch to the recorder until `done` fires, then once more. An idle thread's
/// forwarder sleeps until a record arrives.
pub async fn forward(batch: Arc<Batch>, out: mpsc::Sender<Record>, done: Arc<Notify>) {
    let mut last = false;
    loop {
        tokio::select! {
            _ = batch.filled.notified() => {
                tokio::select! {
                    _ = tokio::time::sleep(BATCH_EVERY) => {}
                    _ = batch.full.notified() => {}
                    _ = done.notified() => last = true,
                }
            }
            _ = batch.full.notified() => {}
            _ = done.notified() => last = true,
        }
        let records = batch.take();
        if !records.is_empty() && out.send(Record::Batch(records)).await.is_err() {
            batch.gone.store(true, Ordering::Relaxed);
            return;
        }
        if last {
            return;
        }
    }
}
