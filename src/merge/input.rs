//! The shards' result directories, read and checked: one run, each shard once.

use crate::error::usage;
use crate::record::summary::ShardInfo;
use crate::report::hlog::{read_hlog, HlogEntry};
use crate::report::load::{load_result, ResultData};
use anyhow::Result;
use std::path::PathBuf;

/// One shard's result.
pub struct ShardResult {
    pub data: ResultData,
    pub info: ShardInfo,
    /// latency.hlog: a histogram per transaction and second.
    pub seconds: Vec<HlogEntry>,
    /// totals.hlog (absent when the shard was killed before its end).
    pub totals: Option<Vec<HlogEntry>>,
    /// It ran to its end.
    pub complete: bool,
}

/// Read every directory; they must be shards of one run (same run id and count), each once.
/// Sorted by shard index.
pub fn load_shards(dirs: &[PathBuf]) -> Result<Vec<ShardResult>> {
    let mut out: Vec<ShardResult> = Vec::new();
    for dir in dirs {
        let data = load_result(dir)?;
        let Some(info) = data.summary.shard.clone() else {
            return Err(usage(format!(
                "{} is not a shard's result (it was not run with --shard I/N)",
                dir.display()
            )));
        };
        if let Some(first) = out.first() {
            if first.info.run_id != info.run_id || first.info.count != info.count {
                return Err(usage(format!(
                    "{} is shard {}/{} of run '{}', but {} is of run '{}' with {} shards: \
                     merge the shards of one run",
                    dir.display(),
                    info.index,
                    info.count,
                    info.run_id,
                    first.data.dir.display(),
                    first.info.run_id,
                    first.info.count
                )));
            }
        }
        if let Some(twin) = out.iter().find(|s| s.info.index == info.index) {
            return Err(usage(format!(
                "shard {} appears twice: {} and {}",
                info.index,
                twin.data.dir.display(),
                dir.display()
            )));
        }
        let seconds = read_hlog(&dir.join("latency.hlog"))?.entries;
        let totals_path = dir.join("totals.hlog");
        let totals = if totals_path.is_file() {
            Some(read_hlog(&totals_path)?.entries)
        } else {
            None
        };
        let complete = !data.summary.interrupted && totals.is_some();
        out.push(ShardResult {
            data,
            info,
            seconds,
            totals,
            complete,
        });
    }
    out.sort_by_key(|s| s.info.index);
    Ok(out)
}
