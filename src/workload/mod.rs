//! The plan of a run: a workload file checked and compiled into what the executor needs.

mod action;
pub mod generators;
pub mod sql;
pub mod value;

pub use action::{Action, Shell, ACTIONS, EXEC_TIMEOUT};

use crate::pg::SyncMode;
use generators::Generator;
use sql::Statement;
use std::time::Duration;

/// Where a transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Primary,
    /// The standbys, round-robin.
    Standby,
    /// The primary and the standbys, round-robin.
    Any,
}

/// A transaction: SQL statements (BEGIN ... COMMIT when more than one) or a COPY.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub name: String,
    pub target: Target,
    pub params: Vec<(String, Generator)>,
    pub body: Body,
    /// `pipeline = true`: BEGIN, the statements and COMMIT sent at once, replies read after
    /// (the statements use no value an earlier one returns).
    pub pipeline: bool,
}

#[derive(Debug, Clone)]
pub enum Body {
    Sql(Vec<Statement>),
    Copy(CopySpec),
}

/// `COPY table (columns) FROM STDIN (FORMAT binary)` with generated rows.
#[derive(Debug, Clone)]
pub struct CopySpec {
    pub table: String,
    pub rows_per_tx: u64,
    pub columns: Vec<(String, Generator)>,
}

impl Transaction {
    pub fn is_write(&self) -> bool {
        self.target == Target::Primary
    }
    pub fn is_copy(&self) -> bool {
        matches!(self.body, Body::Copy(_))
    }
}

/// A group of clients running a mix side by side with the other groups.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub clients: u32,
    /// Transactions per second for the whole group (open model); None: closed model.
    pub rate: Option<f64>,
    /// (transaction index, weight), weights > 0.
    pub mix: Vec<(usize, u32)>,
    pub read_your_writes: bool,
    /// Transactions (or rows, for a group that only copies) after which the group stops.
    pub stop_after: Option<u64>,
    pub stop_counts_rows: bool,
    /// Tries per transaction: serialization failures and deadlocks are retried up to this
    /// many tries in all, as pgbench's --max-tries (1: no retries).
    pub max_tries: u32,
    /// `$client_id` of the group's first client (the others follow): the groups number their
    /// clients one after another from 1, and a shard's clients keep the numbers they have in
    /// the whole run.
    pub first_client_id: u32,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub at: Duration,
    pub action: Action,
    /// Where it is written (`file:line`), for errors found once the run knows its nodes.
    pub origin: String,
    /// Undo the action after this long (pause -> resume, cut -> heal, set_link -> previous).
    pub for_: Option<Duration>,
}

/// An `[expect]` line: a summary.json path, an operator and a number.
#[derive(Debug, Clone)]
pub struct Expectation {
    pub path: String,
    pub op: String,
    pub value: f64,
    pub text: String,
}

impl Expectation {
    /// `"< 1.0"`, `">= 100"`, `"== 0"` ... on `path`; Err says what is wrong with the text.
    pub fn parse(path: &str, text: &str) -> Result<Expectation, String> {
        let text = text.trim();
        let op = ["<=", ">=", "==", "!=", "<", ">"]
            .into_iter()
            .find(|op| text.starts_with(op))
            .ok_or_else(|| "expected a comparison such as \"< 1.0\" or \"== 0\"".to_string())?;
        let rest = text[op.len()..].trim();
        let value: f64 = rest
            .parse()
            .map_err(|_| format!("'{rest}' is not a number"))?;
        Ok(Expectation {
            path: path.to_string(),
            op: op.to_string(),
            value,
            text: text.to_string(),
        })
    }

    /// Whether `actual` meets the condition.
    pub fn holds(&self, actual: f64) -> bool {
        match self.op.as_str() {
            "<" => actual < self.value,
            "<=" => actual <= self.value,
            ">" => actual > self.value,
            ">=" => actual >= self.value,
            "==" => actual == self.value,
            _ => actual != self.value,
        }
    }
}

/// `[matrix]`: one run per combination; an empty list keeps what the file or lab has.
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    pub synchronous_commit: Vec<String>,
    pub sync: Vec<SyncMode>,
    pub link_delay: Vec<Duration>,
    /// How many of the lab's standbys stream during the run (the others are stopped).
    pub standbys: Vec<u32>,
    /// `settings.<name> = [values]`: server settings, ALTER SYSTEM on every node.
    pub settings: Vec<(String, Vec<String>)>,
    /// PostgreSQL majors, one lab each (alone in its matrix).
    pub pg_version: Vec<u32>,
    /// How many times the majors run, in alternating order (14..18, 18..14, ...): `rounds`.
    pub rounds: u32,
    /// `file:line` of `[matrix]`, for errors found once the machine is looked at.
    pub origin: String,
}

/// One combination of a matrix.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Variant {
    pub synchronous_commit: Option<String>,
    pub sync: Option<SyncMode>,
    pub link_delay: Option<Duration>,
    pub standbys: Option<u32>,
    pub settings: Vec<(String, String)>,
    pub pg_version: Option<u32>,
    /// Which round of a pg_version matrix with `rounds` above 1.
    pub round: Option<u32>,
}

impl Variant {
    /// A name for directories and tables: `remote_apply-first1-25ms-2standbys`.
    pub fn name(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = self.pg_version {
            parts.push(format!("pg{m}"));
        }
        if let Some(r) = self.round {
            parts.push(format!("r{r}"));
        }
        if let Some(s) = &self.synchronous_commit {
            parts.push(s.clone());
        }
        if let Some(s) = self.sync {
            parts.push(s.to_string().replace(':', ""));
        }
        if let Some(d) = self.link_delay {
            parts.push(crate::units::format_duration(d));
        }
        if let Some(n) = self.standbys {
            parts.push(format!("{n}standbys"));
        }
        for (name, value) in &self.settings {
            parts.push(format!("{name}={value}"));
        }
        parts.join("-")
    }
}

impl Matrix {
    /// Every combination, synchronous_commit varying fastest.
    pub fn variants(&self) -> Vec<Variant> {
        fn opts<T: Clone>(v: &[T]) -> Vec<Option<T>> {
            if v.is_empty() {
                vec![None]
            } else {
                v.iter().cloned().map(Some).collect()
            }
        }
        // The settings' combinations: each setting's values, one after the other.
        let mut settings: Vec<Vec<(String, String)>> = vec![vec![]];
        for (name, values) in &self.settings {
            settings = settings
                .into_iter()
                .flat_map(|base| {
                    values.iter().map(move |v| {
                        let mut s = base.clone();
                        s.push((name.clone(), v.clone()));
                        s
                    })
                })
                .collect();
        }
        if !self.pg_version.is_empty() {
            // Rounds alternate the order, so that a drift of the machine over the matrix
            // (heat, caches, the disk) does not pass for a difference between majors.
            let rounds = self.rounds.max(1);
            let mut out = Vec::new();
            for r in 1..=rounds {
                let mut order = self.pg_version.clone();
                if r % 2 == 0 {
                    order.reverse();
                }
                out.extend(order.into_iter().map(|m| Variant {
                    pg_version: Some(m),
                    round: (rounds > 1).then_some(r),
                    ..Default::default()
                }));
            }
            return out;
        }
        let mut out = Vec::new();
        for set in &settings {
            for standbys in opts(&self.standbys) {
                for link_delay in opts(&self.link_delay) {
                    for sync in opts(&self.sync) {
                        for synchronous_commit in opts(&self.synchronous_commit) {
                            out.push(Variant {
                                synchronous_commit: synchronous_commit.clone(),
                                sync,
                                link_delay,
                                standbys,
                                settings: set.clone(),
                                pg_version: None,
                                round: None,
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

/// Connection strings of a cluster the lab does not own.
#[derive(Debug, Clone)]
pub struct ClusterTargets {
    pub primary: tokio_postgres::Config,
    pub standbys: Vec<tokio_postgres::Config>,
}

/// Everything a run needs, checked.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub description: Option<String>,
    pub duration: Option<Duration>,
    pub warmup: Duration,
    /// None: no replication sampler (`sample_every = "off"`).
    pub sample_every: Option<Duration>,
    /// The heartbeat's period (DESIGN section 16); None: no heartbeat (`heartbeat = false`,
    /// a `[cluster]` that did not ask for one, or no sampler).
    pub heartbeat_every: Option<Duration>,
    /// The length of an interval: intervals.csv's rows, the charts' resolution, the progress
    /// line (`[run] interval`, 1 s by default).
    pub interval: Duration,
    pub seed: u64,
    pub synchronous_commit: Option<String>,
    pub setup_sql: Option<String>,
    pub cluster: Option<ClusterTargets>,
    pub groups: Vec<Group>,
    pub transactions: Vec<Transaction>,
    pub events: Vec<Event>,
    pub expect: Vec<Expectation>,
    pub matrix: Option<Matrix>,
    /// `[run] server_settings`: (name, value), ALTER SYSTEM before the run, put back after.
    pub server_settings: Vec<(String, String)>,
    /// `[run] verify`: end the run with a consistency check of every node.
    pub verify: bool,
    pub sweep: Option<Sweep>,
}

/// `[sweep]`: capacity planning, one group's offered rate stepped until the SLO breaks.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The index of the swept `[[load]]` group.
    pub group: usize,
    /// The rates to try, in order; empty: `auto` (double from `start`, then bisect).
    pub rates: Vec<f64>,
    pub start: f64,
    pub max_rate: f64,
    /// How long each step runs.
    pub step: Duration,
    /// The longest wait for the standbys to catch up between steps.
    pub settle: Duration,
    pub slo: Vec<Expectation>,
    /// Today's rate: headroom and projections at it.
    pub current: Option<f64>,
    /// The replay-rate probe: every standby link paused this long at the max rate (zero: none).
    pub probe: Duration,
}

impl Workload {
    /// Some transaction reads on standbys (`target` standby or any).
    pub fn reads_standbys(&self) -> bool {
        self.transactions.iter().any(|t| !t.is_write())
    }

    pub fn needs_standbys(&self) -> bool {
        self.transactions
            .iter()
            .any(|t| t.target == Target::Standby)
    }

    /// A run with a kill or a promote tracks every write by a key in `pgbench_repl_keys`, so
    /// that it can tell which acknowledged writes a failover lost.
    pub fn tracks_keys(&self) -> bool {
        self.events.iter().any(|e| {
            matches!(
                e.action,
                Action::Kill { .. } | Action::Promote(_) | Action::Switchover(_)
            )
        })
    }

    /// The settings a run may change: to capture before it and put back after it.
    pub fn changed_settings(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .server_settings
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        for e in &self.events {
            match &e.action {
                Action::SetSetting { name, .. } => names.push(name.clone()),
                Action::SetSync {
                    commit: Some(_), ..
                } => names.push("synchronous_commit".into()),
                _ => {}
            }
        }
        if let Some(m) = &self.matrix {
            names.extend(m.settings.iter().map(|(n, _)| n.clone()));
        }
        names.sort();
        names.dedup();
        names
    }
}
