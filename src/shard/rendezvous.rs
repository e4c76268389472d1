//! Where the shards meet: a small table on the primary. Every shard registers its row; shard 0
//! (after `[setup]`) registers too; each marks itself ready once its clients are connected;
//! when all N are ready, shard 0 publishes one start time (the database's clock, a little
//! ahead) and every shard starts the load at that instant, its own clock corrected by the
//! offset it measured against the database's.
//!
//! A row is "pending" until a start is published on it; rows of an earlier attempt under the
//! same run id are taken over when their shard registers again. A shard that gives up removes
//! its pending row.

use super::ShardSpec;
use crate::error::usage;
use crate::pg::{Conn, Endpoint};
use crate::units::format_duration;
use anyhow::{Context, Result};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// How far ahead of "all ready" the common start is set: every shard polls well within it.
pub const LEAD: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(100);

const TABLE: &str = "CREATE TABLE IF NOT EXISTS pgbench_repl_shards (\
    run_id text NOT NULL, shard int NOT NULL, shards int NOT NULL, host text NOT NULL, \
    registered_at timestamptz NOT NULL, ready_at timestamptz, start_at timestamptz, \
    finished_at timestamptz, PRIMARY KEY (run_id, shard))";

/// One shard's place in the meeting.
pub struct Rendezvous {
    pub primary: Endpoint,
    pub run_id: String,
    pub spec: ShardSpec,
    /// How long to wait for the others.
    pub wait: Duration,
    /// This machine, for the table and the merged report.
    pub host: String,
}

/// The common start, as this shard saw it.
#[derive(Debug, Clone)]
pub struct Start {
    /// The instant to start the load (already past when `late_s` > 0).
    pub at: Instant,
    /// The published start, seconds since the epoch by the database's clock.
    pub start_at_unix_s: f64,
    /// Seconds this shard started after the published start (0 when on time).
    pub late_s: f64,
    /// The database's clock minus this machine's, seconds.
    pub clock_offset_s: f64,
}

fn unix_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn list(v: &[i32]) -> String {
    v.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Rendezvous {
    async fn conn(&self) -> Result<Conn> {
        self.primary.connect(None).await
    }

    /// Create the table (concurrent shards may race: a lost race is fine) and register this
    /// shard's row as pending.
    pub async fn register(&self) -> Result<()> {
        let conn = self.conn().await?;
        for attempt in 0..5 {
            match conn.client.batch_execute(TABLE).await {
                Ok(()) => break,
                // Two CREATE TABLE IF NOT EXISTS at once: one fails on the catalog's unique
                // index; the table is there after the other commits.
                Err(e) if attempt < 4 && e.code().is_some() => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => return Err(e).context("cannot create pgbench_repl_shards"),
            }
        }
        conn.client
            .execute(
                "INSERT INTO pgbench_repl_shards (run_id, shard, shards, host, registered_at) \
                 VALUES ($1, $2, $3, $4, clock_timestamp()) \
                 ON CONFLICT (run_id, shard) DO UPDATE SET shards = EXCLUDED.shards, \
                 host = EXCLUDED.host, registered_at = EXCLUDED.registered_at, \
                 ready_at = NULL, start_at = NULL, finished_at = NULL",
                &[
                    &self.run_id,
                    &(self.spec.index as i32),
                    &(self.spec.count as i32),
                    &self.host,
                ],
            )
            .await
            .context("cannot register in pgbench_repl_shards")?;
        Ok(())
    }

    /// The pending rows of this run: (shard, shards, ready).
    async fn pending(&self, conn: &Conn) -> Result<Vec<(i32, i32, bool)>> {
        let rows = conn
            .client
            .query(
                "SELECT shard, shards, ready_at IS NOT NULL FROM pgbench_repl_shards \
                 WHERE run_id = $1 AND start_at IS NULL ORDER BY shard",
                &[&self.run_id],
            )
            .await
            .context("cannot read pgbench_repl_shards")?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Shards other than 0 wait until shard 0 has run `[setup]` (it registers after it).
    pub async fn wait_for_setup(&self) -> Result<()> {
        let conn = self.conn().await?;
        let deadline = Instant::now() + self.wait;
        loop {
            if self.pending(&conn).await?.iter().any(|r| r.0 == 0) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self
                    .gave_up(&conn, "shard 0 (which runs [setup]) never registered")
                    .await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Mark this shard ready (its clients connected); shard 0 publishes the start once all N
    /// are; every shard then waits for the start. Returns when the load is to start.
    pub async fn ready_and_start(&self) -> Result<Start> {
        let conn = self.conn().await?;
        conn.client
            .execute(
                "UPDATE pgbench_repl_shards SET ready_at = clock_timestamp() \
                 WHERE run_id = $1 AND shard = $2",
                &[&self.run_id, &(self.spec.index as i32)],
            )
            .await
            .context("cannot mark this shard ready in pgbench_repl_shards")?;
        let deadline = Instant::now() + self.wait;
        let n = self.spec.count as i32;
        loop {
            if self.spec.is_first() {
                let pending = self.pending(&conn).await?;
                let other: Vec<i32> = pending.iter().filter(|r| r.1 != n).map(|r| r.0).collect();
                if !other.is_empty() {
                    let _ = self.leave().await;
                    return Err(usage(format!(
                        "run '{}': shards {} registered with a shard count other than {n}: every \
                         shard of a run needs the same --shard .../{n}",
                        self.run_id,
                        list(&other)
                    )));
                }
                let ready = pending.iter().filter(|r| r.2 && r.0 < n).count() as i32;
                if ready == n {
                    conn.client
                        .execute(
                            "UPDATE pgbench_repl_shards SET start_at = statement_timestamp() + \
                             make_interval(secs => $2) WHERE run_id = $1 AND start_at IS NULL \
                             AND shard < $3",
                            &[&self.run_id, &LEAD.as_secs_f64(), &n],
                        )
                        .await
                        .context("cannot publish the start in pgbench_repl_shards")?;
                }
            }
            if let Some(start) = self.published_start(&conn).await? {
                return Ok(start);
            }
            if Instant::now() >= deadline {
                return Err(self.gave_up(&conn, "no common start was published").await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// This shard's start, once published: the database's clock read in the same query, so
    /// the offset to this machine's clock is known within half the round trip.
    async fn published_start(&self, conn: &Conn) -> Result<Option<Start>> {
        let before = SystemTime::now();
        let row = conn
            .client
            .query_one(
                "SELECT extract(epoch FROM start_at)::float8, \
                 extract(epoch FROM clock_timestamp())::float8 \
                 FROM pgbench_repl_shards WHERE run_id = $1 AND shard = $2",
                &[&self.run_id, &(self.spec.index as i32)],
            )
            .await
            .context("cannot read pgbench_repl_shards")?;
        let after = SystemTime::now();
        let Some(start_at) = row.get::<_, Option<f64>>(0) else {
            return Ok(None);
        };
        let db_now: f64 = row.get(1);
        let local_mid = (unix_s(before) + unix_s(after)) / 2.0;
        let offset = db_now - local_mid;
        // Seconds from now (this machine) until the start.
        let until = start_at - (unix_s(SystemTime::now()) + offset);
        let now = Instant::now();
        Ok(Some(if until > 0.0 {
            Start {
                at: now + Duration::from_secs_f64(until),
                start_at_unix_s: start_at,
                late_s: 0.0,
                clock_offset_s: offset,
            }
        } else {
            Start {
                at: now,
                start_at_unix_s: start_at,
                late_s: -until,
                clock_offset_s: offset,
            }
        }))
    }

    /// The error after a timeout: which shards never came, which never got ready. This
    /// shard's pending row is removed so a later attempt starts clean.
    async fn gave_up(&self, conn: &Conn, what: &str) -> anyhow::Error {
        let pending = self.pending(conn).await.unwrap_or_default();
        let n = self.spec.count as i32;
        let missing: Vec<i32> = (0..n)
            .filter(|i| !pending.iter().any(|r| r.0 == *i))
            .collect();
        let unready: Vec<i32> = pending
            .iter()
            .filter(|r| !r.2 && r.0 < n)
            .map(|r| r.0)
            .collect();
        let mut detail = Vec::new();
        if !missing.is_empty() {
            detail.push(format!("shards never registered: {}", list(&missing)));
        }
        if !unready.is_empty() {
            detail.push(format!("registered but not ready: {}", list(&unready)));
        }
        let _ = self.leave().await;
        usage(format!(
            "shard {} of run '{}': {what} within {} ({}); the shards meet in \
             pgbench_repl_shards on {}",
            self.spec,
            self.run_id,
            format_duration(self.wait),
            if detail.is_empty() {
                "every shard registered".into()
            } else {
                detail.join("; ")
            },
            self.primary.describe(),
        ))
    }

    /// Remove this shard's row if no start was published on it.
    pub async fn leave(&self) -> Result<()> {
        let conn = self.conn().await?;
        conn.client
            .execute(
                "DELETE FROM pgbench_repl_shards WHERE run_id = $1 AND shard = $2 \
                 AND start_at IS NULL",
                &[&self.run_id, &(self.spec.index as i32)],
            )
            .await?;
        Ok(())
    }

    /// Mark this shard finished (best effort: the primary may be gone after a drill).
    pub async fn finish(&self) {
        let done = async {
            let conn = self.conn().await?;
            conn.client
                .execute(
                    "UPDATE pgbench_repl_shards SET finished_at = clock_timestamp() \
                     WHERE run_id = $1 AND shard = $2",
                    &[&self.run_id, &(self.spec.index as i32)],
                )
                .await?;
            anyhow::Ok(())
        };
        if let Err(e) = tokio::time::timeout(Duration::from_secs(10), done)
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out")))
        {
            crate::errln!(
                "warning: shard {} could not mark itself finished: {e:#}",
                self.spec
            );
        }
    }

    /// Shard 0, before it verifies the nodes: wait (up to `limit`) until the other shards of
    /// this start have finished writing. Returns the shards still running.
    pub async fn wait_others(&self, start_at_unix_s: f64, limit: Duration) -> Vec<i32> {
        let deadline = Instant::now() + limit;
        loop {
            let running = async {
                let conn = self.conn().await?;
                let rows = conn
                    .client
                    .query(
                        "SELECT shard FROM pgbench_repl_shards WHERE run_id = $1 \
                         AND abs(extract(epoch FROM start_at)::float8 - $2) < 0.001 \
                         AND finished_at IS NULL AND shard <> $3 ORDER BY shard",
                        &[&self.run_id, &start_at_unix_s, &(self.spec.index as i32)],
                    )
                    .await?;
                anyhow::Ok(rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>())
            }
            .await
            .unwrap_or_default();
            if running.is_empty() || Instant::now() >= deadline {
                return running;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
