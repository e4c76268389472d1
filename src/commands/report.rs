//! `pgbench-repl report` and `compare`.

use crate::report::{compare::compare_runs, render_report};
use anyhow::Result;
use std::path::{Path, PathBuf};

pub fn report(dir: &Path) -> Result<()> {
    render_report(dir)?;
    crate::outln!("{}", dir.join("report.md").display());
    Ok(())
}

pub fn compare(dirs: &[PathBuf], out: Option<&Path>) -> Result<()> {
    let out_dir = compare_runs(dirs, out)?;
    crate::outln!("{}", out_dir.join("compare.md").display());
    Ok(())
}
