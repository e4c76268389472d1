//! The workload file as written (DESIGN section 3): serde structs, unknown keys refused.
//! Values that later checks may reject carry their span, so errors can name the line.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use toml::Spanned;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadFile {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub run: RunSection,
    #[serde(default)]
    pub setup: Option<SetupSection>,
    #[serde(default)]
    pub cluster: Option<ClusterSection>,
    #[serde(default)]
    pub load: Vec<LoadGroup>,
    #[serde(default)]
    pub transaction: Vec<TransactionDef>,
    #[serde(default)]
    pub event: Vec<EventDef>,
    #[serde(default)]
    pub matrix: Option<Spanned<MatrixDef>>,
    #[serde(default)]
    pub expect: IndexMap<String, Spanned<String>>,
    #[serde(default)]
    pub sweep: Option<Spanned<SweepDef>>,
}

/// `[sweep]`: step one group's rate until the SLO breaks.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SweepDef {
    pub group: Spanned<String>,
    /// "auto" or a list of rates.
    pub rates: Spanned<toml::Value>,
    pub start: Option<Spanned<f64>>,
    pub max_rate: Option<Spanned<f64>>,
    pub step: Option<Spanned<String>>,
    pub settle: Option<Spanned<String>>,
    #[serde(default)]
    pub slo: IndexMap<String, Spanned<String>>,
    pub current: Option<Spanned<f64>>,
    pub probe: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    pub duration: Option<Spanned<String>>,
    pub warmup: Option<Spanned<String>>,
    pub sample_every: Option<Spanned<String>>,
    pub seed: Option<u64>,
    pub synchronous_commit: Option<Spanned<String>>,
    #[serde(default)]
    pub server_settings: Option<Spanned<IndexMap<String, toml::Value>>>,
    pub verify: Option<bool>,
    /// The visibility probe: on by default on the lab, off against a `[cluster]` (it writes).
    pub heartbeat: Option<bool>,
    pub heartbeat_every: Option<Spanned<String>>,
    /// How long an interval of intervals.csv, the charts and the progress line is.
    pub interval: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SetupSection {
    pub sql: Spanned<String>,
}

/// Any cluster instead of the lab: libpq URIs or key=value strings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    pub primary: Spanned<String>,
    #[serde(default)]
    pub standbys: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoadGroup {
    pub name: Spanned<String>,
    pub clients: Spanned<i64>,
    pub rate: Option<Spanned<f64>>,
    pub mix: Spanned<IndexMap<String, i64>>,
    pub read_your_writes: Option<Spanned<String>>,
    pub stop_after: Option<Spanned<i64>>,
    pub max_tries: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionDef {
    pub name: Spanned<String>,
    pub target: Option<Spanned<String>>,
    #[serde(default)]
    pub params: IndexMap<String, Spanned<String>>,
    #[serde(default)]
    pub sql: Option<Spanned<SqlList>>,
    pub copy: Option<Spanned<CopyDef>>,
    /// Send the statements without waiting for each reply (independent statements only).
    pub pipeline: Option<Spanned<bool>>,
}

/// `sql = "..."` or `sql = ["...", "..."]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum SqlList {
    One(String),
    Many(Vec<String>),
}

impl SqlList {
    pub fn statements(&self) -> Vec<String> {
        match self {
            SqlList::One(s) => vec![s.clone()],
            SqlList::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CopyDef {
    pub table: String,
    pub rows_per_tx: i64,
    pub columns: IndexMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventDef {
    pub at: Spanned<String>,
    pub action: Spanned<String>,
    pub target: Option<Spanned<String>>,
    #[serde(rename = "for")]
    pub for_: Option<Spanned<String>>,
    pub delay: Option<Spanned<String>>,
    pub rate: Option<Spanned<String>>,
    pub sync: Option<Spanned<String>>,
    pub command: Option<Spanned<String>>,
    pub undo: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub synchronous_commit: Option<Spanned<String>>,
    pub setting: Option<Spanned<String>>,
    pub value: Option<Spanned<toml::Value>>,
}

/// One run per combination of these values.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixDef {
    #[serde(default)]
    pub synchronous_commit: Vec<String>,
    #[serde(default)]
    pub sync: Vec<String>,
    #[serde(default)]
    pub link_delay: Vec<String>,
    #[serde(default)]
    pub standbys: Vec<i64>,
    #[serde(default)]
    pub settings: IndexMap<String, Vec<toml::Value>>,
    /// PostgreSQL majors: one lab per major (DESIGN section 17).
    #[serde(default)]
    pub pg_version: Vec<i64>,
    /// With pg_version: how many rounds, in alternating order.
    #[serde(default)]
    pub rounds: Option<i64>,
}
