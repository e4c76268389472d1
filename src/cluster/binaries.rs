//! Finding the PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup, pg_rewind, postgres).

use crate::error::usage;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::Command;

const NEEDED: [&str; 5] = ["initdb", "pg_ctl", "postgres", "pg_basebackup", "pg_rewind"];

/// The directory that holds every server binary the lab needs.
///
/// Looked for, in order: `PGBENCH_REPL_PG_BINDIR`, the directory of `initdb` on PATH,
/// `pg_config --bindir`, the newest `/usr/lib/postgresql/*/bin`.
pub fn find_bindir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PGBENCH_REPL_PG_BINDIR") {
        // An explicit choice is honoured or refused, never silently replaced.
        let dir = PathBuf::from(dir);
        let missing: Vec<&str> = NEEDED
            .iter()
            .copied()
            .filter(|b| !dir.join(b).is_file())
            .collect();
        if missing.is_empty() {
            return Ok(dir);
        }
        return Err(usage(format!(
            "PGBENCH_REPL_PG_BINDIR={} lacks {}: install the PostgreSQL server \
             (`apt-get install postgresql` on Debian or Ubuntu) or unset it",
            dir.display(),
            missing.join(", ")
        )));
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() {
                candidates.push(dir);
            }
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    candidates.extend(debian_bindirs());
    candidates
        .into_iter()
        .find(|dir| has_all(dir))
        .ok_or_else(|| {
            usage(
                "no PostgreSQL server binaries found (initdb, pg_ctl, postgres, pg_basebackup, \
                 pg_rewind): install them, for example `apt-get install postgresql` on Debian or \
                 Ubuntu, or point PGBENCH_REPL_PG_BINDIR at their directory",
            )
        })
}

fn has_all(dir: &Path) -> bool {
    NEEDED.iter().all(|b| dir.join(b).is_file())
}

/// `/usr/lib/postgresql/<major>/bin`, newest major first.
fn debian_bindirs() -> Vec<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// `postgres --version`, e.g. "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
pub fn server_version(bindir: &Path) -> Result<String> {
    let out = Command::new(bindir.join("postgres"))
        .arg("--version")
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The major version in `postgres --version`'s answer (15 of "... (PostgreSQL) 15.18 ...").
pub fn major_of(version: &str) -> Option<u32> {
    let rest = version.split("(PostgreSQL)").nth(1)?.trim_start();
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn major_of_a_version_line() {
        assert_eq!(
            super::major_of("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(super::major_of("postgres (PostgreSQL) 18beta1"), Some(18));
        assert_eq!(super::major_of("nonsense"), None);
    }
}
