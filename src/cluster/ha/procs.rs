//! The long-lived processes of an orchestrated lab (pg_autoctl, Patroni, etcd, HAProxy):
//! started detached in a session of their own, as the lab's OS user, with a clean
//! environment, their output appended to a log; found again by a PID file, and killed with
//! their whole process group.

use crate::cluster::osuser::OsUser;
use crate::cluster::Lab;
use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// One agent of the lab: its name names its PID file and its log.
pub struct Agent<'a> {
    pub name: &'a str,
    pub program: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Where the agents' PID files live.
pub fn run_dir(lab: &Lab) -> PathBuf {
    lab.dir.join("run")
}

pub fn pid_file(lab: &Lab, name: &str) -> PathBuf {
    run_dir(lab).join(format!("{name}.pid"))
}

pub fn log_file(lab: &Lab, name: &str) -> PathBuf {
    lab.dir.join("logs").join(format!("{name}.log"))
}

/// The environment every agent starts with: nothing of the caller's (an exported PGPASSWORD
/// would override the lab's password file for pg_rewind and the WAL receiver).
pub fn base_env(lab: &Lab, bindir: &Path) -> Vec<(String, String)> {
    vec![
        (
            "PATH".into(),
            format!(
                "{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                bindir.display()
            ),
        ),
        ("HOME".into(), lab.dir.join("home").display().to_string()),
        ("LANG".into(), "C.UTF-8".into()),
        ("LC_ALL".into(), "C.UTF-8".into()),
        ("PGPASSFILE".into(), lab.pgpass_file().display().to_string()),
    ]
}

/// Start an agent detached (its own session: a Ctrl-C of the tool never reaches it) and
/// record its PID, which is also its process group's.
pub fn spawn(lab: &Lab, user: Option<&OsUser>, agent: &Agent) -> Result<i32> {
    let log_path = log_file(lab, agent.name);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    crate::cluster::osuser::chown(&log_path, user)?;
    let mut cmd = Command::new(agent.program);
    cmd.args(&agent.args)
        .env_clear()
        .envs(agent.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&lab.dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(u) = user {
        cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw());
    }
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {} ({})", agent.name, agent.program.display()))?;
    let pid = child.id() as i32;
    // The child is reaped by nobody once the tool exits; while the tool runs, a thread waits
    // for it so that a dead agent does not linger as a zombie that looks alive.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    std::fs::create_dir_all(run_dir(lab))?;
    std::fs::write(pid_file(lab, agent.name), format!("{pid}\n"))?;
    Ok(pid)
}

/// The agent's PID when its PID file names a live process whose command line contains
/// `expect` (PIDs wrap on a busy machine).
pub fn running(lab: &Lab, name: &str, expect: &str) -> Option<i32> {
    let text = std::fs::read_to_string(pid_file(lab, name)).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    alive(pid, expect).then_some(pid)
}

/// A live process (not a zombie) whose command line contains `expect`.
pub fn alive(pid: i32, expect: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    if matches!(state, None | Some("Z") | Some("X")) {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline)
        .replace('\0', " ")
        .contains(expect)
}

/// SIGKILL the agent's whole process group at once (nothing it runs gets to clean up) and
/// wait until every process of it is gone; its group id, if it ran.
pub async fn kill_group(lab: &Lab, name: &str, expect: &str) -> Option<i32> {
    let pid = running(lab, name, expect)?;
    killpg(Pid::from_raw(pid), Signal::SIGKILL).ok()?;
    wait_group_gone(pid, Duration::from_secs(10)).await;
    Some(pid)
}

/// Wait until no live process is left in process group `pgid` (zombies do not count: a
/// killed node's processes may stay unreaped), up to `limit`. A SIGKILL is delivered
/// asynchronously: until then a backend may still answer a COMMIT.
pub async fn wait_group_gone(pgid: i32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if !group_alive(pgid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Some process of group `pgid` runs (not a zombie), the leader included.
fn group_alive(pgid: i32) -> bool {
    if alive(pgid, "") {
        return true;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .any(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command's closing parenthesis: state, ppid, pgrp, ...
            let mut fields = stat.rsplit(')').next().unwrap_or("").split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
            pgrp == Some(pgid) && !matches!(state, None | Some("Z") | Some("X"))
        })
}

/// Ask the agent to stop (SIGTERM, or `signal`), wait up to `limit`, then SIGKILL its group.
pub async fn stop(
    lab: &Lab,
    name: &str,
    expect: &str,
    signal: Signal,
    limit: Duration,
) -> Result<()> {
    let Some(pid) = running(lab, name, expect) else {
        let _ = std::fs::remove_file(pid_file(lab, name));
        return Ok(());
    };
    let _ = kill(Pid::from_raw(pid), signal);
    let deadline = tokio::time::Instant::now() + limit;
    while alive(pid, expect) {
        if tokio::time::Instant::now() >= deadline {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            tokio::time::sleep(Duration::from_millis(200)).await;
            if alive(pid, expect) {
                bail!("{name} (pid {pid}) did not stop");
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_file(pid_file(lab, name));
    Ok(())
}

/// Wait until `ready` holds, up to `limit`; on timeout, the error shows the log's tail.
pub async fn wait_until<F, Fut>(what: &str, log: &Path, limit: Duration, mut ready: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if ready().await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "{what} after {}s; last lines of {}:\n{}",
                limit.as_secs(),
                log.display(),
                crate::cluster::node::log_tail(log, 15)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
