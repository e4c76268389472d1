//! Starting, stopping and inspecting one server process with pg_ctl.

use super::osuser::{self, OsUser};
use super::state::LabState;
use super::Lab;
use anyhow::{anyhow, Result};
use std::path::Path;
use std::time::Duration;

/// How pg_ctl stops a server.
#[derive(Debug, Clone, Copy)]
pub enum StopMode {
    /// Disconnect clients, checkpoint, exit.
    Fast,
    /// Quit at once, as a crash: crash recovery on the next start.
    Immediate,
}

/// The OS user the lab's servers run as (None when the tool is not root).
pub fn os_user(state: &LabState) -> Result<Option<OsUser>> {
    OsUser::for_servers(state.os_user.as_deref())
}

/// The postmaster PID, when `postmaster.pid` names a live process.
pub fn running_pid(data: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    let is_postgres = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim() == "postgres")
        .unwrap_or(alive);
    // A killed postmaster whose parent is gone may stay a zombie if nothing reaps it.
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()?
                .split_whitespace()
                .next()
                .map(|st| st == "Z" || st == "X")
        })
        .unwrap_or(false);
    (alive && is_postgres && !zombie).then_some(pid)
}

/// How long pg_ctl may take to start or stop a node (its own -t is a little shorter).
const PG_CTL_LIMIT: Duration = Duration::from_secs(150);

/// Start a node and wait until it accepts connections; on failure, show its log's tail.
pub async fn start(lab: &Lab, state: &LabState, name: &str) -> Result<()> {
    let user = os_user(state)?;
    let data = lab.data_dir(name);
    let log = lab.log_file(name);
    if !log.exists() {
        std::fs::write(&log, "")?;
        osuser::chown(&log, user.as_ref())?;
    }
    let mut cmd = osuser::command(&state.bindir.join("pg_ctl"), user.as_ref());
    cmd.arg("start")
        .arg("-w")
        .args(["-t", "120"])
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(&log);
    osuser::run(&mut cmd, &format!("starting {name}"), PG_CTL_LIMIT)
        .await
        .map_err(|e| {
            anyhow!(
                "{name} failed to start: {e}\nlast lines of {}:\n{}",
                log.display(),
                log_tail(&log, 15)
            )
        })?;
    Ok(())
}

/// Stop a node if it runs.
pub async fn stop(lab: &Lab, state: &LabState, name: &str, mode: StopMode) -> Result<()> {
    let data = lab.data_dir(name);
    if running_pid(&data).is_none() {
        return Ok(());
    }
    let user = os_user(state)?;
    let mode = match mode {
        StopMode::Fast => "fast",
        StopMode::Immediate => "immediate",
    };
    let mut cmd = osuser::command(&state.bindir.join("pg_ctl"), user.as_ref());
    cmd.arg("stop")
        .arg("-w")
        .args(["-t", "60", "-m", mode])
        .arg("-D")
        .arg(&data);
    osuser::run(&mut cmd, &format!("stopping {name}"), PG_CTL_LIMIT).await?;
    Ok(())
}

/// Restart a node (fast shutdown, then start): for settings that only a restart applies.
pub async fn restart(lab: &Lab, state: &LabState, name: &str) -> Result<()> {
    stop(lab, state, name, StopMode::Fast).await?;
    start(lab, state, name).await
}

/// The last `n` lines of a log file.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
