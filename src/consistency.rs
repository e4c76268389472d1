//! Do all nodes hold the same data? Once every standby has replayed the primary's position,
//! every user table's row count and content hash (md5 over its rows in primary-key order) are
//! compared across the nodes. Works against any cluster: it needs only endpoints.

use crate::pg::{parse_lsn, Conn, Endpoint};
use anyhow::{Context, Result};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Every node answered, caught up, and every table is the same everywhere.
    pub consistent: bool,
    pub nodes: Vec<String>,
    /// Seconds spent waiting for the standbys to replay the primary's position.
    pub waited_s: f64,
    /// Standbys that had not replayed the primary's position when the wait ended.
    pub behind: Vec<String>,
    /// Nodes that did not answer.
    pub unreachable: Vec<String>,
    pub tables: Vec<TableCheck>,
    /// `table: node (rows) vs primary (rows)` for every difference.
    pub differences: Vec<String>,
}

/// One table on every node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableCheck {
    pub table: String,
    pub same: bool,
    /// Per node: the row count (None: the table is not there).
    pub rows: IndexMap<String, Option<i64>>,
    pub hashes: IndexMap<String, Option<String>>,
}

/// How long a standby's replay may stand still before verify stops waiting for it.
const STUCK: Duration = Duration::from_secs(10);

/// User tables, logged ones only (unlogged tables are empty on standbys by design).
const TABLES: &str = "SELECT format('%I.%I', n.nspname, c.relname), \
  coalesce((SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey, a.attnum)) \
            FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
            WHERE i.indrelid = c.oid AND i.indisprimary), '') \
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
  WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' \
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' \
  ORDER BY 1";

/// Compare every node with the first (the primary). Waits up to `wait` for standbys.
pub async fn verify(nodes: &[Endpoint], wait: Duration) -> Result<VerifyReport> {
    let mut conns: Vec<(String, Option<Conn>)> = Vec::new();
    for e in nodes {
        conns.push((e.name.clone(), e.connect(None).await.ok()));
    }
    let names: Vec<String> = conns.iter().map(|(n, _)| n.clone()).collect();
    let unreachable: Vec<String> = conns
        .iter()
        .filter(|(_, c)| c.is_none())
        .map(|(n, _)| n.clone())
        .collect();
    let primary = conns
        .first()
        .and_then(|(_, c)| c.as_ref())
        .with_context(|| {
            format!(
                "cannot reach the primary ({})",
                names.first().map(String::as_str).unwrap_or("?")
            )
        })?;
    let started = Instant::now();
    let behind = wait_replayed(primary, &conns[1..], wait).await?;
    let waited_s = started.elapsed().as_secs_f64();
    let mut tables: IndexMap<String, String> = IndexMap::new();
    for (_, c) in &conns {
        if let Some(c) = c {
            for row in c.client.query(TABLES, &[]).await? {
                tables.entry(row.get(0)).or_insert_with(|| row.get(1));
            }
        }
    }
    let mut checks = Vec::new();
    let mut differences = Vec::new();
    for (table, pk) in &tables {
        let check = check_table(&conns, table, pk).await;
        let base = (
            check.rows.first().map(|(_, v)| *v),
            check.hashes.first().map(|(_, v)| v.clone()),
        );
        for (node, rows) in check.rows.iter().skip(1) {
            if (Some(*rows), Some(check.hashes[node].clone())) != base
                && conns.iter().any(|(n, c)| n == node && c.is_some())
            {
                differences.push(format!(
                    "{table}: {node} has {} rows, {} has {}",
                    rows.map(|r| r.to_string())
                        .unwrap_or_else(|| "no such table".into()),
                    names[0],
                    base.0
                        .flatten()
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "no such table".into()),
                ));
            }
        }
        checks.push(check);
    }
    Ok(VerifyReport {
        consistent: differences.is_empty() && behind.is_empty() && unreachable.is_empty(),
        nodes: names,
        waited_s,
        behind,
        unreachable,
        tables: checks,
        differences,
    })
}

/// Wait (up to `wait`) until every node after the first (the primary) has replayed the
/// primary's current position; the names of the ones that did not. Nodes that do not answer are
/// not waited for.
pub async fn wait_for_replay(nodes: &[Endpoint], wait: Duration) -> Result<Vec<String>> {
    let Some((first, rest)) = nodes.split_first() else {
        return Ok(Vec::new());
    };
    let primary = first.connect(None).await?;
    let mut others = Vec::new();
    for e in rest {
        others.push((e.name.clone(), e.connect(None).await.ok()));
    }
    wait_replayed(&primary, &others, wait).await
}

/// Wait until every standby has replayed the primary's current position; the ones that did
/// not in time. Nodes out of recovery (a second primary) are not waited for.
async fn wait_replayed(
    primary: &Conn,
    others: &[(String, Option<Conn>)],
    wait: Duration,
) -> Result<Vec<String>> {
    let target: String = primary
        .client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .context("the primary is not a primary (pg_current_wal_lsn failed)")?
        .get(0);
    let target = parse_lsn(&target).unwrap_or(0);
    let deadline = Instant::now() + wait;
    let mut behind = Vec::new();
    for (name, conn) in others {
        let Some(conn) = conn else { continue };
        // A standby whose replay does not move for this long is not coming (it does not
        // stream: a lost slot, a diverged timeline).
        let mut last = (None, Instant::now());
        loop {
            let row = conn
                .client
                .query_one(
                    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text",
                    &[],
                )
                .await?;
            let in_recovery: bool = row.get(0);
            let replay = row
                .get::<_, Option<String>>(1)
                .as_deref()
                .and_then(parse_lsn);
            if !in_recovery || replay.is_some_and(|r| r >= target) {
                break;
            }
            if replay != last.0 {
                last = (replay, Instant::now());
            }
            if Instant::now() >= deadline || last.1.elapsed() > STUCK {
                behind.push(name.clone());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(behind)
}

async fn check_table(conns: &[(String, Option<Conn>)], table: &str, pk: &str) -> TableCheck {
    let order = if pk.is_empty() {
        "t::text".to_string()
    } else {
        pk.to_string()
    };
    let sql = format!(
        "SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY {order}), '')) FROM {table} t"
    );
    let mut rows = IndexMap::new();
    let mut hashes = IndexMap::new();
    for (name, conn) in conns {
        let answer = match conn {
            Some(c) => c.client.query_one(sql.as_str(), &[]).await.ok(),
            None => None,
        };
        rows.insert(name.clone(), answer.as_ref().map(|r| r.get::<_, i64>(0)));
        hashes.insert(name.clone(), answer.as_ref().map(|r| r.get::<_, String>(1)));
    }
    let first = (
        rows.first().map(|(_, v)| *v),
        hashes.first().map(|(_, v)| v.clone()),
    );
    let same = rows
        .iter()
        .zip(hashes.iter())
        .filter(|((n, _), _)| conns.iter().any(|(m, c)| m == *n && c.is_some()))
        .all(|((_, r), (_, h))| (Some(*r), Some(h.clone())) == first);
    TableCheck {
        table: table.to_string(),
        same,
        rows,
        hashes,
    }
}

/// The report as a table for a terminal.
pub fn render(r: &VerifyReport) -> String {
    let mut out = format!("{:<40}", "table");
    for n in &r.nodes {
        out.push_str(&format!(" {n:>12}"));
    }
    out.push_str("  same\n");
    for t in &r.tables {
        out.push_str(&format!("{:<40}", t.table));
        for n in &r.nodes {
            let v = t.rows.get(n).copied().flatten();
            out.push_str(&format!(
                " {:>12}",
                v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
            ));
        }
        out.push_str(if t.same { "  yes\n" } else { "  NO\n" });
    }
    for n in &r.unreachable {
        out.push_str(&format!("{n} did not answer\n"));
    }
    for n in &r.behind {
        out.push_str(&format!(
            "{n} had not replayed the primary's position after {:.1}s\n",
            r.waited_s
        ));
    }
    out.push_str(if r.consistent {
        "consistent: every node holds the same data\n"
    } else {
        "NOT consistent\n"
    });
    out
}
