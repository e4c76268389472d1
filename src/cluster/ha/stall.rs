//! `pause_link` and `resume_link` in an orchestrated lab. The orchestrator writes each
//! standby's primary_conninfo itself, so its standbys stream directly and not through the
//! link shaper; a stall is made at the standby's end instead: its WAL receiver is stopped
//! (SIGSTOP). It reads nothing and answers nothing and its connection stays open: from the
//! primary, the same silent stall as a paused link (the walsender times out after
//! wal_sender_timeout). Unlike a network stall, the standby's own restart also waits for it.

use crate::cluster::state::LabState;
use crate::cluster::{require_node, Lab};
use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::time::Duration;

fn stalled_file(lab: &Lab, node: &str) -> PathBuf {
    super::procs::run_dir(lab).join(format!("{node}.stalled"))
}

/// The node's WAL receiver, asked of the node (waits up to 5 s for one to run).
async fn receiver_pid(lab: &Lab, state: &LabState, node: &str) -> Result<i32> {
    let port = require_node(state, node)?.port;
    let client = lab
        .conn(state, port)?
        .connect(Duration::from_secs(3))
        .await?;
    for _ in 0..50 {
        let row = client
            .query_opt(
                "SELECT pid FROM pg_stat_wal_receiver WHERE pid IS NOT NULL",
                &[],
            )
            .await?;
        if let Some(r) = row {
            return Ok(r.get(0));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{node} has no WAL receiver (is it a standby that streams?)")
}

/// Stop the node's WAL receiver; remembered so that `resume` continues the same process.
pub async fn pause(lab: &Lab, state: &LabState, node: &str) -> Result<()> {
    let pid = receiver_pid(lab, state, node).await?;
    kill(Pid::from_raw(pid), Signal::SIGSTOP)
        .with_context(|| format!("cannot stop {node}'s WAL receiver (pid {pid})"))?;
    std::fs::create_dir_all(super::procs::run_dir(lab))?;
    std::fs::write(stalled_file(lab, node), pid.to_string())?;
    Ok(())
}

/// Let the node's WAL receiver go on (a no-op when it was not stopped).
pub async fn resume(lab: &Lab, node: &str) -> Result<()> {
    let file = stalled_file(lab, node);
    if let Ok(text) = std::fs::read_to_string(&file) {
        if let Ok(pid) = text.trim().parse::<i32>() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
        let _ = std::fs::remove_file(&file);
    }
    Ok(())
}

/// The nodes whose WAL receiver is stopped now.
pub fn stalled(lab: &Lab) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(super::procs::run_dir(lab)) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".stalled").map(str::to_string)
        })
        .collect()
}
