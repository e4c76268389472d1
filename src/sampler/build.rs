//! Turning the nodes' answers into one `ReplSample`: byte lag, time lag by the LSN timeline,
//! pg_stat_replication and slots matched to each standby. Pure (answers in, a sample out), so
//! it is tested without a server.

use super::probe::Answer;
use super::timeline::{LsnTimeline, Pushed};
use crate::messages::{ReplSample, StandbySample};
use crate::pg::parse_lsn;
use serde::Deserialize;
use std::collections::HashMap;
use tokio::time::Instant;

#[derive(Deserialize)]
struct PrimaryRow {
    insert: String,
    current: String,
    /// pg_current_wal_flush_lsn(): what walsenders may send (older answers lack it).
    #[serde(default)]
    flush: Option<String>,
    /// Set by the full queries (the light one has no such key).
    #[serde(default)]
    full: bool,
    #[serde(default)]
    tli: Option<String>,
    #[serde(default)]
    repl: Option<Vec<ReplRow>>,
    #[serde(default)]
    slots: Option<Vec<SlotRow>>,
    #[serde(default)]
    wal: Option<WalRow>,
}

#[derive(Deserialize, Clone)]
struct ReplRow {
    app: Option<String>,
    state: Option<String>,
    sync: Option<String>,
    write_lag: Option<f64>,
    flush_lag: Option<f64>,
    replay_lag: Option<f64>,
}

#[derive(Deserialize, Clone)]
struct SlotRow {
    slot: String,
    retained: Option<i64>,
    wal_status: Option<String>,
    safe: Option<i64>,
}

#[derive(Deserialize, Clone)]
struct WalRow {
    records: Option<i64>,
    fpi: Option<i64>,
}

/// pg_stat_replication, slots, pg_stat_wal and the timeline from the last full sample.
#[derive(Clone, Default)]
struct SlowParts {
    tli: Option<String>,
    repl: Option<Vec<ReplRow>>,
    slots: Option<Vec<SlotRow>>,
    wal: Option<WalRow>,
}

/// The sampler's memory between ticks.
pub struct SampleBuilder {
    origin: Instant,
    timeline: LsnTimeline,
    slow: Option<SlowParts>,
    last_primary: Option<(String, Option<u32>)>,
    /// Each node's last replay LSN: the LSN timeline keeps what the slowest one still needs.
    last_replay: HashMap<String, u64>,
    /// Nodes the primary knows by another name (application_name and slot).
    known_as: HashMap<String, String>,
}

impl SampleBuilder {
    pub fn new(origin: Instant) -> Self {
        SampleBuilder {
            origin,
            timeline: LsnTimeline::default(),
            slow: None,
            last_primary: None,
            last_replay: HashMap::new(),
            known_as: HashMap::new(),
        }
    }

    /// Node `name` is `repl_name` in the primary's pg_stat_replication and slots.
    pub fn known_as(mut self, names: impl IntoIterator<Item = (String, String)>) -> Self {
        self.known_as = names.into_iter().filter(|(n, r)| n != r).collect();
        self
    }

    fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.origin).as_secs_f64()
    }

    /// One sample from the primary's answer (the full or light query's JSON) and each other
    /// node's answer (pg_is_in_recovery, receive LSN, replay LSN, and its own WAL position when
    /// it is out of recovery); None = it did not answer.
    pub fn build(
        &mut self,
        primary_name: &str,
        primary: Option<Answer>,
        others: Vec<(String, Option<Answer>)>,
    ) -> ReplSample {
        let parsed = primary.and_then(|(at, cols)| {
            let json = cols.into_iter().next().flatten()?;
            Some((at, serde_json::from_str::<PrimaryRow>(&json).ok()?))
        });
        let mut sample = ReplSample {
            at: Instant::now(),
            primary: primary_name.to_string(),
            primary_up: parsed.is_some(),
            timeline: None,
            insert_lsn: None,
            current_lsn: None,
            wal_records: None,
            wal_fpi: None,
            pg_wal_bytes: None,
            standbys: Vec::with_capacity(others.len()),
            timeline_changed: false,
        };
        let mut slow = SlowParts::default();
        if let Some((at, row)) = parsed {
            slow = self.slow_parts(row.full, &row);
            sample.at = at;
            sample.insert_lsn = parse_lsn(&row.insert);
            sample.current_lsn = parse_lsn(&row.current);
            sample.timeline = slow
                .tli
                .as_deref()
                .and_then(|t| u32::from_str_radix(t, 16).ok());
            sample.wal_records = slow.wal.as_ref().and_then(|w| w.records);
            sample.wal_fpi = slow.wal.as_ref().and_then(|w| w.fpi);
            let t = self.secs(at);
            // The timeline follows the flushed position: WAL is sent to standbys once it is
            // flushed, so a standby's lag counts from then (from the insert position, it
            // would also count the primary's own fsync of each commit).
            let flushed = row
                .flush
                .as_deref()
                .and_then(parse_lsn)
                .or(sample.insert_lsn);
            let went_back =
                flushed.is_some_and(|lsn| self.timeline.push(t, lsn) == Pushed::TimelineChanged);
            let who = (primary_name.to_string(), sample.timeline);
            let new_primary = self.last_primary.as_ref().is_some_and(|p| *p != who);
            sample.timeline_changed = went_back || new_primary;
            self.last_primary = Some(who);
        }
        for (name, answer) in others {
            let s = self.standby(&sample, &slow, name, answer);
            sample.standbys.push(s);
        }
        if let Some(m) = self.last_replay.values().min() {
            self.timeline.prune_below(*m);
        }
        sample
    }

    /// A full answer replaces the slow parts; a light one carries them forward.
    fn slow_parts(&mut self, full: bool, row: &PrimaryRow) -> SlowParts {
        if full {
            self.slow = Some(SlowParts {
                tli: row.tli.clone(),
                repl: row.repl.clone(),
                slots: row.slots.clone(),
                wal: row.wal.clone(),
            });
        }
        self.slow.clone().unwrap_or_default()
    }

    fn standby(
        &mut self,
        sample: &ReplSample,
        slow: &SlowParts,
        name: String,
        answer: Option<Answer>,
    ) -> StandbySample {
        let mut s = StandbySample {
            node: name,
            ..Default::default()
        };
        if let Some((at, cols)) = answer {
            let col = |i: usize| cols.get(i).cloned().flatten();
            s.up = true;
            s.in_recovery = col(0).map(|v| v == "true");
            s.receive_lsn = col(1).as_deref().and_then(parse_lsn);
            s.replay_lsn = col(2).as_deref().and_then(parse_lsn);
            s.current_lsn = col(3).as_deref().and_then(parse_lsn);
            // A node that is not in recovery is no standby: no lag to speak of.
            if s.in_recovery == Some(true) {
                if let Some(r) = s.replay_lsn {
                    self.last_replay.insert(s.node.clone(), r);
                    s.lag_s = self.timeline.lag_at(self.secs(at), r);
                }
                if let (Some(cur), Some(r)) = (sample.current_lsn, s.replay_lsn) {
                    s.lag_bytes = Some(cur.saturating_sub(r));
                }
                if let (Some(cur), Some(r)) = (sample.current_lsn, s.receive_lsn) {
                    s.receive_lag_bytes = Some(cur.saturating_sub(r));
                }
            }
        }
        let known = self.known_as.get(&s.node).unwrap_or(&s.node).as_str();
        if let Some(rep) = slow
            .repl
            .iter()
            .flatten()
            .find(|r| r.app.as_deref() == Some(known))
        {
            s.state = rep.state.clone();
            s.sync_state = rep.sync.clone();
            s.pg_write_lag_s = rep.write_lag;
            s.pg_flush_lag_s = rep.flush_lag;
            s.pg_replay_lag_s = rep.replay_lag;
        }
        if let Some(slot) = slow.slots.iter().flatten().find(|sl| sl.slot == known) {
            s.slot_retained_bytes = slot.retained.map(|v| v.max(0) as u64);
            s.wal_status = slot.wal_status.clone();
            s.safe_wal_size = slot.safe;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn primary(at: Instant, insert: &str, extra: &str) -> Option<Answer> {
        let json = format!(
            r#"{{"full": true, "insert": "{insert}", "current": "{insert}", "tli": "00000001"{extra}}}"#
        );
        Some((at, vec![Some(json)]))
    }

    fn standby(at: Instant, recovery: bool, replay: &str) -> Option<Answer> {
        Some((
            at,
            vec![
                Some(recovery.to_string()),
                Some(replay.into()),
                Some(replay.into()),
            ],
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn lag_in_bytes_and_seconds_from_the_answers() {
        let origin = Instant::now();
        let mut b = SampleBuilder::new(origin);
        let t1 = origin + Duration::from_secs(1);
        b.build("primary", primary(t1, "0/1000", ""), vec![]);
        let t2 = origin + Duration::from_secs(2);
        let repl = r#", "repl": [{"app": "standby1", "state": "streaming", "sync": "async", "write_lag": null, "flush_lag": null, "replay_lag": 0.5}], "slots": [{"slot": "standby1", "retained": 4096, "wal_status": "reserved", "safe": null}]"#;
        let s = b.build(
            "primary",
            primary(t2, "0/3000", repl),
            vec![("standby1".into(), standby(t2, true, "0/1000"))],
        );
        assert_eq!(s.timeline, Some(1));
        let sb = &s.standbys[0];
        assert!(sb.up);
        assert_eq!(sb.lag_bytes, Some(0x2000));
        assert!((sb.lag_s.unwrap() - 1.0).abs() < 1e-6, "{:?}", sb.lag_s);
        assert_eq!(sb.state.as_deref(), Some("streaming"));
        assert_eq!(sb.pg_replay_lag_s, Some(0.5));
        assert_eq!(sb.pg_write_lag_s, None, "NULL stays NULL");
        assert_eq!(sb.slot_retained_bytes, Some(4096));
        assert_eq!(sb.wal_status.as_deref(), Some("reserved"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_down_or_out_of_recovery_has_no_lag() {
        let origin = Instant::now();
        let mut b = SampleBuilder::new(origin);
        let t = origin + Duration::from_secs(1);
        let s = b.build(
            "standby1",
            primary(t, "0/5000", ""),
            vec![
                ("primary".into(), None),
                ("standby2".into(), standby(t, false, "0/4000")),
            ],
        );
        assert!(!s.standbys[0].up && s.standbys[0].lag_s.is_none());
        assert_eq!(s.standbys[1].in_recovery, Some(false));
        assert!(s.standbys[1].lag_bytes.is_none() && s.standbys[1].lag_s.is_none());
        let down = b.build("standby1", None, vec![]);
        assert!(!down.primary_up && down.insert_lsn.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_primary_restarts_wal_rates_but_keeps_the_lsn_history() {
        let origin = Instant::now();
        let mut b = SampleBuilder::new(origin);
        let at = |s: u64| origin + Duration::from_secs(s);
        b.build("primary", primary(at(1), "0/1000", ""), vec![]);
        let same = b.build("primary", primary(at(2), "0/2000", ""), vec![]);
        assert!(!same.timeline_changed);
        // standby1 promoted at 0/1800 (below the old primary's last position), timeline 2.
        let json = r#"{"full": true, "insert": "0/1800", "current": "0/1800", "tli": "00000002"}"#;
        let s = b.build(
            "standby1",
            Some((at(3), vec![Some(json.into())])),
            vec![("standby2".into(), standby(at(3), true, "0/1400"))],
        );
        assert!(s.timeline_changed);
        assert_eq!(s.timeline, Some(2));
        // 0/1400 was reached at 1.25 s on the old primary: the history carried on.
        let lag = s.standbys[0].lag_s.unwrap();
        assert!((lag - 1.75).abs() < 0.01, "{lag}");
    }
}
