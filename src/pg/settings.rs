//! Server settings changed with ALTER SYSTEM, and put back as they were: the value the node
//! had in postgresql.auto.conf, or none (RESET).

use super::{db_message, Conn};
use anyhow::{anyhow, Result};
use std::time::Duration;

/// One setting changed on one node, and how to undo it.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingChange {
    pub name: String,
    pub value: String,
    /// Its line in postgresql.auto.conf before (None: it had none).
    pub previous_auto: Option<String>,
    /// The value in force before.
    pub previous: String,
    /// Only a restart applies it (context `postmaster`).
    pub needs_restart: bool,
}

/// A setting's context and current value; an error naming it when it does not exist.
pub async fn describe_setting(conn: &Conn, name: &str) -> Result<(String, String)> {
    let row = conn
        .client
        .query_opt(
            "SELECT context, current_setting(name) FROM pg_settings WHERE name = lower($1)",
            &[&name],
        )
        .await?
        .ok_or_else(|| anyhow!("'{name}' is not a PostgreSQL setting"))?;
    Ok((row.get(0), row.get(1)))
}

/// ALTER SYSTEM SET, then reload; whether a restart is still needed is in the result.
pub async fn alter_system(conn: &Conn, name: &str, value: &str) -> Result<SettingChange> {
    let (context, previous) = describe_setting(conn, name).await?;
    let previous_auto = auto_value(conn, name).await?;
    set_auto(conn, name, Some(value)).await?;
    Ok(SettingChange {
        name: name.to_string(),
        value: value.to_string(),
        previous_auto,
        previous,
        needs_restart: context == "postmaster",
    })
}

/// The node's line for `name` in postgresql.auto.conf (None: it has none).
pub async fn auto_value(conn: &Conn, name: &str) -> Result<Option<String>> {
    Ok(conn
        .client
        .query_opt(
            "SELECT setting FROM pg_file_settings WHERE name = lower($1) \
             AND sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1",
            &[&name],
        )
        .await?
        .map(|r| r.get(0)))
}

/// Put a change back (ALTER SYSTEM SET to the old line, or RESET), then reload.
pub async fn undo(conn: &Conn, change: &SettingChange) -> Result<()> {
    set_auto(conn, &change.name, change.previous_auto.as_deref()).await
}

async fn set_auto(conn: &Conn, name: &str, value: Option<&str>) -> Result<()> {
    let sql: String = conn
        .client
        .query_one(
            "SELECT CASE WHEN $2::text IS NULL THEN format('ALTER SYSTEM RESET %I', $1::text) \
                    ELSE format('ALTER SYSTEM SET %I = %L', $1::text, $2::text) END",
            &[&name, &value],
        )
        .await?
        .get(0);
    conn.client
        .batch_execute(&sql)
        .await
        .map_err(|e| anyhow!("{sql}: {}", db_message(&e)))?;
    conn.client.batch_execute("SELECT pg_reload_conf()").await?;
    Ok(())
}

/// Wait (up to 2 s) until a reloaded setting has left its previous value (or is pending a
/// restart) in new sessions: pg_reload_conf only signals the postmaster.
pub async fn wait_reloaded(endpoint: &super::Endpoint, name: &str, previous: &str) -> Result<()> {
    for _ in 0..40 {
        let conn = endpoint.connect(None).await?;
        let row = conn
            .client
            .query_one(
                "SELECT current_setting($1) <> $2 OR pending_restart FROM pg_settings \
                 WHERE name = lower($1)",
                &[&name, &previous],
            )
            .await?;
        if row.get::<_, bool>(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
