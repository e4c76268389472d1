//! Running one try of a transaction on a connection: SQL statements (BEGIN/COMMIT around more
//! than one) or a binary COPY.

use super::outcome::{classify, error_kind, Phase};
use crate::messages::Outcome;
use crate::pg::{parse_lsn, Conn};
use crate::workload::generators::Generator;
use crate::workload::sql::Statement;
use crate::workload::value::Value;
use crate::workload::CopySpec;
use futures_util::pin_mut;
use rand::rngs::SmallRng;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::ToSql;

/// How a try ended, as the client saw it.
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

    fn error(e: &tokio_postgres::Error, phase: Phase) -> Self {
        let (outcome, code) = classify(&error_kind(e), phase);
        TxResult {
            outcome,
            sqlstate: Some(code),
            rows: 0,
            commit_lsn: None,
        }
    }
}

/// The values a transaction's statements bind: its generated params, the built-ins, and what
/// earlier statements returned.
pub struct Vars<'a> {
    pub params: &'a [(String, Generator)],
    pub values: &'a [Value],
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

/// The write a failover drill adds to every write transaction, in the same transaction: the
/// key tells afterwards whether the transaction survived the failover.
pub const KEY_SQL: &str = "INSERT INTO pgbench_repl_keys (client_id, seq) VALUES ($1, $2)";
/// The statement slot of KEY_SQL in a connection's cache.
const KEY_SLOT: (u16, u16) = (u16::MAX, 0);

/// Insert the key (client, seq) in the open transaction.
async fn insert_key(conn: &mut Conn, key: (i32, i64)) -> Result<u64, tokio_postgres::Error> {
    let st = conn.statement(KEY_SLOT.0, KEY_SLOT.1, KEY_SQL).await?;
    conn.client.execute(&st, &[&key.0, &key.1]).await
}

/// Run SQL statements. A single statement runs alone (autocommit, as pgbench does); several
/// run between BEGIN and COMMIT, and so does one with a drill's `key` beside it.
pub async fn run_sql(
    conn: &mut Conn,
    tx_idx: u16,
    statements: &[Statement],
    vars: &mut Vars<'_>,
    want_lsn: bool,
    key: Option<(i32, i64)>,
) -> TxResult {
    let multi = statements.len() > 1 || key.is_some();
    if multi {
        if let Err(e) = conn.client.batch_execute("BEGIN").await {
            return TxResult::error(&e, Phase::Before);
        }
    }
    // The one statement of an autocommit transaction commits as it runs.
    let phase = if multi { Phase::Before } else { Phase::Commit };
    let mut rows = 0u64;
    for (i, stmt) in statements.iter().enumerate() {
        let prepared = match conn.statement(tx_idx, i as u16, &stmt.text).await {
            Ok(p) => p,
            Err(e) => return abort(conn, multi, TxResult::error(&e, Phase::Before)).await,
        };
        let refs: Vec<&(dyn ToSql + Sync)> = stmt
            .params
            .iter()
            .map(|p| vars.get(p) as &(dyn ToSql + Sync))
            .collect();
        // Only a statement with later statements after it needs its row kept as parameters.
        let capture = i + 1 < statements.len();
        let result = if prepared.columns().is_empty() {
            conn.client.execute(&prepared, &refs).await
        } else {
            conn.client.query(&prepared, &refs).await.map(|result| {
                if let Some(first) = result.first().filter(|_| capture) {
                    for (c, col) in first.columns().iter().enumerate() {
                        let v: Value = first.try_get(c).unwrap_or(Value::Null);
                        vars.captured.push((col.name().to_string(), v));
                    }
                }
                result.len() as u64
            })
        };
        match result {
            Ok(n) => rows += n,
            Err(e) => return abort(conn, multi, TxResult::error(&e, phase)).await,
        }
    }
    if !multi {
        let mut r = TxResult::ok(rows);
        if want_lsn {
            r.commit_lsn = current_lsn(conn).await;
        }
        return r;
    }
    if let Some(k) = key {
        if let Err(e) = insert_key(conn, k).await {
            return abort(conn, multi, TxResult::error(&e, Phase::Before)).await;
        }
    }
    let commit = if want_lsn {
        "COMMIT; SELECT pg_current_wal_insert_lsn()::text"
    } else {
        "COMMIT"
    };
    match conn.client.simple_query(commit).await {
        Ok(msgs) => {
            let mut r = TxResult::ok(rows);
            r.commit_lsn = first_lsn(&msgs);
            r
        }
        Err(e) => TxResult::error(&e, Phase::Commit),
    }
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

/// Stream `rows` generated rows with COPY ... FROM STDIN (FORMAT binary); with a drill's
/// `key`, inside BEGIN ... COMMIT beside the key's insert.
pub async fn run_copy(
    conn: &mut Conn,
    tx_idx: u16,
    spec: &CopySpec,
    rows: u64,
    rng: &mut SmallRng,
    key: Option<(i32, i64)>,
) -> TxResult {
    let Some(k) = key else {
        return copy_rows(conn, tx_idx, spec, rows, rng, Phase::Commit).await;
    };
    if let Err(e) = conn.client.batch_execute("BEGIN").await {
        return TxResult::error(&e, Phase::Before);
    }
    let copied = copy_rows(conn, tx_idx, spec, rows, rng, Phase::Before).await;
    if copied.outcome != Outcome::Ok {
        return abort(conn, true, copied).await;
    }
    if let Err(e) = insert_key(conn, k).await {
        return abort(conn, true, TxResult::error(&e, Phase::Before)).await;
    }
    match conn.client.batch_execute("COMMIT").await {
        Ok(()) => copied,
        Err(e) => TxResult::error(&e, Phase::Commit),
    }
}

/// The COPY itself; `end` is the phase its end is in (COMMIT when it runs alone).
async fn copy_rows(
    conn: &mut Conn,
    tx_idx: u16,
    spec: &CopySpec,
    rows: u64,
    rng: &mut SmallRng,
    end: Phase,
) -> TxResult {
    let names: Vec<String> = spec.columns.iter().map(|(n, _)| n.clone()).collect();
    let types = match conn.copy_types(tx_idx, &spec.table, &names).await {
        Ok(t) => t,
        Err(e) => return TxResult::error(&e, Phase::Before),
    };
    let sql = format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        spec.table,
        names.join(", ")
    );
    let sink = match conn.client.copy_in(&sql).await {
        Ok(s) => s,
        Err(e) => return TxResult::error(&e, Phase::Before),
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
            return TxResult::error(&e, Phase::Before);
        }
    }
    match writer.finish().await {
        Ok(n) => TxResult::ok(n),
        Err(e) => TxResult::error(&e, end),
    }
}

/// A pipelined transaction: BEGIN, every statement, the drill's key and COMMIT sent before
/// any reply is read (tokio-postgres writes requests as they are polled, so polling them all
/// at once pipelines them). The first error, in order, decides how it ended.
pub async fn run_pipelined(
    conn: &mut Conn,
    tx_idx: u16,
    statements: &[Statement],
    vars: &Vars<'_>,
    want_lsn: bool,
    key: Option<(i32, i64)>,
) -> TxResult {
    let mut prepared = Vec::with_capacity(statements.len() + 3);
    let texts = std::iter::once("BEGIN")
        .chain(statements.iter().map(|s| s.text.as_str()))
        .chain(key.map(|_| KEY_SQL))
        .chain(std::iter::once("COMMIT"));
    for (i, text) in texts.enumerate() {
        // BEGIN, the key and COMMIT sit in slots of their own, beside the transaction's.
        let slot = match i {
            0 => (u16::MAX, 1),
            i if i <= statements.len() => (tx_idx, (i - 1) as u16),
            i if key.is_some() && i == statements.len() + 1 => KEY_SLOT,
            _ => (u16::MAX, 2),
        };
        match conn.statement(slot.0, slot.1, text).await {
            Ok(p) => prepared.push(p),
            Err(e) => return TxResult::error(&e, Phase::Before),
        }
    }
    let params: Vec<Vec<&(dyn ToSql + Sync)>> = statements
        .iter()
        .map(|st| {
            st.params
                .iter()
                .map(|p| vars.get(p) as &(dyn ToSql + Sync))
                .collect()
        })
        .collect();
    let key_params: Vec<&(dyn ToSql + Sync)> = match &key {
        Some((c, s)) => vec![c, s],
        None => vec![],
    };
    let empty: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let client = &conn.client;
    let last = prepared.len() - 1;
    let futures = prepared.iter().enumerate().map(|(i, st)| {
        let p: &[&(dyn ToSql + Sync)] = match i {
            0 => &empty,
            i if i <= statements.len() => &params[i - 1],
            i if i < last => &key_params,
            _ => &empty,
        };
        client.execute(st, p)
    });
    let results = futures_util::future::join_all(futures).await;
    let mut rows = 0;
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(n) if i >= 1 && i <= statements.len() => rows += n,
            Ok(_) => {}
            // The first error decides; after one, the server aborted the transaction and its
            // COMMIT answered ROLLBACK.
            Err(e) => {
                let phase = if i == last {
                    Phase::Commit
                } else {
                    Phase::Before
                };
                return TxResult::error(e, phase);
            }
        }
    }
    let mut r = TxResult::ok(rows);
    if want_lsn {
        r.commit_lsn = current_lsn(conn).await;
    }
    r
}
