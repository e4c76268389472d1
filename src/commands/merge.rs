//! `pgbench-repl merge`.

use crate::merge::{expand_dirs, wait_for_shards};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub async fn merge(dirs: &[PathBuf], out: Option<&Path>, wait: Option<Duration>) -> Result<()> {
    let dirs = match wait {
        Some(limit) => wait_for_shards(dirs, limit).await?,
        None => expand_dirs(dirs)?,
    };
    crate::merge::merge(&dirs, out).map(|_| ())
}
