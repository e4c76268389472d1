//! A sweep's steps: the statistics of each step's window (the swept group's transactions,
//! each standby's lag and its trend, the WAL written), kept by the recorder and handed to the
//! session when the step ends.

use super::stats::{new_bytes_histogram, new_histogram};
use super::values::{latency_ms, quantiles, round, LatencyMs, Quantiles};
use crate::messages::{Outcome, ReplSample, TxSample};
use hdrhistogram::Histogram;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// One standby during one step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepStandby {
    pub lag_seconds: Quantiles,
    pub lag_bytes: Quantiles,
    /// Least-squares slope of the time lag over the step (seconds of lag per second): a
    /// standby that keeps falling behind has a positive one.
    pub lag_trend_s_per_s: Option<f64>,
    /// Its time lag at the end of the step minus at the start (by the fitted line).
    pub lag_growth_s: Option<f64>,
}

/// What one step measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    pub offered_rate: f64,
    pub started_s: f64,
    pub duration_s: f64,
    pub ok: u64,
    pub failed: u64,
    pub unknown: u64,
    /// ok transactions of the swept group per second.
    pub achieved_tps: f64,
    pub latency_ms: LatencyMs,
    pub standbys: IndexMap<String, StepStandby>,
    pub wal_bytes_per_s: Option<f64>,
    /// WAL per ok transaction of every group during the step.
    pub wal_bytes_per_tx: Option<f64>,
    pub peak_pg_wal_bytes: Option<u64>,
}

struct StandbyAccum {
    lag_us: Histogram<u64>,
    lag_bytes: Histogram<u64>,
    points: Vec<(f64, f64)>,
}

/// A step being recorded.
pub struct StepAccum {
    group: u16,
    offered_rate: f64,
    start: Instant,
    start_s: f64,
    ok: u64,
    failed: u64,
    unknown: u64,
    all_ok: u64,
    latency: Histogram<u64>,
    standbys: IndexMap<String, StandbyAccum>,
    wal_first: Option<(f64, u64)>,
    wal_last: Option<(f64, u64)>,
    peak_pg_wal: Option<u64>,
}

impl StepAccum {
    pub fn new(group: u16, offered_rate: f64, start: Instant, start_s: f64) -> Self {
        StepAccum {
            group,
            offered_rate,
            start,
            start_s,
            ok: 0,
            failed: 0,
            unknown: 0,
            all_ok: 0,
            latency: new_histogram(),
            standbys: IndexMap::new(),
            wal_first: None,
            wal_last: None,
            peak_pg_wal: None,
        }
    }

    /// A transaction that started (as intended) inside the step.
    pub fn take_tx(&mut self, s: &TxSample) {
        if s.started < self.start {
            return;
        }
        if s.outcome == Outcome::Ok {
            self.all_ok += 1;
        }
        if s.group != self.group {
            return;
        }
        match s.outcome {
            Outcome::Ok => {
                self.ok += 1;
                self.latency.saturating_record(s.latency_us.max(1));
            }
            Outcome::Failed => self.failed += 1,
            Outcome::Unknown => self.unknown += 1,
        }
    }

    pub fn take_sample(&mut self, t_s: f64, s: &ReplSample) {
        if let Some(lsn) = s.insert_lsn {
            if s.timeline_changed {
                self.wal_first = None;
            }
            self.wal_first.get_or_insert((t_s, lsn));
            self.wal_last = Some((t_s, lsn));
        }
        if let Some(b) = s.pg_wal_bytes {
            self.peak_pg_wal = Some(self.peak_pg_wal.map_or(b, |m| m.max(b)));
        }
        for sb in s.standbys.iter().filter(|x| x.in_recovery == Some(true)) {
            let a = self
                .standbys
                .entry(sb.node.clone())
                .or_insert_with(|| StandbyAccum {
                    lag_us: new_histogram(),
                    lag_bytes: new_bytes_histogram(),
                    points: Vec::new(),
                });
            if let Some(l) = sb.lag_s {
                a.lag_us.saturating_record((l * 1e6) as u64);
                a.points.push((t_s, l));
            }
            if let Some(b) = sb.lag_bytes {
                a.lag_bytes.saturating_record(b);
            }
        }
    }

    /// The step's statistics, ending at `end_s`.
    pub fn finish(self, end_s: f64) -> StepStats {
        let duration_s = (end_s - self.start_s).max(1e-3);
        let (wal_per_s, wal_bytes) = match (self.wal_first, self.wal_last) {
            (Some((t0, a)), Some((t1, b))) if t1 > t0 => (
                Some(b.saturating_sub(a) as f64 / (t1 - t0)),
                Some(b.saturating_sub(a)),
            ),
            _ => (None, None),
        };
        let standbys = self
            .standbys
            .iter()
            .map(|(n, a)| {
                let (slope, growth) = trend(&a.points);
                let s = StepStandby {
                    lag_seconds: quantiles(&a.lag_us, 1e-6),
                    lag_bytes: quantiles(&a.lag_bytes, 1.0),
                    lag_trend_s_per_s: slope,
                    lag_growth_s: growth,
                };
                (n.clone(), s)
            })
            .collect();
        StepStats {
            offered_rate: self.offered_rate,
            started_s: round(self.start_s, 3),
            duration_s: round(duration_s, 3),
            ok: self.ok,
            failed: self.failed,
            unknown: self.unknown,
            achieved_tps: round(self.ok as f64 / duration_s, 1),
            latency_ms: latency_ms(&self.latency),
            standbys,
            wal_bytes_per_s: wal_per_s.map(f64::round),
            wal_bytes_per_tx: wal_bytes
                .filter(|_| self.all_ok > 0)
                .map(|b| (b as f64 / self.all_ok as f64).round()),
            peak_pg_wal_bytes: self.peak_pg_wal,
        }
    }
}

/// Least-squares slope of (t, lag) and the growth it implies over the points' span.
pub fn trend(points: &[(f64, f64)]) -> (Option<f64>, Option<f64>) {
    if points.len() < 3 {
        return (None, None);
    }
    let n = points.len() as f64;
    let mt = points.iter().map(|p| p.0).sum::<f64>() / n;
    let ml = points.iter().map(|p| p.1).sum::<f64>() / n;
    let var = points.iter().map(|p| (p.0 - mt).powi(2)).sum::<f64>();
    if var <= 0.0 {
        return (None, None);
    }
    let cov = points.iter().map(|p| (p.0 - mt) * (p.1 - ml)).sum::<f64>();
    let slope = cov / var;
    let span = points.last().map(|p| p.0).unwrap_or(0.0) - points[0].0;
    (Some(round(slope, 4)), Some(round(slope * span, 3)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_growing_lag_has_a_positive_trend_and_a_steady_one_none_to_speak_of() {
        let growing: Vec<(f64, f64)> = (0..50).map(|i| (i as f64 * 0.2, i as f64 * 0.1)).collect();
        let (slope, growth) = trend(&growing);
        assert!((slope.unwrap() - 0.5).abs() < 1e-6);
        assert!((growth.unwrap() - 4.9).abs() < 1e-3);
        let steady: Vec<(f64, f64)> = (0..50)
            .map(|i| (i as f64 * 0.2, 0.01 + 0.005 * ((i % 3) as f64)))
            .collect();
        assert!(trend(&steady).0.unwrap().abs() < 0.001);
        assert_eq!(trend(&[(0.0, 1.0)]), (None, None));
    }
}
