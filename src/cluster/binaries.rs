//! Finding the PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup, pg_rewind, postgres).

use crate::error::usage;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const NEEDED: [&str; 5] = ["initdb", "pg_ctl", "postgres", "pg_basebackup", "pg_rewind"];

/// Which PostgreSQL the lab is made with: `cluster up --pg-bin DIR`, `--pg-version N`, or
/// neither (then `PGBENCH_REPL_PG_BINDIR`, then whatever is installed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinChoice {
    pub dir: Option<PathBuf>,
    pub major: Option<u32>,
}

/// The directory that holds every server binary the lab needs.
///
/// `--pg-bin DIR` is honoured or refused (a directory that lacks a binary is named with what it
/// lacks), and with `--pg-version N` beside it must hold major N. `--pg-version N` alone looks
/// in `/usr/lib/postgresql/N/bin`, then the directories on PATH that hold `initdb`, then
/// `pg_config --bindir`, then the cache of scripts/fetch-postgres.sh. Neither:
/// `PGBENCH_REPL_PG_BINDIR`, the directory of `initdb` on PATH, `pg_config --bindir`, the newest
/// `/usr/lib/postgresql/*/bin`.
pub fn find_bindir(choice: &BinChoice) -> Result<PathBuf> {
    if let Some(dir) = &choice.dir {
        check_dir("--pg-bin", dir)?;
        if let Some(want) = choice.major {
            let have = major_of(&server_version(dir)?);
            if have != Some(want) {
                return Err(usage(format!(
                    "--pg-bin {} holds PostgreSQL {}, not {want} as --pg-version says",
                    dir.display(),
                    have.map(|m| m.to_string())
                        .unwrap_or_else(|| "of an unknown major".into())
                )));
            }
        }
        return Ok(dir.clone());
    }
    if let Some(want) = choice.major {
        let mut candidates = vec![PathBuf::from(format!("/usr/lib/postgresql/{want}/bin"))];
        candidates.extend(path_bindirs());
        candidates.extend(pg_config_bindir());
        candidates.extend(fetch_cache_bindirs(want));
        return candidates
            .into_iter()
            .find(|d| has_all(d) && server_version(d).ok().and_then(|v| major_of(&v)) == Some(want))
            .ok_or_else(|| {
                let fetch = if (14..=18).contains(&want) {
                    format!(
                        "fetch them with `scripts/fetch-postgres.sh {want}` (then --pg-version \
                         {want} finds them)"
                    )
                } else {
                    "scripts/fetch-postgres.sh fetches 14 to 18; install another major's server \
                     yourself"
                        .to_string()
                };
                usage(format!(
                    "--pg-version {want}: no PostgreSQL {want} server binaries in \
                     /usr/lib/postgresql/{want}/bin, on PATH, from pg_config or in the cache of \
                     scripts/fetch-postgres.sh: {fetch}, or name a directory with --pg-bin"
                ))
            });
    }
    if let Some(dir) = std::env::var_os("PGBENCH_REPL_PG_BINDIR") {
        // An explicit choice is honoured or refused, never silently replaced.
        let dir = PathBuf::from(dir);
        check_dir("PGBENCH_REPL_PG_BINDIR", &dir)?;
        return Ok(dir);
    }
    let mut candidates = path_bindirs();
    candidates.extend(pg_config_bindir());
    candidates.extend(debian_bindirs());
    candidates
        .into_iter()
        .find(|dir| has_all(dir))
        .ok_or_else(|| {
            usage(
                "no PostgreSQL server binaries found (initdb, pg_ctl, postgres, pg_basebackup, \
                 pg_rewind): install them, for example `apt-get install postgresql` on Debian or \
                 Ubuntu, fetch a build with scripts/fetch-postgres.sh and pass --pg-bin, or point \
                 PGBENCH_REPL_PG_BINDIR at their directory",
            )
        })
}

/// `what` names a directory that must hold every binary the lab runs.
fn check_dir(what: &str, dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(usage(format!(
            "{what} {}: no such directory",
            dir.display()
        )));
    }
    let missing: Vec<&str> = NEEDED
        .iter()
        .copied()
        .filter(|b| !dir.join(b).is_file())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(usage(format!(
        "{what} {} lacks {}: the lab needs {} from one PostgreSQL build (the server package, \
         e.g. `apt-get install postgresql`, or scripts/fetch-postgres.sh)",
        dir.display(),
        missing.join(", "),
        NEEDED.join(", ")
    )))
}

/// The directories on PATH that hold `initdb`.
fn path_bindirs() -> Vec<PathBuf> {
    let Some(path) = std::env::var_os("PATH") else {
        return Vec::new();
    };
    std::env::split_paths(&path)
        .filter(|dir| dir.join("initdb").is_file())
        .collect()
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Where scripts/fetch-postgres.sh keeps major `major`, as it decides (its own variable, then
/// root's and a user's default).
fn fetch_cache_bindirs(major: u32) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(c) = std::env::var_os("PGBENCH_REPL_PG_CACHE") {
        roots.push(PathBuf::from(c));
    }
    roots.push(PathBuf::from("/var/cache/pgbench-repl/postgres"));
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    if let Some(x) = xdg {
        roots.push(x.join("pgbench-repl").join("postgres"));
    }
    roots
        .into_iter()
        .map(|r| r.join(major.to_string()).join("bin"))
        .collect()
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
    let postgres = bindir.join("postgres");
    let out = Command::new(&postgres)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {}", postgres.display()))?;
    if !out.status.success() {
        return Err(usage(format!(
            "{} --version failed: {}",
            postgres.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
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
