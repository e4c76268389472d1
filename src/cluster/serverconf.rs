//! The server configuration the lab writes: one include file per node (`pgbench-repl.conf`),
//! rewritten whenever the node's role changes, and pg_hba.conf with scram-sha-256 only.

use super::node;
use super::state::{LabState, NodeState, Role};
use super::Lab;
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

pub const INCLUDE_FILE: &str = "pgbench-repl.conf";

const COMMON: &str = "\
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
shared_buffers = '256MB'
password_encryption = 'scram-sha-256'
wal_level = replica
max_wal_senders = 16
max_replication_slots = 16
wal_keep_size = '256MB'
max_slot_wal_keep_size = '16GB'
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = '1s'
wal_retrieve_retry_interval = '500ms'
wal_sender_timeout = '30s'
wal_receiver_timeout = '30s'
track_commit_timestamp = off
log_line_prefix = '%m [%p] %q%a '
log_connections = off
";

/// The lab's common settings as (name, value) pairs, values unquoted: for an orchestrator
/// that writes postgresql.conf itself (Patroni takes them in its configuration).
pub fn common_settings() -> Vec<(String, String)> {
    COMMON
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((
                k.trim().to_string(),
                v.trim().trim_matches('\'').to_string(),
            ))
        })
        .collect()
}

/// Write the node's include file for the role it has in `state`.
pub fn write_node_conf(lab: &Lab, state: &LabState, node: &NodeState) -> Result<()> {
    let mut text =
        String::from("# written by pgbench-repl: rewritten when the node's role changes\n");
    text.push_str(COMMON);
    text.push_str(&format!("port = {}\n", node.port));
    text.push_str(&format!("cluster_name = {}\n", guc_quote(&node.name)));
    match node.role {
        Role::Primary => {
            let names = sync_standby_names(lab, state);
            text.push_str(&format!(
                "synchronous_standby_names = {}\n",
                guc_quote(&names)
            ));
        }
        Role::Standby => {
            let conninfo = format!(
                "host=127.0.0.1 port={} user={} passfile={} application_name={}",
                node.link_port,
                conninfo_quote(&state.user),
                conninfo_quote(&lab.pgpass_file().to_string_lossy()),
                conninfo_quote(&node.name),
            );
            text.push_str("synchronous_standby_names = ''\n");
            text.push_str(&format!("primary_conninfo = {}\n", guc_quote(&conninfo)));
            text.push_str(&format!("primary_slot_name = {}\n", guc_quote(&node.name)));
            text.push_str("recovery_target_timeline = 'latest'\n");
        }
    }
    let data = lab.data_dir(&node.name);
    write(&data.join(INCLUDE_FILE), &text)?;
    if node.role == Role::Standby {
        write(&data.join("standby.signal"), "")?;
    } else {
        let _ = std::fs::remove_file(data.join("standby.signal"));
    }
    Ok(())
}

/// synchronous_standby_names for the primary: the sync mode over the standbys that run or are
/// being created (not awaiting a rejoin, not stopped), so the primary never waits for a
/// standby that is not there when the tool rewrites it (promote, rejoin, stop, start, a sync
/// change).
pub fn sync_standby_names(lab: &Lab, state: &LabState) -> String {
    let standbys: Vec<&str> = state
        .nodes
        .iter()
        .filter(|n| n.role == Role::Standby && !n.needs_rejoin)
        .filter(|n| {
            let data = lab.data_dir(&n.name);
            !data.exists() || node::running_pid(&data).is_some()
        })
        .map(|n| n.name.as_str())
        .collect();
    state.sync.standby_names(&standbys)
}

/// Rewrite the primary's include file (synchronous_standby_names over the standbys that are
/// left) and reload it, so the primary never waits for a standby that is gone.
pub async fn apply_primary_conf(lab: &Lab, state: &LabState) -> Result<()> {
    let primary = state.primary();
    write_node_conf(lab, state, primary)?;
    if node::running_pid(&lab.data_dir(&primary.name)).is_some() {
        let client = lab
            .conn(state, primary.port)?
            .connect(Duration::from_secs(10))
            .await?;
        client.simple_query("SELECT pg_reload_conf()").await?;
        // pg_reload_conf signals; wait until the new value is in force.
        let want = sync_standby_names(lab, state);
        for _ in 0..100 {
            let row = client
                .query_one("SELECT current_setting('synchronous_standby_names')", &[])
                .await?;
            if row.get::<_, String>(0) == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Make postgresql.conf include ours, and allow only scram-sha-256 over 127.0.0.1.
pub fn prepare_fresh_datadir(data: &Path) -> Result<()> {
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf)
        .with_context(|| format!("cannot read {}", conf.display()))?;
    text.push_str(&format!("\ninclude_if_exists = '{INCLUDE_FILE}'\n"));
    write(&conf, &text)?;
    let hba = "# written by pgbench-repl: password (scram-sha-256) over 127.0.0.1 only\n\
               host all all 127.0.0.1/32 scram-sha-256\n\
               host replication all 127.0.0.1/32 scram-sha-256\n";
    write(&data.join("pg_hba.conf"), hba)
}

/// A node an orchestrator runs: the lab's common settings in our include file, and in
/// postgresql.auto.conf (read last, so it wins over the orchestrator's own include) the
/// listen address and the memory sizes; pg_auto_failover would otherwise size shared_buffers
/// from the machine's RAM (6 GB per node on 24 GB).
///
/// Unlike the plain lab's, these nodes have a unix socket, in the lab's `sock` directory
/// (mode 0700, scram-sha-256 as over TCP): pg_autoctl runs crash recovery before pg_rewind
/// with TCP off.
pub fn prepare_orchestrated_datadir(lab: &Lab, data: &Path, name: &str, port: u16) -> Result<()> {
    prepare_fresh_datadir(data)?;
    let hba = data.join("pg_hba.conf");
    let mut hba_text = std::fs::read_to_string(&hba)?;
    hba_text.push_str("local all all scram-sha-256\nlocal replication all scram-sha-256\n");
    write(&hba, &hba_text)?;
    let mut text = String::from("# written by pgbench-repl for an orchestrated node\n");
    text.push_str(COMMON);
    text.push_str(&format!(
        "port = {port}\ncluster_name = {}\n",
        guc_quote(name)
    ));
    write(&data.join(INCLUDE_FILE), &text)?;
    let auto = data.join("postgresql.auto.conf");
    let mut auto_text = std::fs::read_to_string(&auto).unwrap_or_default();
    auto_text.push_str(&format!(
        "unix_socket_directories = {}\n",
        guc_quote(&lab.socket_dir().to_string_lossy())
    ));
    auto_text.push_str(
        "listen_addresses = '127.0.0.1'\n\
         shared_buffers = '256MB'\n\
         work_mem = '4MB'\n\
         maintenance_work_mem = '64MB'\n\
         effective_cache_size = '4GB'\n\
         max_connections = 300\n",
    );
    write(&auto, &auto_text)
}

/// Write a file in a data directory, owned like the directory (the server's OS user when the
/// tool runs as root: PostgreSQL and pg_rewind must be able to rewrite it).
fn write(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    if let Some(dir) = path.parent() {
        let meta = std::fs::metadata(dir)?;
        let owner = std::fs::metadata(path)?;
        if owner.uid() != meta.uid() || owner.gid() != meta.gid() {
            nix::unistd::chown(
                path,
                Some(nix::unistd::Uid::from_raw(meta.uid())),
                Some(nix::unistd::Gid::from_raw(meta.gid())),
            )
            .with_context(|| {
                format!(
                    "cannot give {} to the data directory's owner",
                    path.display()
                )
            })?;
        }
    }
    Ok(())
}

/// A string literal in postgresql.conf.
fn guc_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A value in a libpq key=value connection string.
fn conninfo_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(guc_quote("it's"), "'it''s'");
        assert_eq!(conninfo_quote("/a b/it's"), "'/a b/it\\'s'");
    }
}
