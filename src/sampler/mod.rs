//! The replication sampler (DESIGN section 6): every `sample_every`, the primary's WAL
//! position, pg_stat_replication, slots and pg_stat_wal, and each standby's receive/replay
//! position asked of the standby itself (never through the link shaper). It owns the LSN
//! timeline, computes byte and time lag, and sends one `ReplSample` per tick to the recorder.

pub mod timeline;

use crate::exec::{parse_lsn, Conn, Endpoint, Record};
use serde::Deserialize;
use std::time::Duration;
use timeline::{LsnTimeline, Pushed};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

/// One standby at one sample.
#[derive(Debug, Clone, Default)]
pub struct StandbySample {
    /// The standby answered.
    pub up: bool,
    pub state: Option<String>,
    pub sync_state: Option<String>,
    pub receive_lsn: Option<u64>,
    pub replay_lsn: Option<u64>,
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

/// One tick of the sampler.
#[derive(Debug, Clone)]
pub struct ReplSample {
    pub at: Instant,
    pub primary_up: bool,
    pub insert_lsn: Option<u64>,
    pub current_lsn: Option<u64>,
    /// pg_stat_wal (PostgreSQL 14+): records, full-page images, bytes, since its last reset.
    pub wal_records: Option<i64>,
    pub wal_fpi: Option<i64>,
    /// In the order of the standby endpoints.
    pub standbys: Vec<StandbySample>,
    pub timeline_changed: bool,
}

/// The full primary query without its closing part: WAL positions, pg_stat_replication, slots.
macro_rules! full_primary_query {
    () => {
        "SELECT json_build_object('full', true,\
 'insert', pg_current_wal_insert_lsn()::text, 'current', pg_current_wal_lsn()::text,\
 'repl', (SELECT json_agg(json_build_object('app', application_name, 'state', state, 'sync', sync_state,\
   'write_lag', extract(epoch FROM write_lag), 'flush_lag', extract(epoch FROM flush_lag),\
   'replay_lag', extract(epoch FROM replay_lag))) FROM pg_stat_replication),\
 'slots', (SELECT json_agg(json_build_object('slot', slot_name,\
   'retained', (pg_current_wal_lsn() - restart_lsn)::int8, 'wal_status', wal_status, 'safe', safe_wal_size))\
   FROM pg_replication_slots WHERE slot_type = 'physical')"
    };
}

const PRIMARY_QUERY: &str = concat!(
    full_primary_query!(),
    ", 'wal', (SELECT json_build_object('records', wal_records, 'fpi', wal_fpi) FROM pg_stat_wal))::text"
);

/// pg_stat_wal appeared in PostgreSQL 14.
const PRIMARY_QUERY_PRE14: &str = concat!(full_primary_query!(), ")::text");

/// Between full samples (at most every 100 ms) only the WAL positions: pg_stat_replication,
/// slots and pg_stat_wal change slowly and cost the primary more to read, so a light sample
/// carries the last full sample's values forward.
const PRIMARY_QUERY_LIGHT: &str = "SELECT json_build_object(\
 'insert', pg_current_wal_insert_lsn()::text, 'current', pg_current_wal_lsn()::text)::text";

const FULL_EVERY: Duration = Duration::from_millis(100);

const STANDBY_QUERY: &str =
    "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text";

#[derive(Deserialize)]
struct PrimaryRow {
    insert: String,
    current: String,
    /// Set by the full queries (the light one has no such key).
    #[serde(default)]
    full: bool,
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

/// pg_stat_replication, slots and pg_stat_wal from the last full sample.
struct SlowParts {
    repl: Option<Vec<ReplRow>>,
    slots: Option<Vec<SlotRow>>,
    wal: Option<WalRow>,
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

/// A connection that is reopened when it breaks; a failure only marks the node down.
struct Watched {
    endpoint: Endpoint,
    conn: Option<Conn>,
    /// The sampler's queries, prepared once per connection (no parsing on every tick).
    prepared: Vec<(&'static str, tokio_postgres::Statement)>,
}

impl Watched {
    async fn query_text(&mut self, sql: &'static str) -> Option<(Instant, Vec<Option<String>>)> {
        if self.conn.as_ref().is_none_or(|c| c.is_closed()) {
            self.prepared.clear();
            self.conn = tokio::time::timeout(Duration::from_secs(1), self.endpoint.connect(None))
                .await
                .ok()
                .and_then(Result::ok);
        }
        let conn = self.conn.as_ref()?;
        let statement = match self.prepared.iter().find(|(q, _)| *q == sql) {
            Some((_, st)) => st.clone(),
            None => match conn.client.prepare(sql).await {
                Ok(st) => {
                    self.prepared.push((sql, st.clone()));
                    st
                }
                Err(_) => {
                    self.conn = None;
                    return None;
                }
            },
        };
        let sent = Instant::now();
        let rows =
            tokio::time::timeout(Duration::from_secs(2), conn.client.query(&statement, &[])).await;
        let Ok(Ok(rows)) = rows else {
            self.conn = None;
            return None;
        };
        let back = Instant::now();
        let at = sent + back.duration_since(sent) / 2;
        let row = rows.first()?;
        Some((
            at,
            (0..row.len())
                .map(|i| row.get::<_, Option<String>>(i))
                .collect(),
        ))
    }
}

/// Sample until the run stops. Never fails: a node that does not answer is recorded as down.
pub async fn run_sampler(
    topology: std::sync::Arc<crate::exec::Topology>,
    every: Duration,
    origin: Instant,
    records: mpsc::Sender<Record>,
    mut stop: watch::Receiver<bool>,
) {
    let mut generation = topology.generation();
    let mut nodes: Vec<Watched> = topology
        .endpoints()
        .into_iter()
        .map(|endpoint| Watched {
            endpoint,
            conn: None,
            prepared: Vec::new(),
        })
        .collect();
    let mut timeline = LsnTimeline::default();
    let mut last_replay: Vec<Option<u64>> = vec![None; nodes.len() - 1];
    let mut primary_sql = PRIMARY_QUERY;
    let mut last_full: Option<Instant> = None;
    let mut slow: Option<SlowParts> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        if topology.generation() != generation {
            // A promotion: sample the new primary from now on.
            generation = topology.generation();
            nodes[0] = Watched {
                endpoint: topology.endpoint(0),
                conn: None,
                prepared: Vec::new(),
            };
        }
        let (primary, rest) = nodes
            .split_first_mut()
            .expect("the primary is always there");
        let standby_futs = rest.iter_mut().map(|n| n.query_text(STANDBY_QUERY));
        let full = last_full.is_none_or(|t: Instant| t.elapsed() + every / 2 >= FULL_EVERY);
        let sql = if full {
            primary_sql
        } else {
            PRIMARY_QUERY_LIGHT
        };
        let (p, standbys) = tokio::join!(
            primary.query_text(sql),
            futures_util::future::join_all(standby_futs)
        );
        if p.is_none() && primary_sql == PRIMARY_QUERY && full && primary.conn.is_some() {
            primary_sql = PRIMARY_QUERY_PRE14; // pg_stat_wal is missing before 14
        }
        if full && p.is_some() {
            last_full = Some(Instant::now());
        }
        let names: Vec<String> = rest.iter().map(|n| n.endpoint.name.clone()).collect();
        let sample = build_sample(p, standbys, &names, &mut timeline, origin, &mut slow);
        // Keep the history every standby may still need, down ones included.
        for (last, s) in last_replay.iter_mut().zip(&sample.standbys) {
            if s.replay_lsn.is_some() {
                *last = s.replay_lsn;
            }
        }
        if let Some(m) = last_replay.iter().flatten().min() {
            timeline.prune_below(*m);
        }
        if records
            .send(Record::Sample(Box::new(sample)))
            .await
            .is_err()
        {
            break;
        }
    }
}

fn build_sample(
    primary: Option<(Instant, Vec<Option<String>>)>,
    standbys: Vec<Option<(Instant, Vec<Option<String>>)>>,
    names: &[String],
    timeline: &mut LsnTimeline,
    origin: Instant,
    slow: &mut Option<SlowParts>,
) -> ReplSample {
    let secs = |at: Instant| at.saturating_duration_since(origin).as_secs_f64();
    let mut parsed: Option<(Instant, PrimaryRow)> = primary.and_then(|(at, cols)| {
        let json = cols.into_iter().next().flatten()?;
        Some((at, serde_json::from_str(&json).ok()?))
    });
    // A light sample carries the slow parts of the last full one forward.
    if let Some((_, row)) = parsed.as_mut() {
        if row.full {
            *slow = Some(SlowParts {
                repl: row.repl.take(),
                slots: row.slots.take(),
                wal: row.wal.take(),
            });
        }
        if let Some(sp) = slow.as_ref() {
            row.repl = sp.repl.clone();
            row.slots = sp.slots.clone();
            row.wal = sp.wal.clone();
        }
    }
    let mut sample = ReplSample {
        at: Instant::now(),
        primary_up: parsed.is_some(),
        insert_lsn: None,
        current_lsn: None,
        wal_records: None,
        wal_fpi: None,
        standbys: Vec::with_capacity(names.len()),
        timeline_changed: false,
    };
    if let Some((at, row)) = &parsed {
        sample.at = *at;
        sample.insert_lsn = parse_lsn(&row.insert);
        sample.current_lsn = parse_lsn(&row.current);
        if let Some(lsn) = sample.insert_lsn {
            sample.timeline_changed = timeline.push(secs(*at), lsn) == Pushed::TimelineChanged;
        }
        sample.wal_records = row.wal.as_ref().and_then(|w| w.records);
        sample.wal_fpi = row.wal.as_ref().and_then(|w| w.fpi);
    }
    for (name, answer) in names.iter().zip(standbys) {
        let mut s = StandbySample::default();
        if let Some((at, cols)) = answer {
            s.up = true;
            s.receive_lsn = cols
                .first()
                .cloned()
                .flatten()
                .as_deref()
                .and_then(parse_lsn);
            s.replay_lsn = cols
                .get(1)
                .cloned()
                .flatten()
                .as_deref()
                .and_then(parse_lsn);
            if let (Some(cur), Some(r)) = (sample.current_lsn, s.replay_lsn) {
                s.lag_bytes = Some(cur.saturating_sub(r));
            }
            if let (Some(cur), Some(r)) = (sample.current_lsn, s.receive_lsn) {
                s.receive_lag_bytes = Some(cur.saturating_sub(r));
            }
            if let Some(r) = s.replay_lsn {
                s.lag_s = timeline.lag_at(secs(at), r);
            }
        }
        if let Some((_, row)) = &parsed {
            if let Some(rep) = row
                .repl
                .iter()
                .flatten()
                .find(|r| r.app.as_deref() == Some(name))
            {
                s.state = rep.state.clone();
                s.sync_state = rep.sync.clone();
                s.pg_write_lag_s = rep.write_lag;
                s.pg_flush_lag_s = rep.flush_lag;
                s.pg_replay_lag_s = rep.replay_lag;
            }
            if let Some(slot) = row.slots.iter().flatten().find(|sl| &sl.slot == name) {
                s.slot_retained_bytes = slot.retained.map(|v| v.max(0) as u64);
                s.wal_status = slot.wal_status.clone();
                s.safe_wal_size = slot.safe;
            }
        }
        sample.standbys.push(s);
    }
    sample
}
