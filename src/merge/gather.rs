//! Which directories to merge: shards' result directories as given, or the directory that
//! holds them (`shard-0`, `shard-1`, ... as `run --shard` names them), waiting if asked until
//! every shard has finished.

use crate::error::usage;
use anyhow::Result;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

fn is_result(dir: &Path) -> bool {
    dir.join("summary.json").is_file()
}

/// Each argument that is a result directory, as is; one that holds `shard-*` result
/// directories, those (in name order).
pub fn expand_dirs(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in dirs {
        if is_result(dir) {
            out.push(dir.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| usage(format!("cannot read {}: {e}", dir.display())))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("shard-"))
                    && is_result(p)
            })
            .collect();
        if found.is_empty() {
            return Err(usage(format!(
                "{} holds no shard's result (a summary.json, or shard-*/summary.json)",
                dir.display()
            )));
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// What the shard directories say so far: the run's shard count, and the shards whose
/// summary.json is final (their run ended, by any path).
fn progress(dirs: &[PathBuf]) -> (Option<u64>, BTreeSet<u64>) {
    let mut count = None;
    let mut finished = BTreeSet::new();
    for d in dirs {
        let Ok(text) = std::fs::read_to_string(d.join("summary.json")) else {
            continue;
        };
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        count = count.or(doc["shard"]["count"].as_u64());
        if !doc["ended_at"].is_null() {
            if let Some(i) = doc["shard"]["index"].as_u64() {
                finished.insert(i);
            }
        }
    }
    (count, finished)
}

/// Wait up to `limit` until every shard of the run has finished, then the directories to
/// merge. At the limit, what is there is merged (the merge names what is missing).
pub async fn wait_for_shards(dirs: &[PathBuf], limit: Duration) -> Result<Vec<PathBuf>> {
    let deadline = Instant::now() + limit;
    loop {
        let found = expand_dirs(dirs);
        if let Ok(found) = &found {
            let (count, finished) = progress(found);
            if count.is_some_and(|n| finished.len() as u64 >= n) {
                return Ok(found.clone());
            }
            if Instant::now() >= deadline {
                let n = count.unwrap_or(0);
                let waiting: Vec<u64> = (0..n).filter(|i| !finished.contains(i)).collect();
                crate::errln!(
                    "warning: after {}, shards {waiting:?} of {n} have not finished: merging \
                     what is there",
                    crate::units::format_duration(limit)
                );
                return Ok(found.clone());
            }
        } else if Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
