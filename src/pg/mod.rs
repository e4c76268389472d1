//! What every layer shares about PostgreSQL: endpoints and connections, connection strings,
//! WAL positions, and the synchronous replication modes. A leaf: it imports no other module.

pub mod connstr;
pub mod endpoint;
pub mod lsn;
pub mod server;
pub mod settings;
pub mod sync_mode;
pub mod wire;

pub use connstr::{describe, parse_conninfo};
pub use endpoint::{Conn, Endpoint};
pub use lsn::{format_lsn, parse_lsn, Lsn};
pub use server::{server_info, ServerInfo};
pub use sync_mode::SyncMode;
pub use wire::WireConn;

/// A server error in one line: message (SQLSTATE); detail; hint.
pub fn db_message(e: &tokio_postgres::Error) -> String {
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
