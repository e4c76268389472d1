//! Running the server binaries as the right OS user: PostgreSQL refuses to run as root, so
//! when the tool is root the servers run as `postgres` (or `--os-user`) and own their files.

use anyhow::{bail, Context, Result};
use nix::unistd::{Gid, Uid, User};
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

/// Who runs the servers.
#[derive(Debug, Clone)]
pub struct OsUser {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

impl OsUser {
    /// The user to run servers as: `requested` when root, `postgres` by default; `None` when the
    /// tool is not root (the servers then run as the invoking user).
    pub fn for_servers(requested: Option<&str>) -> Result<Option<OsUser>> {
        if !Uid::effective().is_root() {
            return Ok(None);
        }
        let name = requested.unwrap_or("postgres");
        let user = User::from_name(name)?.with_context(|| {
            format!(
                "running as root, the servers must run as another OS user, and '{name}' does not \
                 exist: create it (`useradd --system {name}`) or name one with --os-user"
            )
        })?;
        if user.uid.is_root() {
            bail!("--os-user {name} is root, and PostgreSQL refuses to run as root");
        }
        Ok(Some(OsUser {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
        }))
    }
}

/// A command for a server binary, run as `user` when given. It runs off the async runtime's
/// threads (tokio's process driver) in its own process group, killed if its caller gives up.
pub fn command(program: &Path, user: Option<&OsUser>) -> Command {
    let mut cmd = Command::new(program);
    cmd.process_group(0).kill_on_drop(true);
    if let Some(u) = user {
        // std drops root's supplementary groups when it switches uid.
        cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw());
        cmd.env("HOME", "/tmp");
    }
    cmd.env_remove("PGPASSWORD");
    cmd.current_dir("/");
    cmd
}

/// Give `path` to `user` (no-op when not root).
pub fn chown(path: &Path, user: Option<&OsUser>) -> Result<()> {
    if let Some(u) = user {
        nix::unistd::chown(path, Some(u.uid), Some(u.gid))
            .with_context(|| format!("cannot give {} to OS user {}", path.display(), u.name))?;
    }
    Ok(())
}

/// Run a command to completion within `limit`; on failure or timeout, the error holds its
/// output. A command that hangs is killed, with its whole process group.
pub async fn run(cmd: &mut Command, what: &str, limit: Duration) -> Result<String> {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {what} ({:?})", cmd.as_std().get_program()))?;
    // Whether it finishes, times out, or its caller gives up (a dropped future), nothing it
    // started is left running.
    let mut guard = GroupGuard(child.id());
    let out = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(out) => {
            guard.0 = None;
            out.with_context(|| format!("{what} failed"))?
        }
        Err(_) => {
            drop(guard);
            bail!(
                "{what} did not finish within {} and was killed",
                crate::units::format_duration(limit)
            );
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("{what} failed ({}):\n{}", out.status, text.trim_end());
    }
    Ok(text)
}

/// Kills a command's process group (the command and what it started) when dropped armed.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
