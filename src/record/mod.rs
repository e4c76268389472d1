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

/// Record until every sender is gone: an interval closed and a checkpoint every second, the
/// last (shorter) interval at the end. Returns what was measured.
pub async fn drive(
    mut recorder: Recorder,
    mut rx: mpsc::Receiver<Record>,
    sink: &mut dyn Sink,
    origin: Instant,
) -> Result<RecordedRun> {
    let mut tick =
        tokio::time::interval_at(origin + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(m) => recorder.take(m, sink)?,
                None => break,
            },
            _ = tick.tick() => {
                recorder.close_interval(Instant::now(), sink)?;
                sink.checkpoint(recorder.run())?;
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
