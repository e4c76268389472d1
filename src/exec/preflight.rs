//! Before the load: the setup SQL, then every statement prepared once on the primary, so SQL
//! the server rejects is bad input (exit 2) naming the transaction and the statement.

use super::conn::Conn;
use crate::error::usage;
use crate::workload::value::bindable;
use crate::workload::{Body, Workload};
use anyhow::Result;
use serde_json::{json, Value};

fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                m.push_str(&format!("; {d}"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!("; hint: {h}"));
            }
            m
        }
        None => e.to_string(),
    }
}

/// Run `[setup] sql` on the primary.
pub async fn run_setup(conn: &Conn, plan: &Workload, source: &str) -> Result<()> {
    if let Some(sql) = &plan.setup_sql {
        conn.client.batch_execute(sql).await.map_err(|e| {
            usage(format!(
                "{source}: [setup] sql: the server refused it: {}",
                db_message(&e)
            ))
        })?;
    }
    Ok(())
}

/// Prepare every statement; check every parameter can be bound.
pub async fn check_statements(conn: &Conn, plan: &Workload, source: &str) -> Result<()> {
    for tx in &plan.transactions {
        match &tx.body {
            Body::Sql(statements) => {
                for (i, stmt) in statements.iter().enumerate() {
                    let prepared = conn.client.prepare(&stmt.text).await.map_err(|e| {
                        usage(format!(
                            "{source}: transaction '{}', sql[{i}]: the server refused it when prepared: {}",
                            tx.name,
                            db_message(&e)
                        ))
                    })?;
                    for (ty, name) in prepared.params().iter().zip(&stmt.params) {
                        if !bindable(ty) {
                            return Err(usage(format!(
                                "{source}: transaction '{}', sql[{i}]: ${name} is bound where the server expects {ty}, \
                                 which pgbench-repl cannot bind: cast it in the SQL, e.g. ${name}::text::{ty}",
                                tx.name
                            )));
                        }
                    }
                }
            }
            Body::Copy(spec) => {
                let cols: Vec<&str> = spec.columns.iter().map(|(c, _)| c.as_str()).collect();
                let probe = format!("SELECT {} FROM {} LIMIT 0", cols.join(", "), spec.table);
                conn.client.prepare(&probe).await.map_err(|e| {
                    usage(format!(
                        "{source}: transaction '{}', copy: table {} with columns {}: {}",
                        tx.name,
                        spec.table,
                        cols.join(", "),
                        db_message(&e)
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// The server's version and replication settings, for summary.json.
pub async fn server_info(conn: &Conn) -> Result<Value> {
    let row = conn
        .client
        .query_one(
            "SELECT current_setting('server_version'), current_setting('synchronous_commit'), \
                    current_setting('synchronous_standby_names'), current_setting('wal_level'), \
                    current_setting('full_page_writes'), current_setting('wal_compression'), \
                    current_setting('max_wal_senders')",
            &[],
        )
        .await?;
    Ok(json!({
        "version": row.get::<_, String>(0),
        "synchronous_commit": row.get::<_, String>(1),
        "synchronous_standby_names": row.get::<_, String>(2),
        "wal_level": row.get::<_, String>(3),
        "full_page_writes": row.get::<_, String>(4),
        "wal_compression": row.get::<_, String>(5),
        "max_wal_senders": row.get::<_, String>(6),
    }))
}
