//! summary.json's scale-out blocks (DESIGN section 13): `shard` in a shard's own result,
//! `shards` in the merged one.

use serde::{Deserialize, Serialize};

/// `run --shard I/N`: which shard this is and how it met the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: u32,
    pub count: u32,
    pub run_id: String,
    pub host: String,
    /// The common start, seconds since the epoch by the database's clock.
    pub start_at_unix_s: f64,
    /// When this shard's load started, by the database's clock (start + lateness).
    pub origin_unix_s: f64,
    /// Seconds after the common start that this shard started (0 when on time).
    pub late_s: f64,
    /// The database's clock minus this machine's.
    pub clock_offset_s: f64,
    /// `[expect]` lines: a shard sees a part of the load, so `merge` judges them on the whole.
    #[serde(default)]
    pub expect: Vec<ExpectLine>,
}

/// An `[expect]` line not judged yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectLine {
    pub path: String,
    pub condition: String,
}

/// `merge`: the shards behind the merged result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedShards {
    pub run_id: String,
    pub count: u32,
    /// Shards whose results were merged.
    pub merged: Vec<u32>,
    /// Shards with no result among the directories merged: their load is not in the totals.
    pub missing: Vec<u32>,
    /// Shards that stopped before the end (a signal, a crash): what they measured is in.
    pub incomplete: Vec<u32>,
    /// The latest minus the earliest start of the merged shards, seconds.
    pub start_spread_s: f64,
    pub per_shard: Vec<ShardRow>,
}

/// One shard's line in the merged report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRow {
    pub index: u32,
    pub host: String,
    pub dir: String,
    pub clients: u32,
    pub ok: u64,
    pub failed: u64,
    pub unknown: u64,
    pub tps: f64,
    pub p99_ms: Option<f64>,
    /// Seconds after the common start that this shard started.
    pub start_offset_s: f64,
    pub complete: bool,
}
