//! The recorder: the only owner of histograms and counts. A state machine (`Recorder`) takes
//! every message from the workers, the sampler and the timeline; `drive` feeds it from the
//! channel and closes an interval every second, handing rows and snapshots to a `Sink`.

pub mod capacity;
pub mod drills;
pub mod heartbeat;
mod recorder;
pub mod shards;
mod sink;
pub mod stats;
pub mod steps;
pub mod summary;
pub mod values;

pub use drills::{DrillTracker, Drills};
pub use recorder::{event, Recorder, RecorderSetup};
pub use sink::{Collected, IntervalRow, IntervalTx, ProgressLine, Sink, Tee};
pub use stats::{
    new_bytes_histogram, new_histogram, CounterTotals, Counts, KeyOutcome, RecordedRun,
    StandbyStats, TxStats, WalStats,
};
pub use steps::StepStats;

use crate::messages::Record;
use anyhow::Result;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

/// How often, at most, the files that hold the whole run so far are rewritten.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Record until every sender is gone: an interval closed every `interval` and a checkpoint
/// every second (or every interval when intervals are longer), the last (shorter) interval at
/// the end. Returns what was measured.
pub async fn drive(
    mut recorder: Recorder,
    mut rx: mpsc::Receiver<Record>,
    sink: &mut dyn Sink,
    origin: Instant,
    interval: Duration,
) -> Result<RecordedRun> {
    let mut tick = tokio::time::interval_at(origin + interval, interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut checkpointed = origin;
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(m) => recorder.take(m, sink)?,
                None => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                recorder.close_interval(now, sink)?;
                // 1 ms of slack: a tick a hair early still checkpoints once a second.
                if now + Duration::from_millis(1) >= checkpointed + CHECKPOINT_EVERY {
                    sink.checkpoint(recorder.run())?;
                    checkpointed = now;
                }
            }
        }
    }
    let now = Instant::now();
    if recorder.interval_worth_closing(now, Duration::from_millis(50)) {
        recorder.close_interval(now, sink)?;
    }
    recorder.settle_drills(now);
    sink.checkpoint(recorder.run())?;
    sink.finish()?;
    Ok(recorder.into_run())
}

#[cfg(test)]
mod tests;
