//! `pgbench-repl merge`.

use anyhow::Result;
use std::path::{Path, PathBuf};

pub fn merge(dirs: &[PathBuf], out: Option<&Path>) -> Result<()> {
    crate::merge::merge(dirs, out).map(|_| ())
}
