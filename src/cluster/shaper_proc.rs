//! The shaper as a background process of the lab: started detached, found by its PID file.

use super::state::LabState;
use super::Lab;
use crate::link::server::{load_settings, ShaperConfig};
use crate::link::LinkSettings;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The shaper's links: one per node (a node uses its link while it is a standby), each
/// forwarding to the current primary; settings kept from a previous run.
pub fn shaper_config(lab: &Lab, state: &LabState) -> ShaperConfig {
    let saved = load_settings(&lab.link_settings_file());
    let primary_port = state.primary().port;
    let links = state
        .nodes
        .iter()
        .map(|n| {
            let mut s = saved.get(&n.name).cloned().unwrap_or_default();
            s.upstream_port = primary_port;
            (n.name.clone(), (n.link_port, s))
        })
        .collect::<BTreeMap<String, (u16, LinkSettings)>>();
    ShaperConfig {
        socket: lab.shaper_socket(),
        settings_file: lab.link_settings_file(),
        links,
    }
}

/// Start the shaper unless it answers already; wait until it does.
pub async fn ensure_running(lab: &Lab) -> Result<()> {
    let client = lab.links();
    if client.is_up().await {
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find the pgbench-repl executable")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(lab.dir.join("logs").join("shaper.log"))?;
    let mut cmd = Command::new(exe);
    cmd.args(["link", "serve", "--dir"])
        .arg(&lab.dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let child = cmd.spawn().context("cannot start the link shaper")?;
    std::fs::write(lab.shaper_pid_file(), child.id().to_string())?;
    for _ in 0..100 {
        if client.is_up().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "the link shaper did not start; its log {} says:\n{}",
        lab.dir.join("logs/shaper.log").display(),
        super::node::log_tail(&lab.dir.join("logs/shaper.log"), 10)
    )
}

/// Stop the shaper and wait until its process is gone.
pub async fn stop(lab: &Lab) -> Result<()> {
    let _ = lab
        .links()
        .send(&crate::link::protocol::Request::Shutdown)
        .await;
    if let Some(pid) = pid(lab) {
        for i in 0..100 {
            if !alive(pid) {
                break;
            }
            if i == 40 {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if alive(pid) {
            bail!("the link shaper (pid {pid}) did not stop");
        }
    }
    let _ = std::fs::remove_file(lab.shaper_pid_file());
    Ok(())
}

fn pid(lab: &Lab) -> Option<nix::unistd::Pid> {
    let text = std::fs::read_to_string(lab.shaper_pid_file()).ok()?;
    Some(nix::unistd::Pid::from_raw(text.trim().parse().ok()?))
}

/// True when the shaper process runs (a zombie child does not count).
fn alive(pid: nix::unistd::Pid) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X"))
}
