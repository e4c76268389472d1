//! How the primary waits for standbys: `synchronous_standby_names` as `async`, `first:N`
//! (`FIRST N (...)`) or `any:N` (quorum).

use serde::{Deserialize, Serialize};

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
