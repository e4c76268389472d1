//! What the workers, the event timeline and the replication sampler send to the recorder: one
//! channel, these messages. A leaf: every layer that measures imports it, it imports nothing.

use tokio::time::Instant;

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The server refused it (the SQLSTATE is recorded), or the client could not send it
    /// (recorded as `client`): it did not commit.
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
    /// Set when failed or unknown: the SQLSTATE, "08006" for a lost connection, "client" for
    /// an error the client library raised before the request reached the server.
    pub sqlstate: Option<String>,
    /// From the intended start (open model) or the actual start (closed model) of the first
    /// try to the end of the last: retries are inside the latency, as in pgbench.
    pub latency_us: u64,
    /// Actual start minus intended start (open model only).
    pub schedule_lag_us: Option<u64>,
    /// Intended (or actual) start: decides whether it falls in the warmup.
    pub started: Instant,
    pub rows: u64,
    /// Tries after the first (serialization failures and deadlocks, up to max_tries).
    pub retries: u32,
    /// The node it ran on (an index into the run's node list).
    pub node: u8,
    /// The client that ran it (1-based, unique in the run).
    pub client: u32,
    /// The key a failover drill's write inserted beside it (`pgbench_repl_keys`).
    pub key: Option<i64>,
}

/// Something notable on the timeline: a drill action, a node going down, a fallback.
#[derive(Debug, Clone)]
pub struct EventRecord {
    /// When it began.
    pub at: Instant,
    pub kind: String,
    /// The node it is about (empty when it is about no node).
    pub node: String,
    pub detail: String,
    /// How long a drill action took (None for what was only observed); None too when it
    /// failed.
    pub took: Option<std::time::Duration>,
    /// A drill action that undid an earlier one (`for`).
    pub undo: bool,
}

/// Counters that are not transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// One node that is not the primary, at one sample of the replication sampler.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StandbySample {
    pub node: String,
    /// The node answered.
    pub up: bool,
    /// pg_is_in_recovery() on the node: Some(false) is a node that is no standby (split brain).
    pub in_recovery: Option<bool>,
    /// The heartbeat's visibility lag on it now (DESIGN section 16): the last heartbeat's, or
    /// the age of the oldest one it has not shown when that is longer. Filled by the recorder.
    pub heartbeat_lag_s: Option<f64>,
    /// pg_stat_replication.state and sync_state for it, on the primary.
    pub state: Option<String>,
    pub sync_state: Option<String>,
    pub receive_lsn: Option<u64>,
    pub replay_lsn: Option<u64>,
    /// pg_current_wal_lsn() of a node that is out of recovery (a second primary).
    pub current_lsn: Option<u64>,
    /// Primary's pg_current_wal_lsn() minus the replay (receive) LSN.
    pub lag_bytes: Option<u64>,
    pub receive_lag_bytes: Option<u64>,
    /// By the LSN timeline.
    pub lag_s: Option<f64>,
    pub pg_write_lag_s: Option<f64>,
    pub pg_flush_lag_s: Option<f64>,
    pub pg_replay_lag_s: Option<f64>,
    pub slot_retained_bytes: Option<u64>,
    pub wal_status: Option<String>,
    pub safe_wal_size: Option<i64>,
}

/// One tick of the replication sampler.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplSample {
    pub at: Instant,
    /// The node sampled as the primary.
    pub primary: String,
    pub primary_up: bool,
    /// The primary's timeline (from the name of its current WAL file).
    pub timeline: Option<u32>,
    pub insert_lsn: Option<u64>,
    pub current_lsn: Option<u64>,
    /// pg_stat_wal (PostgreSQL 14+): records and full-page images since its last reset.
    pub wal_records: Option<i64>,
    pub wal_fpi: Option<i64>,
    /// Size of the primary's pg_wal directory (read at most once a second).
    pub pg_wal_bytes: Option<u64>,
    /// Every other node of the run, standbys and nodes that are down.
    pub standbys: Vec<StandbySample>,
    /// The primary's WAL position went backwards (a new primary): WAL rates restart here.
    pub timeline_changed: bool,
}

/// A sweep's step boundaries: the recorder keeps each step's statistics apart and hands them
/// back at its end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepMark {
    /// Group `group` runs at `offered_rate` from `at`.
    Begin {
        group: u16,
        offered_rate: f64,
        at: Instant,
    },
    End {
        at: Instant,
    },
}

/// The heartbeat (DESIGN section 16): what its writer committed and what each standby showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Beat {
    /// Heartbeat `k` committed on the primary at `at` (the midpoint of the round trip).
    Committed { k: u64, at: Instant },
    /// `node` showed heartbeat `k` (and every one before it) at `at`, first seen.
    Seen { node: String, k: u64, at: Instant },
    /// The WAL one heartbeat writes, measured before the load started.
    WalPerBeat(u64),
}

/// A message for the recorder.
#[derive(Debug, Clone)]
pub enum Record {
    Tx(TxSample),
    Event(EventRecord),
    Count(Counter),
    Sample(Box<ReplSample>),
    Step(StepMark),
    Beat(Beat),
    /// Records of one worker thread, handed over together (one wake-up of the recorder for
    /// many transactions).
    Batch(Vec<Record>),
}
