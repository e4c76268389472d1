//! A sweep's verdicts and what follows from them (DESIGN section 11): each step judged
//! against the SLO, the trend of the lag and the rate actually achieved; the max sustainable
//! rate and what broke above it; projections of WAL, retention, catch-up and bandwidth.

use super::steps::StepStats;
use super::values::{lookup, number};
use crate::workload::Expectation;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A step is not sustainable when a standby's lag keeps growing faster than this (seconds of
/// lag per second) and grows by more than GROWTH_S over the step.
pub const TREND_S_PER_S: f64 = 0.02;
pub const GROWTH_S: f64 = 0.2;
/// ... or when the swept group achieves less than this share of the offered rate.
pub const ACHIEVED_SHARE: f64 = 0.95;
/// ... or when more than this share of its transactions fail or end unknown.
pub const ERROR_SHARE: f64 = 0.01;

/// One step and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepStep {
    #[serde(flatten)]
    pub stats: StepStats,
    pub met_slo: bool,
    /// Each failed check: `lag_seconds.p99 < 1 (got 2.41)`, `lag growing`, ...
    pub failed_checks: Vec<String>,
    /// What each failed check is about: lag, latency, achieved rate, errors.
    #[serde(default)]
    pub failed_kinds: Vec<String>,
}

/// summary.json `sweep`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepSummary {
    pub group: String,
    pub slo: Vec<String>,
    pub steps: Vec<SweepStep>,
    /// The highest offered rate that met every check.
    pub max_sustainable_rate: Option<f64>,
    /// What broke first above it: lag, latency, achieved rate, errors.
    pub limit: Option<String>,
    /// Each standby's replay rate, measured by the probe (its catch-up after a pause at the
    /// max sustainable rate).
    #[serde(default)]
    pub replay_bytes_per_s: IndexMap<String, f64>,
    pub projections: Option<Projections>,
    /// `current`: today's rate, its headroom and projections.
    #[serde(default)]
    pub current: Option<CurrentRate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentRate {
    pub rate: f64,
    /// max sustainable rate / current rate.
    pub headroom: Option<f64>,
    pub projections: Projections,
}

/// What a rate means for disks, network and outages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projections {
    pub rate: f64,
    pub wal_bytes_per_s: f64,
    pub wal_bytes_per_hour: f64,
    pub wal_bytes_per_day: f64,
    /// Each standby needs at least this much bandwidth to keep up (the WAL rate), in Mbit/s.
    pub standby_bandwidth_mbit_per_s: f64,
    pub outages: Vec<OutageProjection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageProjection {
    pub outage_s: f64,
    /// WAL a slot must retain to survive it (max_slot_wal_keep_size at least this).
    pub slot_retention_bytes: f64,
    /// pg_wal must hold that plus what it holds anyway at this rate.
    pub pg_wal_bytes: f64,
    /// accumulated / (replay rate - WAL rate), with the slowest standby's measured replay
    /// rate; None when it was not measured or cannot keep up.
    pub catch_up_s: Option<f64>,
}

/// The outages the projections answer for: 10 min, 1 h, 6 h.
pub const OUTAGES_S: [f64; 3] = [600.0, 3600.0, 21600.0];

/// Projections at `rate`, whose WAL is `wal_bytes_per_s`; `pg_wal_baseline` is pg_wal's size
/// measured at that rate, `replay` the slowest standby's measured replay rate.
pub fn project(
    rate: f64,
    wal_bytes_per_s: f64,
    pg_wal_baseline: f64,
    replay: Option<f64>,
) -> Projections {
    let outages = OUTAGES_S
        .iter()
        .map(|&t| {
            let accumulated = wal_bytes_per_s * t;
            OutageProjection {
                outage_s: t,
                slot_retention_bytes: accumulated.round(),
                pg_wal_bytes: (accumulated + pg_wal_baseline).round(),
                catch_up_s: replay
                    .filter(|r| *r > wal_bytes_per_s)
                    .map(|r| (accumulated / (r - wal_bytes_per_s) * 10.0).round() / 10.0),
            }
        })
        .collect();
    Projections {
        rate,
        wal_bytes_per_s: wal_bytes_per_s.round(),
        wal_bytes_per_hour: (wal_bytes_per_s * 3600.0).round(),
        wal_bytes_per_day: (wal_bytes_per_s * 86400.0).round(),
        standby_bandwidth_mbit_per_s: (wal_bytes_per_s * 8.0 / 1e6 * 100.0).round() / 100.0,
        outages,
    }
}

/// Judge a step: the SLO (paths of the step; `lag_seconds.*` means the worst standby), the
/// lag's trend, the achieved rate and the errors.
pub fn judge(stats: StepStats, slo: &[Expectation]) -> SweepStep {
    let doc = serde_json::to_value(&stats).unwrap_or_default();
    let mut failed = Vec::new();
    for e in slo {
        let actual = step_number(&doc, &e.path);
        if !actual.is_some_and(|a| e.holds(a)) {
            let got = actual
                .map(|a| format!("{a}"))
                .unwrap_or_else(|| "nothing".into());
            failed.push((
                kind_of(&e.path),
                format!("{} {} (got {got})", e.path, e.text),
            ));
        }
    }
    for (node, sb) in &stats.standbys {
        if let (Some(slope), Some(growth)) = (sb.lag_trend_s_per_s, sb.lag_growth_s) {
            if slope > TREND_S_PER_S && growth > GROWTH_S {
                failed.push((
                    "lag".into(),
                    format!(
                        "{node}'s lag kept growing ({slope:.3} s/s, +{growth:.2} s over the step)"
                    ),
                ));
            }
        }
    }
    if stats.achieved_tps < ACHIEVED_SHARE * stats.offered_rate {
        failed.push((
            "achieved rate".into(),
            format!(
                "achieved {} of {} tx/s offered",
                stats.achieved_tps, stats.offered_rate
            ),
        ));
    }
    let done = stats.ok + stats.failed + stats.unknown;
    if done > 0 && (stats.failed + stats.unknown) as f64 > ERROR_SHARE * done as f64 {
        failed.push((
            "errors".into(),
            format!(
                "{} of {done} transactions failed or ended unknown",
                stats.failed + stats.unknown
            ),
        ));
    }
    SweepStep {
        stats,
        met_slo: failed.is_empty(),
        failed_kinds: failed.iter().map(|(k, _)| k.clone()).collect(),
        failed_checks: failed.into_iter().map(|(_, t)| t).collect(),
    }
}

/// A number of the step at `path`; `lag_seconds.X` / `lag_bytes.X` are the worst standby's.
fn step_number(doc: &serde_json::Value, path: &str) -> Option<f64> {
    if let Some(v) = lookup(doc, path).and_then(number) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    if !head.starts_with("lag") {
        return None;
    }
    doc["standbys"]
        .as_object()?
        .values()
        .filter_map(|sb| lookup(&sb[head], rest).and_then(number))
        .reduce(f64::max)
}

fn kind_of(path: &str) -> String {
    match path {
        p if p.starts_with("lag") || p.starts_with("standbys") => "lag".into(),
        p if p.starts_with("latency") => "latency".into(),
        p if p.starts_with("achieved") => "achieved rate".into(),
        p if p.starts_with("failed") || p.starts_with("unknown") => "errors".into(),
        p => p.to_string(),
    }
}

/// The highest rate that met every check, and what broke first at the lowest failing rate
/// above it.
pub fn verdict(steps: &[SweepStep]) -> (Option<f64>, Option<String>) {
    let max = steps
        .iter()
        .filter(|s| s.met_slo)
        .map(|s| s.stats.offered_rate)
        .reduce(f64::max);
    let limit = steps
        .iter()
        .filter(|s| !s.met_slo && max.is_none_or(|m| s.stats.offered_rate > m))
        .min_by(|a, b| a.stats.offered_rate.total_cmp(&b.stats.offered_rate))
        .and_then(|s| s.failed_kinds.first().cloned());
    (max, limit)
}

/// The next rate of an `auto` sweep: double while steps pass, then bisect between the highest
/// passing and the lowest failing rate until they are within 5%; None when done.
pub fn next_auto_rate(steps: &[SweepStep], start: f64, max_rate: f64) -> Option<f64> {
    let Some(last) = steps.last() else {
        return Some(start.min(max_rate));
    };
    let (good, _) = verdict(steps);
    let bad = steps
        .iter()
        .filter(|s| !s.met_slo && good.is_none_or(|g| s.stats.offered_rate > g))
        .map(|s| s.stats.offered_rate)
        .reduce(f64::min);
    match (good, bad) {
        (Some(g), None) if last.met_slo => (g < max_rate).then(|| (g * 2.0).min(max_rate)),
        (Some(g), Some(b)) => ((b - g) / g > 0.05).then(|| ((g + b) / 2.0).round().max(1.0)),
        (None, Some(b)) => (b > 1.0 && steps.len() < 12).then(|| (b / 2.0).round().max(1.0)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
