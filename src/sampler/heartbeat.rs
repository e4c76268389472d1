//! The heartbeat (DESIGN section 16), a visibility probe beside the LSN timeline: every
//! `heartbeat_every` the writer commits heartbeat k on the primary (one row of
//! `pgbench_repl_heartbeat`, `synchronous_commit = local` so no synchronous standby holds it
//! back) and notes when, on the tool's clock; a poller per standby reads the row every
//! POLL_FAST until k shows there. Heartbeat k's visibility lag on that standby is when it was
//! first seen minus when it committed: "committed" is when the writer's answer came, "first
//! seen" the middle between the last read without it and the first read with it (each read
//! stamped at the middle of its round trip), so the polling period bounds the error both
//! ways instead of adding half of it on average. The recorder
//! works the lags out (`record::heartbeat`): here only what was committed and what was seen.

use crate::messages::{Beat, Record};
use crate::pg::wire::WireConn;
use crate::pg::Endpoint;
use crate::topology::{NodeRole, Topology};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// The heartbeat's table: one row, its k and when it was written.
pub const TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS pgbench_repl_heartbeat \
 (id int PRIMARY KEY, k bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp()); \
 INSERT INTO pgbench_repl_heartbeat (id, k) VALUES (1, 0) ON CONFLICT (id) DO NOTHING";
const READ_SQL: &str = "SELECT k::text FROM pgbench_repl_heartbeat WHERE id = 1";
const LSN_SQL: &str = "SELECT pg_current_wal_insert_lsn()::text";

/// How often a standby is asked while a heartbeat it has not shown is young (the stated
/// resolution), and once that heartbeat is older than SLOW_AFTER (a stalled standby).
pub const POLL_FAST: Duration = Duration::from_millis(1);
const POLL_SLOW: Duration = Duration::from_millis(20);
const SLOW_AFTER: Duration = Duration::from_millis(500);

fn beat_sql(k: u64) -> String {
    format!("UPDATE pgbench_repl_heartbeat SET k = {k}, at = clock_timestamp() WHERE id = 1")
}

async fn connect(e: &Endpoint) -> Option<WireConn> {
    let c = tokio::time::timeout(Duration::from_secs(1), e.connect_wire(Some("local")));
    c.await.ok()?.ok()
}

/// One question: when it was sent, when its answer came, and the answer.
async fn ask(conn: &mut WireConn, sql: &str) -> Option<(Instant, Instant, Option<String>)> {
    let sent = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(2), conn.simple(sql))
        .await
        .ok()?
        .ok()?;
    Some((sent, Instant::now(), answer))
}

/// The WAL one heartbeat writes, measured on the primary before the load starts: the
/// smallest insert-LSN advance around three of them. Also the k the table holds now.
pub async fn prepare(primary: &Endpoint) -> Option<(u64, u64)> {
    let mut conn = connect(primary).await?;
    let (_, _, k) = ask(&mut conn, READ_SQL).await?;
    let mut k: u64 = k?.parse().ok()?;
    let mut least: Option<u64> = None;
    for _ in 0..3 {
        let (_, _, before) = ask(&mut conn, LSN_SQL).await?;
        k += 1;
        ask(&mut conn, &beat_sql(k)).await?;
        let (_, _, after) = ask(&mut conn, LSN_SQL).await?;
        let (b, a) = (
            crate::pg::parse_lsn(&before?)?,
            crate::pg::parse_lsn(&after?)?,
        );
        let d = a.saturating_sub(b);
        least = Some(least.map_or(d, |l| l.min(d)));
    }
    Some((least?, k))
}

/// The last heartbeat committed: (k, when).
type Latest = watch::Sender<(u64, Instant)>;

/// Write and watch heartbeats until the run stops. `k0` is the k the table held before.
pub async fn run_heartbeat(
    topology: Arc<Topology>,
    every: Duration,
    k0: u64,
    records: mpsc::Sender<Record>,
    stop: watch::Receiver<bool>,
) {
    let (latest, _) = watch::channel((k0, Instant::now()));
    let nodes = topology.view().len();
    let mut tasks = tokio::task::JoinSet::new();
    for node in 0..nodes {
        tasks.spawn(poll_node(
            topology.clone(),
            node,
            k0,
            latest.subscribe(),
            records.clone(),
            stop.clone(),
        ));
    }
    write_beats(topology, every, k0, latest, records, stop).await;
    while tasks.join_next().await.is_some() {}
}

async fn write_beats(
    topology: Arc<Topology>,
    every: Duration,
    mut k: u64,
    latest: Latest,
    records: mpsc::Sender<Record>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn: Option<(u64, WireConn)> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let view = topology.view();
        let Some(p) = view.primary() else { continue };
        // A new primary (a failover): the next heartbeat goes there.
        if conn
            .as_ref()
            .is_none_or(|(g, c)| *g != view.generation || c.is_closed())
        {
            conn = connect(&view.nodes[p].endpoint)
                .await
                .map(|c| (view.generation, c));
        }
        let Some((_, c)) = conn.as_mut() else {
            continue;
        };
        match ask(c, &beat_sql(k + 1)).await {
            // Committed when the answer came: the commit is flushed, and visible on the
            // primary, just before the server answers (the midpoint would be early by the
            // flush, which standbys wait for too).
            Some((_, at, _)) => {
                k += 1;
                // The record first: the recorder must know the commit before any sighting.
                if records
                    .send(Record::Beat(Beat::Committed { k, at }))
                    .await
                    .is_err()
                {
                    return;
                }
                latest.send_replace((k, at));
            }
            None => conn = None,
        }
    }
}

/// Ask `node` (while it is a standby) for the heartbeat it shows, until it shows the latest.
async fn poll_node(
    topology: Arc<Topology>,
    node: usize,
    k0: u64,
    mut latest: watch::Receiver<(u64, Instant)>,
    records: mpsc::Sender<Record>,
    mut stop: watch::Receiver<bool>,
) {
    let mut seen = k0;
    let mut conn: Option<WireConn> = None;
    // tokio's sleeps come a millisecond late on average: the resolution would be 2 ms.
    let mut timer = crate::clock::PreciseTimer::new();
    // When the oldest heartbeat this node has not shown was committed (about).
    let mut waiting_since: Option<Instant> = None;
    // When the node last answered without the newest heartbeat: it became visible after.
    let mut last_miss: Option<Instant> = None;
    loop {
        let (want, committed) = *latest.borrow_and_update();
        if want <= seen {
            waiting_since = None;
            last_miss = None;
            tokio::select! {
                r = latest.changed() => if r.is_err() { return },
                _ = stop.wait_for(|s| *s) => return,
            }
            continue;
        }
        let view = topology.view();
        let name = view.name(node).to_string();
        if view.nodes[node].role != NodeRole::Standby {
            // The primary or a failed node: nothing to watch until it is a standby again.
            tokio::select! {
                _ = tokio::time::sleep(POLL_SLOW) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            continue;
        }
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            conn = connect(&view.nodes[node].endpoint).await;
        }
        if let Some(c) = conn.as_mut() {
            match ask(c, READ_SQL).await {
                Some((sent, got, Some(k))) => {
                    // The snapshot was taken between sending and the answer; the heartbeat
                    // became visible after the last answer without it (or its commit).
                    let read_at = sent + (got - sent) / 2;
                    match k.parse::<u64>() {
                        Ok(k) if k >= want => {
                            let after = last_miss.map_or(committed, |m| m.max(committed));
                            let at = if after < read_at {
                                after + (read_at - after) / 2
                            } else {
                                read_at
                            };
                            seen = k;
                            last_miss = None;
                            let beat = Beat::Seen { node: name, k, at };
                            if records.send(Record::Beat(beat)).await.is_err() {
                                return;
                            }
                        }
                        Ok(k) if k > seen => {
                            // An older heartbeat shows: it counts now, the newest not yet.
                            seen = k;
                            last_miss = Some(read_at);
                            let beat = Beat::Seen {
                                node: name,
                                k,
                                at: read_at,
                            };
                            if records.send(Record::Beat(beat)).await.is_err() {
                                return;
                            }
                        }
                        _ => last_miss = Some(read_at),
                    }
                }
                // No table yet (a standby still replaying [setup]), or no answer.
                Some((_, _, None)) => {}
                None => conn = None,
            }
        }
        let since = *waiting_since.get_or_insert(committed);
        let pause = if since.elapsed() < SLOW_AFTER {
            POLL_FAST
        } else {
            POLL_SLOW
        };
        tokio::select! {
            _ = timer.sleep_until_early(Instant::now() + pause) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
