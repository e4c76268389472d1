//! Running the server binaries as the right OS user: PostgreSQL refuses to run as root, so
//! when the tool is root the servers run as `postgres` (or `--os-user`) and own their files.

use anyhow::{bail, Context, Result};
use nix::unistd::{Gid, Uid, User};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

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

/// A command for a server binary, run as `user` when given.
pub fn command(program: &Path, user: Option<&OsUser>) -> Command {
    let mut cmd = Command::new(program);
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

/// Run a command to completion; on failure, the error holds its output.
pub fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {what} ({:?})", cmd.get_program()))?;
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
