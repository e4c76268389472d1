//! Running one transaction on a connection: SQL statements (BEGIN/COMMIT around more than one)
//! or a binary COPY, and classifying how it ended.

use super::conn::Conn;
use super::messages::Outcome;
use crate::workload::generators::Generator;
use crate::workload::value::Value;
use crate::workload::{CopySpec, Transaction};
use futures_util::pin_mut;
use rand::rngs::SmallRng;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

/// How a transaction ended, as the client saw it.
#[derive(Debug)]
pub struct TxResult {
    pub outcome: Outcome,
    pub sqlstate: Option<String>,
    pub rows: u64,
    /// The primary's insert LSN right after the commit (read_your_writes only).
    pub commit_lsn: Option<u64>,
}

impl TxResult {
    fn ok(rows: u64) -> Self {
        TxResult {
            outcome: Outcome::Ok,
            sqlstate: None,
            rows,
            commit_lsn: None,
        }
    }
}

/// The values a transaction's statements bind: its generated params, the built-ins, and what
/// earlier statements returned.
pub struct Vars<'a> {
    pub params: &'a [(String, Generator)],
    pub values: Vec<Value>,
    pub captured: Vec<(String, Value)>,
    pub client_id: Value,
    pub client_writes: Value,
}

const NULL: Value = Value::Null;

impl Vars<'_> {
    /// The value bound to `$name` (borrowed: binding copies nothing).
    fn get(&self, name: &str) -> &Value {
        if let Some((_, v)) = self.captured.iter().rev().find(|(n, _)| n == name) {
            return v;
        }
        if let Some(i) = self.params.iter().position(|(n, _)| n == name) {
            return &self.values[i];
        }
        match name {
            "client_id" => &self.client_id,
            "client_writes" => &self.client_writes,
            _ => &NULL,
        }
    }
}

/// Run the SQL statements of `tx`. A single statement runs alone (autocommit, as pgbench
/// does); several run between BEGIN and COMMIT.
pub async fn run_sql(
    conn: &mut Conn,
    tx_idx: u16,
    tx: &Transaction,
    statements: &[crate::workload::sql::Statement],
    vars: &mut Vars<'_>,
    want_lsn: bool,
) -> TxResult {
    let multi = statements.len() > 1;
    if multi {
        if let Err(e) = conn.client.batch_execute("BEGIN").await {
            return classify(&e, false);
        }
    }
    let mut rows = 0u64;
    for (i, stmt) in statements.iter().enumerate() {
        let at_commit = !multi;
        let prepared = match conn.statement(tx_idx, i as u16, &stmt.text).await {
            Ok(p) => p,
            Err(e) => return abort(conn, multi, classify(&e, false)).await,
        };
        let refs: Vec<&(dyn ToSql + Sync)> = stmt
            .params
            .iter()
            .map(|p| vars.get(p) as &(dyn ToSql + Sync))
            .collect();
        // Only a statement with later statements after it needs its row kept as parameters.
        let capture = i + 1 < statements.len();
        if prepared.columns().is_empty() {
            match conn.client.execute(&prepared, &refs).await {
                Ok(n) => rows += n,
                Err(e) => return abort(conn, multi, classify(&e, at_commit)).await,
            }
        } else {
            match conn.client.query(&prepared, &refs).await {
                Ok(result) => {
                    rows += result.len() as u64;
                    if let Some(first) = result.first().filter(|_| capture) {
                        for (c, col) in first.columns().iter().enumerate() {
                            let v: Value = first.try_get(c).unwrap_or(Value::Null);
                            vars.captured.push((col.name().to_string(), v));
                        }
                    }
                }
                Err(e) => return abort(conn, multi, classify(&e, at_commit)).await,
            }
        }
    }
    let _ = tx;
    if multi {
        if want_lsn {
            return match conn
                .client
                .simple_query("COMMIT; SELECT pg_current_wal_insert_lsn()::text")
                .await
            {
                Ok(msgs) => {
                    let mut r = TxResult::ok(rows);
                    r.commit_lsn = first_lsn(&msgs);
                    r
                }
                Err(e) => classify(&e, true),
            };
        }
        if let Err(e) = conn.client.batch_execute("COMMIT").await {
            return classify(&e, true);
        }
    } else if want_lsn {
        let mut r = TxResult::ok(rows);
        r.commit_lsn = current_lsn(conn).await;
        return r;
    }
    TxResult::ok(rows)
}

async fn abort(conn: &mut Conn, multi: bool, result: TxResult) -> TxResult {
    if multi && !conn.is_closed() {
        let _ = conn.client.batch_execute("ROLLBACK").await;
    }
    result
}

async fn current_lsn(conn: &Conn) -> Option<u64> {
    let msgs = conn
        .client
        .simple_query("SELECT pg_current_wal_insert_lsn()::text")
        .await
        .ok()?;
    first_lsn(&msgs)
}

fn first_lsn(msgs: &[tokio_postgres::SimpleQueryMessage]) -> Option<u64> {
    msgs.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(parse_lsn),
        _ => None,
    })
}

/// `16/B374D848` -> bytes.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// Stream `rows` generated rows with COPY ... FROM STDIN (FORMAT binary).
pub async fn run_copy(
    conn: &mut Conn,
    tx_idx: u16,
    spec: &CopySpec,
    rows: u64,
    rng: &mut SmallRng,
) -> TxResult {
    let names: Vec<String> = spec.columns.iter().map(|(n, _)| n.clone()).collect();
    let types = match conn.copy_types(tx_idx, &spec.table, &names).await {
        Ok(t) => t,
        Err(e) => return classify(&e, false),
    };
    let sql = format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        spec.table,
        names.join(", ")
    );
    let sink = match conn.client.copy_in(&sql).await {
        Ok(s) => s,
        Err(e) => return classify(&e, false),
    };
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    let mut row: Vec<Value> = Vec::with_capacity(spec.columns.len());
    for n in 0..rows {
        // Generating rows never waits on I/O until the COPY buffer fills: yield now and then so
        // the other clients, the recorder and the sampler on this worker thread keep their pace.
        if n % 512 == 511 {
            tokio::task::yield_now().await;
        }
        row.clear();
        row.extend(spec.columns.iter().map(|(_, g)| g.sample(rng)));
        let refs: Vec<&(dyn ToSql + Sync)> = row.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        if let Err(e) = writer.as_mut().write(&refs).await {
            return classify(&e, false);
        }
    }
    match writer.finish().await {
        Ok(n) => TxResult::ok(n),
        Err(e) => classify(&e, true),
    }
}

/// Failed (the server said no) or unknown (the connection went away while it committed).
fn classify(e: &tokio_postgres::Error, at_commit: bool) -> TxResult {
    let code = e.code().map(|c| c.code().to_string());
    let lost = e.is_closed()
        || code.is_none()
        || matches!(e.code(), Some(c) if c.code().starts_with("57P") || c.code().starts_with("08"));
    let outcome = if lost && at_commit {
        Outcome::Unknown
    } else {
        Outcome::Failed
    };
    TxResult {
        outcome,
        sqlstate: Some(code.unwrap_or_else(|| SqlState::CONNECTION_FAILURE.code().to_string())),
        rows: 0,
        commit_lsn: None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lsn_text_to_bytes() {
        assert_eq!(super::parse_lsn("0/0"), Some(0));
        assert_eq!(super::parse_lsn("1/10"), Some((1 << 32) + 16));
        assert_eq!(super::parse_lsn("x"), None);
    }
}
