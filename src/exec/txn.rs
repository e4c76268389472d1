//! Running one try of a transaction on a connection: SQL statements (BEGIN/COMMIT around more
//! than one) or a binary COPY.

use super::outcome::{classify, error_kind, Phase};
use crate::messages::Outcome;
use crate::pg::parse_lsn;
use crate::pg::wire::{Param, WireConn as Conn, WireError};
use crate::workload::generators::Generator;
use crate::workload::sql::Statement;
use crate::workload::value::Value;
use crate::workload::CopySpec;
use rand::rngs::SmallRng;
use tokio_postgres::types::FromSql;

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

    fn error(e: &WireError, phase: Phase) -> Self {
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
/// BEGIN and COMMIT are prepared too (as `pgbench -M prepared` does): the server parses them
/// once per connection, not once per transaction.
const BEGIN_SLOT: (u16, u16) = (u16::MAX, 1);
const COMMIT_SLOT: (u16, u16) = (u16::MAX, 2);

/// Prepare BEGIN and COMMIT on a new connection (for clients whose transactions use them).
pub async fn prepare_control(conn: &mut Conn) -> Result<(), WireError> {
    conn.statement(BEGIN_SLOT.0, BEGIN_SLOT.1, "BEGIN").await?;
    conn.statement(COMMIT_SLOT.0, COMMIT_SLOT.1, "COMMIT")
        .await?;
    Ok(())
}

/// Run a prepared BEGIN or COMMIT.
async fn control(conn: &mut Conn, slot: (u16, u16), sql: &str) -> Result<(), WireError> {
    let st = conn.statement(slot.0, slot.1, sql).await?;
    conn.execute(&st, &[], None).await.map(|_| ())
}

/// Insert the key (client, seq) in the open transaction.
async fn insert_key(conn: &mut Conn, key: (i32, i64)) -> Result<u64, WireError> {
    let st = conn.statement(KEY_SLOT.0, KEY_SLOT.1, KEY_SQL).await?;
    conn.execute(&st, &[&key.0, &key.1], None).await
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
        if let Err(e) = control(conn, BEGIN_SLOT, "BEGIN").await {
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
        // Bound by reference: a short array on the stack for the usual few parameters.
        let mut refs: [Param<'_>; 8] = [&NULL; 8];
        let heap: Vec<Param<'_>>;
        let params: &[Param<'_>] = if stmt.params.len() <= refs.len() {
            for (slot, p) in refs.iter_mut().zip(&stmt.params) {
                *slot = vars.get(p);
            }
            &refs[..stmt.params.len()]
        } else {
            heap = stmt
                .params
                .iter()
                .map(|p| vars.get(p) as Param<'_>)
                .collect();
            &heap
        };
        // Only a statement with later statements after it needs its row kept as parameters.
        let result = if i + 1 < statements.len() && !prepared.columns.is_empty() {
            let mut row: Vec<(String, Value)> = Vec::new();
            let mut keep = |col: &crate::pg::wire::Column, raw: Option<&[u8]>| {
                let v = Value::from_sql_nullable(&col.ty, raw).unwrap_or(Value::Null);
                row.push((col.name.clone(), v));
            };
            let r = conn.execute(&prepared, params, Some(&mut keep)).await;
            vars.captured.extend(row);
            r
        } else {
            conn.execute(&prepared, params, None).await
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
    if want_lsn {
        // COMMIT and the LSN right after it in one round trip (the simple protocol's two
        // statements in one message).
        return match conn
            .simple("COMMIT; SELECT pg_current_wal_insert_lsn()::text")
            .await
        {
            Ok(lsn) => {
                let mut r = TxResult::ok(rows);
                r.commit_lsn = lsn.as_deref().and_then(parse_lsn);
                r
            }
            Err(e) => TxResult::error(&e, Phase::Commit),
        };
    }
    match control(conn, COMMIT_SLOT, "COMMIT").await {
        Ok(()) => TxResult::ok(rows),
        Err(e) => TxResult::error(&e, Phase::Commit),
    }
}

async fn abort(conn: &mut Conn, multi: bool, result: TxResult) -> TxResult {
    if multi && !conn.is_closed() {
        let _ = conn.simple("ROLLBACK").await;
    }
    result
}

async fn current_lsn(conn: &mut Conn) -> Option<u64> {
    let lsn = conn
        .simple("SELECT pg_current_wal_insert_lsn()::text")
        .await
        .ok()??;
    parse_lsn(&lsn)
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
    if let Err(e) = control(conn, BEGIN_SLOT, "BEGIN").await {
        return TxResult::error(&e, Phase::Before);
    }
    let copied = copy_rows(conn, tx_idx, spec, rows, rng, Phase::Before).await;
    if copied.outcome != Outcome::Ok {
        return abort(conn, true, copied).await;
    }
    if let Err(e) = insert_key(conn, k).await {
        return abort(conn, true, TxResult::error(&e, Phase::Before)).await;
    }
    match control(conn, COMMIT_SLOT, "COMMIT").await {
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
    if let Err(e) = conn.copy_in(&sql).await {
        return TxResult::error(&e, Phase::Before);
    }
    let mut row: Vec<Value> = Vec::with_capacity(spec.columns.len());
    for n in 0..rows {
        // Generating rows never waits on I/O until the COPY buffer fills: yield now and then so
        // the other clients, the recorder and the sampler on this worker thread keep their pace.
        if n % 512 == 511 {
            tokio::task::yield_now().await;
        }
        row.clear();
        row.extend(spec.columns.iter().map(|(_, g)| g.sample(rng)));
        if let Err(e) = conn.copy_row(&types, &row).await {
            return TxResult::error(&e, Phase::Before);
        }
    }
    match conn.copy_finish().await {
        Ok(n) => TxResult::ok(n),
        Err(e) => TxResult::error(&e, end),
    }
}

/// A pipelined transaction: BEGIN, every statement, the drill's key and COMMIT sent with one
/// write and one Sync at the end (as pgbench's `\startpipeline` ... `\endpipeline`), then the
/// answers read in order. The first error decides how it ended; after it the server skips the
/// rest (COMMIT included) up to the Sync, and the failed transaction is rolled back.
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
            0 => BEGIN_SLOT,
            i if i <= statements.len() => (tx_idx, (i - 1) as u16),
            i if key.is_some() && i == statements.len() + 1 => KEY_SLOT,
            _ => COMMIT_SLOT,
        };
        match conn.statement(slot.0, slot.1, text).await {
            Ok(p) => prepared.push(p),
            Err(e) => return TxResult::error(&e, Phase::Before),
        }
    }
    let last = prepared.len() - 1;
    // Everything is buffered and sent with one write; a value that cannot be encoded refuses
    // the whole buffer, so nothing reaches the server.
    for (i, st) in prepared.iter().enumerate() {
        let queued = match i {
            i if i >= 1 && i <= statements.len() => {
                let mut refs: [Param<'_>; 8] = [&NULL; 8];
                let names = &statements[i - 1].params;
                if names.len() <= refs.len() {
                    for (slot, p) in refs.iter_mut().zip(names) {
                        *slot = vars.get(p);
                    }
                    conn.queue(st, &refs[..names.len()])
                } else {
                    let heap: Vec<Param<'_>> =
                        names.iter().map(|p| vars.get(p) as Param<'_>).collect();
                    conn.queue(st, &heap)
                }
            }
            i if i < last => match &key {
                Some((c, s)) => conn.queue(st, &[c, s]),
                None => conn.queue(st, &[]),
            },
            _ => conn.queue(st, &[]),
        };
        if let Err(e) = queued {
            return TxResult::error(&e, Phase::Before);
        }
    }
    conn.sync();
    if let Err(e) = conn.send().await {
        return TxResult::error(&e, Phase::Before);
    }
    let mut rows = 0;
    let mut first_error = None;
    for (i, st) in prepared.iter().enumerate() {
        match conn.result(st, None).await {
            Ok(n) if i >= 1 && i <= statements.len() => rows += n,
            Ok(_) => {}
            Err(e) => {
                // A lost connection has no more answers to read, and since COMMIT was sent
                // with the rest, it may have committed.
                let lost = conn.is_closed();
                let phase = if i == last || lost {
                    Phase::Commit
                } else {
                    Phase::Before
                };
                first_error = Some(TxResult::error(&e, phase));
                break;
            }
        }
    }
    if !conn.is_closed() {
        match conn.ready().await {
            // Failed before its COMMIT: the transaction is still open, aborted.
            Ok(b'E') => {
                let _ = conn.simple("ROLLBACK").await;
            }
            Ok(_) => {}
            Err(e) => {
                first_error.get_or_insert_with(|| TxResult::error(&e, Phase::Commit));
            }
        }
    }
    if let Some(r) = first_error {
        return r;
    }
    let mut r = TxResult::ok(rows);
    if want_lsn {
        r.commit_lsn = current_lsn(conn).await;
    }
    r
}
