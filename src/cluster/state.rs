//! The lab's state file (`state.json`): nodes, ports, roles, the sync mode and the OS user.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The role a node was last given by the tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Standby,
}

/// One PostgreSQL server of the lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeState {
    /// `primary`, `standby1`, ...: also the standby's application_name and slot name.
    pub name: String,
    pub role: Role,
    /// The port PostgreSQL listens on (127.0.0.1).
    pub port: u16,
    /// The port of this node's link in the shaper: the node streams through it when a standby.
    pub link_port: u16,
    /// Set when a standby was promoted over this node: it must be rewound (`cluster rejoin`)
    /// before it runs again, or it would be a second primary.
    #[serde(default)]
    pub needs_rejoin: bool,
}

/// How the primary waits for standbys (`--sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "n", rename_all = "lowercase")]
pub enum SyncMode {
    Async,
    First(u32),
    Any(u32),
}

impl SyncMode {
    /// Parse `async`, `first:N` or `any:N`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}' is not a sync mode: use async, first:N or any:N");
        match text.split_once(':') {
            None if text == "async" => Ok(SyncMode::Async),
            Some((kind, n)) => {
                let n: u32 = n.parse().map_err(|_| bad())?;
                if n == 0 {
                    return Err(format!("'{text}': N must be at least 1"));
                }
                match kind {
                    "first" => Ok(SyncMode::First(n)),
                    "any" => Ok(SyncMode::Any(n)),
                    _ => Err(bad()),
                }
            }
            None => Err(bad()),
        }
    }

    /// The value of `synchronous_standby_names` for these standbys ('' when async or none left).
    /// N is capped at the number of standbys, so a primary never waits for a node that is gone.
    pub fn standby_names(&self, standbys: &[&str]) -> String {
        let (word, n) = match *self {
            SyncMode::Async => return String::new(),
            SyncMode::First(n) => ("FIRST", n),
            SyncMode::Any(n) => ("ANY", n),
        };
        if standbys.is_empty() {
            return String::new();
        }
        let n = n.min(standbys.len() as u32);
        let list: Vec<String> = standbys.iter().map(|s| format!("\"{s}\"")).collect();
        format!("{word} {n} ({})", list.join(", "))
    }
}

impl std::fmt::Display for SyncMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncMode::Async => write!(f, "async"),
            SyncMode::First(n) => write!(f, "first:{n}"),
            SyncMode::Any(n) => write!(f, "any:{n}"),
        }
    }
}

/// Everything the tool needs to find and drive the lab again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub schema: u32,
    pub bindir: PathBuf,
    pub server_version: String,
    /// OS user that owns and runs the servers (set when the tool runs as root).
    pub os_user: Option<String>,
    pub sync: SyncMode,
    pub nodes: Vec<NodeState>,
    /// PostgreSQL superuser the tool and `cluster env` connect as.
    pub user: String,
    pub database: String,
}

impl LabState {
    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    /// The node the tool last made primary.
    pub fn primary(&self) -> &NodeState {
        self.nodes
            .iter()
            .find(|n| n.role == Role::Primary)
            .expect("a lab always records one primary")
    }

    pub fn standbys(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes.iter().filter(|n| n.role == Role::Standby)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the lab state {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("the lab state {} is damaged", path.display()))
    }

    /// Write atomically (temp file + rename) so a crash never leaves half a state file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_modes() {
        assert_eq!(SyncMode::parse("async").unwrap(), SyncMode::Async);
        assert_eq!(SyncMode::parse("first:1").unwrap(), SyncMode::First(1));
        assert_eq!(SyncMode::parse("any:2").unwrap(), SyncMode::Any(2));
        assert!(SyncMode::parse("first:0").is_err());
        assert!(SyncMode::parse("sync").is_err());
        assert!(SyncMode::parse("most:1").is_err());
    }

    #[test]
    fn standby_names_cap_n() {
        let m = SyncMode::First(2);
        assert_eq!(
            m.standby_names(&["standby1", "standby2"]),
            "FIRST 2 (\"standby1\", \"standby2\")"
        );
        assert_eq!(m.standby_names(&["standby2"]), "FIRST 1 (\"standby2\")");
        assert_eq!(m.standby_names(&[]), "");
        assert_eq!(SyncMode::Async.standby_names(&["standby1"]), "");
    }
}
