//! What the workers, the event timeline and the WAL probe send to the recorder.

use tokio::time::Instant;

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The server refused it (the SQLSTATE is recorded).
    Failed,
    /// The connection broke during COMMIT: it may or may not have committed.
    Unknown,
}

/// One finished transaction.
#[derive(Debug, Clone)]
pub struct TxSample {
    pub tx: u16,
    pub group: u16,
    pub outcome: Outcome,
    /// Set when failed or unknown: the SQLSTATE, or "08006" for a lost connection.
    pub sqlstate: Option<String>,
    /// From the intended start (open model) or the actual start (closed model).
    pub latency_us: u64,
    /// Actual start minus intended start (open model only).
    pub schedule_lag_us: Option<u64>,
    /// Intended (or actual) start: decides whether it falls in the warmup.
    pub started: Instant,
    pub rows: u64,
    /// The node it ran on (0 = primary).
    pub node: u8,
}

/// Something notable on the timeline: a drill action, a node going down, a fallback.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub at: Instant,
    pub kind: String,
    pub node: String,
    pub detail: String,
}

/// Counters that are not transactions.
#[derive(Debug, Clone, Copy)]
pub enum Counter {
    ConnectFailure,
    Reconnect,
    /// read_your_writes: a standby read waited for the standby to replay the client's commit.
    RywWaited,
    /// read_your_writes: the standby stayed behind; the read went to the primary instead.
    RywFallback,
    /// read_your_writes: a standby read that was checked and found fresh.
    RywChecked,
}

/// A message for the recorder.
#[derive(Debug, Clone)]
pub enum Record {
    Tx(TxSample),
    Event(EventRecord),
    Count(Counter),
    /// One tick of the replication sampler.
    Sample(Box<crate::sampler::ReplSample>),
}
