//! One node the sampler asks: a connection reopened when it breaks, the sampler's queries
//! prepared once per connection, and the server version that decides which queries it gets.

use crate::pg::wire::{Column, Prepared, WireConn};
use crate::pg::Endpoint;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The full primary query without its closing part: WAL positions, the timeline,
/// pg_stat_replication, slots.
macro_rules! full_primary_query {
    () => {
        "SELECT json_build_object('full', true,\
 'insert', pg_current_wal_insert_lsn()::text, 'current', pg_current_wal_lsn()::text,\
 'flush', pg_current_wal_flush_lsn()::text,\
 'tli', substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8),\
 'repl', (SELECT json_agg(json_build_object('app', application_name, 'state', state, 'sync', sync_state,\
   'write_lag', extract(epoch FROM write_lag), 'flush_lag', extract(epoch FROM flush_lag),\
   'replay_lag', extract(epoch FROM replay_lag))) FROM pg_stat_replication),\
 'slots', (SELECT json_agg(json_build_object('slot', slot_name,\
   'retained', (pg_current_wal_lsn() - restart_lsn)::int8, 'wal_status', wal_status, 'safe', safe_wal_size))\
   FROM pg_replication_slots WHERE slot_type = 'physical')"
    };
}

/// PostgreSQL 14 and later: with pg_stat_wal.
pub const PRIMARY_QUERY: &str = concat!(
    full_primary_query!(),
    ", 'wal', (SELECT json_build_object('records', wal_records, 'fpi', wal_fpi) FROM pg_stat_wal))::text"
);

/// Before 14 there is no pg_stat_wal.
pub const PRIMARY_QUERY_PRE14: &str = concat!(full_primary_query!(), ")::text");

/// Between full samples (at most every 100 ms) only the WAL positions: pg_stat_replication,
/// slots and pg_stat_wal change slowly and cost the primary more to read, so a light sample
/// carries the last full sample's values forward.
pub const PRIMARY_QUERY_LIGHT: &str = "SELECT json_build_object(\
 'insert', pg_current_wal_insert_lsn()::text, 'current', pg_current_wal_lsn()::text,\
 'flush', pg_current_wal_flush_lsn()::text)::text";

/// Asked of every node that is not the primary, directly (never through the link shaper).
pub const STANDBY_QUERY: &str = "SELECT pg_is_in_recovery()::text, \
 pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, \
 CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END";

/// The size of pg_wal on the primary (superuser or pg_monitor; read at most once a second).
pub const WAL_DIR_QUERY: &str = "SELECT sum(size)::text FROM pg_ls_waldir()";

/// The full primary query for a server version (`server_version_num`): pg_stat_wal exists
/// from 14 on. An unknown version gets the query that works everywhere.
pub fn primary_query_for(version_num: Option<i32>) -> &'static str {
    match version_num {
        Some(v) if v >= 140_000 => PRIMARY_QUERY,
        _ => PRIMARY_QUERY_PRE14,
    }
}

/// A connection that is reopened when it breaks; a failure only means "down" for a sample.
pub struct Probe {
    pub endpoint: Endpoint,
    conn: Option<WireConn>,
    /// `server_version_num` of the server behind the open connection.
    pub version_num: Option<i32>,
    prepared: Vec<(&'static str, Arc<Prepared>)>,
    /// Queries the server refused (an error with a SQLSTATE, e.g. no permission).
    refused: Vec<&'static str>,
}

/// One answer: when (the midpoint of the round trip) and the columns as text.
pub type Answer = (Instant, Vec<Option<String>>);

impl Probe {
    pub fn new(endpoint: Endpoint) -> Self {
        Probe {
            endpoint,
            conn: None,
            version_num: None,
            prepared: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// The server refused this query the last time it was asked.
    pub fn refused(&self, sql: &'static str) -> bool {
        self.refused.contains(&sql)
    }

    async fn ensure_connected(&mut self) -> Option<()> {
        if self.conn.as_ref().is_some_and(|c| !c.is_closed()) {
            return Some(());
        }
        self.prepared.clear();
        let mut conn =
            tokio::time::timeout(Duration::from_secs(1), self.endpoint.connect_wire(None))
                .await
                .ok()?
                .ok()?;
        let version = conn.simple("SHOW server_version_num").await.ok()?;
        self.version_num = version.and_then(|v| v.parse().ok());
        self.conn = Some(conn);
        Some(())
    }

    /// The primary's query: the full one for this server's version, or the light one.
    pub async fn ask_primary(&mut self, full: bool) -> Option<Answer> {
        self.ensure_connected().await?;
        let sql = if full {
            primary_query_for(self.version_num)
        } else {
            PRIMARY_QUERY_LIGHT
        };
        self.ask(sql).await
    }

    /// Run one of the sampler's queries (every column is text); None when the node does not
    /// answer (within 2 s).
    pub async fn ask(&mut self, sql: &'static str) -> Option<Answer> {
        self.ensure_connected().await?;
        let conn = self.conn.as_mut()?;
        let statement = match self.prepared.iter().find(|(q, _)| *q == sql) {
            Some((_, st)) => st.clone(),
            None => match conn.prepare_new(sql).await {
                Ok(st) => {
                    self.prepared.push((sql, st.clone()));
                    st
                }
                // The server refused the query itself (a node in recovery refuses the
                // primary's functions): the node answers, this question does not. Keep the
                // connection unless it broke.
                Err(e) => {
                    if conn.is_closed() {
                        self.conn = None;
                    } else if e.code().is_some() {
                        self.refused.push(sql);
                    }
                    return None;
                }
            },
        };
        let sent = Instant::now();
        let mut columns: Vec<Option<String>> = Vec::with_capacity(statement.columns.len());
        let mut keep = |_: &Column, raw: Option<&[u8]>| {
            columns.push(raw.map(|r| String::from_utf8_lossy(r).into_owned()));
        };
        let reply = tokio::time::timeout(
            Duration::from_secs(2),
            conn.execute(&statement, &[], Some(&mut keep)),
        )
        .await;
        match reply {
            Ok(Ok(rows)) if rows > 0 => {}
            Ok(Ok(_)) => return None,
            Ok(Err(e)) if e.code().is_some() && !conn.is_closed() => {
                self.refused.push(sql);
                return None;
            }
            _ => {
                // Timed out (a reply may still come: the session cannot be reused) or broke.
                self.conn = None;
                return None;
            }
        }
        let at = sent + sent.elapsed() / 2;
        Some((at, columns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_stat_wal_only_from_14_on() {
        assert_eq!(primary_query_for(Some(150_018)), PRIMARY_QUERY);
        assert_eq!(primary_query_for(Some(140_000)), PRIMARY_QUERY);
        assert_eq!(primary_query_for(Some(130_012)), PRIMARY_QUERY_PRE14);
        assert_eq!(primary_query_for(None), PRIMARY_QUERY_PRE14);
        assert!(!PRIMARY_QUERY_PRE14.contains("pg_stat_wal"));
        assert!(PRIMARY_QUERY.contains("pg_stat_wal"));
    }
}
