//! The server's version and replication settings, as a run records them.

use super::Conn;
use anyhow::Result;
use serde::{Deserialize, Serialize};

/// What summary.json says about the server a run ran against.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub version: String,
    pub synchronous_commit: String,
    pub synchronous_standby_names: String,
    pub wal_level: String,
    pub full_page_writes: String,
    pub wal_compression: String,
    pub max_wal_senders: String,
    /// Every node's `server_version` (those that answered when the run started).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub nodes: std::collections::BTreeMap<String, String>,
}

/// Ask the server.
pub async fn server_info(conn: &Conn) -> Result<ServerInfo> {
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
    Ok(ServerInfo {
        version: row.get(0),
        synchronous_commit: row.get(1),
        synchronous_standby_names: row.get(2),
        wal_level: row.get(3),
        full_page_writes: row.get(4),
        wal_compression: row.get(5),
        max_wal_senders: row.get(6),
        nodes: Default::default(),
    })
}
