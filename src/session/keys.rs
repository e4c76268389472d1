//! The failover drill's keys: every write of a run with a kill or a promote inserts
//! (client, seq) into `pgbench_repl_keys` in its own transaction; after the run the keys on the
//! primary say which acknowledged writes survived and which unknown ones committed.

use crate::pg::Conn;
use crate::record::summary::KeyCounts;
use crate::record::KeyOutcome;
use anyhow::{Context, Result};
use std::collections::HashSet;

/// Create the table once (setup).
pub async fn create_table(conn: &Conn) -> Result<()> {
    conn.client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS pgbench_repl_keys (client_id int NOT NULL, \
             seq bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp(), \
             PRIMARY KEY (client_id, seq))",
        )
        .await
        .context("cannot create pgbench_repl_keys")
}

/// Empty it before a run (keys are per run).
pub async fn truncate(conn: &Conn) -> Result<()> {
    conn.client
        .batch_execute("TRUNCATE pgbench_repl_keys")
        .await
        .context("cannot empty pgbench_repl_keys")
}

/// The keys the node holds.
pub async fn read(conn: &Conn) -> Result<HashSet<(i32, i64)>> {
    let rows = conn
        .client
        .query("SELECT client_id, seq FROM pgbench_repl_keys", &[])
        .await
        .context("cannot read pgbench_repl_keys")?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// What the keys say: acknowledged writes missing (lost) and the time they cover, and which
/// writes of unknown outcome committed after all.
pub fn count(log: &[KeyOutcome], present: &HashSet<(i32, i64)>) -> KeyCounts {
    let mut c = KeyCounts {
        lost: Some(0),
        ..Default::default()
    };
    let mut lost_times: Vec<f64> = Vec::new();
    for k in log {
        let there = present.contains(&(k.client as i32, k.seq));
        if k.acknowledged {
            c.acknowledged += 1;
            if !there {
                c.lost = c.lost.map(|l| l + 1);
                lost_times.push(k.t_s);
            }
        } else if k.unknown {
            c.unknown += 1;
            c.unknown_committed += u64::from(there);
        }
    }
    if let (Some(first), Some(last)) = (
        lost_times.iter().cloned().reduce(f64::min),
        lost_times.iter().cloned().reduce(f64::max),
    ) {
        c.lost_span_s = Some(((last - first) * 1000.0).round() / 1000.0);
        c.lost_first_s = Some((first * 1000.0).round() / 1000.0);
        c.lost_last_s = Some((last * 1000.0).round() / 1000.0);
    }
    c
}

/// What the log alone says when no primary can be asked which keys it holds: the writes
/// acknowledged and unknown, and nothing about which were lost.
pub fn count_unread(log: &[KeyOutcome]) -> KeyCounts {
    KeyCounts {
        acknowledged: log.iter().filter(|k| k.acknowledged).count() as u64,
        unknown: log.iter().filter(|k| !k.acknowledged && k.unknown).count() as u64,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(client: u32, seq: i64, acknowledged: bool, unknown: bool, t_s: f64) -> KeyOutcome {
        KeyOutcome {
            client,
            seq,
            acknowledged,
            unknown,
            t_s,
        }
    }

    #[test]
    fn lost_and_unknown_committed_from_the_keys() {
        let log = [
            k(1, 1, true, false, 1.0),
            k(1, 2, true, false, 2.0),
            k(2, 1, true, false, 2.5),
            k(2, 2, true, false, 3.5),
            k(1, 3, false, true, 3.9),
            k(2, 3, false, true, 3.9),
            k(2, 4, false, false, 4.0),
        ];
        let present: HashSet<(i32, i64)> = [(1, 1), (2, 1), (1, 3)].into_iter().collect();
        let c = count(&log, &present);
        assert_eq!((c.acknowledged, c.lost), (4, Some(2)));
        assert_eq!(c.lost_span_s, Some(1.5));
        assert_eq!((c.unknown, c.unknown_committed), (2, 1));
    }
}
