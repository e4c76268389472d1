//! `merge DIR... --out DIR` (DESIGN section 13): the shards of one run as one result. Counts
//! are added; the HDR histograms are added, second by second (aligned by the database's
//! clock) and over the whole run, so every percentile is that of all the shards' transactions
//! together. Shard 0's replication measurements (it alone sampled) and events are the run's.

mod gather;
mod input;
mod seconds;
mod whole;

pub use gather::{expand_dirs, wait_for_shards};
pub use input::{load_shards, ShardResult};

use crate::error::CheckFailed;
use crate::report::{render_report, write_atomic};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Merge the shards in `dirs` into `out` (default: `merged/` beside the first shard's
/// directory). Writes every file, then fails with exit code 3 when a shard is missing or
/// stopped early, or an `[expect]` line fails on the whole.
pub fn merge(dirs: &[PathBuf], out: Option<&Path>) -> Result<PathBuf> {
    let shards = load_shards(dirs)?;
    let base = match out {
        Some(o) => o.to_path_buf(),
        None => dirs[0]
            .parent()
            .map(|p| p.join("merged"))
            .unwrap_or_else(|| PathBuf::from("merged")),
    };
    let dir = crate::report::make_result_dir(Some(&base), "", None)?;
    let merged = seconds::merge_seconds(&shards);
    seconds::write_seconds(&dir, &shards, &merged)?;
    let summary = whole::merge_summary(&shards)?;
    // Shard 0 alone sampled and ran the events; its files move onto the merged timeline.
    let zero = seconds::zero(&shards);
    for name in ["lag.csv", "events.csv"] {
        match shards.iter().find(|s| s.info.index == 0) {
            Some(first) => {
                seconds::shift_times(
                    &first.data.dir.join(name),
                    &dir.join(name),
                    seconds::offset(first, zero),
                )?;
            }
            None => {
                // No shard 0: no sampler ran; the files exist, with their headers only.
                let header = if name == "lag.csv" {
                    crate::report::LAG_COLUMNS.join(",")
                } else {
                    "t_s,kind,node,detail".into()
                };
                std::fs::write(dir.join(name), format!("{header}\n"))?;
            }
        }
    }
    write_atomic(
        &dir.join("summary.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    render_report(&dir)?;
    let mut problems = Vec::new();
    if let Some(s) = &summary.shards {
        if !s.missing.is_empty() {
            problems.push(format!(
                "shards {:?} of {} are missing: their load is not in the merged result",
                s.missing, s.count
            ));
        }
        if !s.incomplete.is_empty() {
            problems.push(format!(
                "shards {:?} stopped before the end: what they measured until then is in",
                s.incomplete
            ));
        }
    }
    problems.extend(crate::report::expect::failures(&summary.expect));
    crate::outln!("{}", dir.join("report.md").display());
    if !problems.is_empty() {
        return Err(CheckFailed(format!(
            "merged into {}, but:\n  {}",
            dir.display(),
            problems.join("\n  ")
        ))
        .into());
    }
    Ok(dir)
}
