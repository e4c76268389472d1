//! Workload files: read, override, check, and compile into a `Workload` plan.

mod build;
mod drills;
pub mod file;
mod groups;
pub mod source;
mod transactions;

pub use build::build;

/// Parameters every statement may use without defining them.
pub const BUILTIN_PARAMS: &[&str] = &["client_id", "client_writes"];
/// The levels of synchronous_commit.
pub const SYNC_COMMIT: &[&str] = &["off", "local", "remote_write", "on", "remote_apply"];

use crate::workload::Workload;
use anyhow::Result;
use source::Source;
use std::path::Path;

/// Load a workload file with `--set` overrides applied. Errors exit with code 2 and name the
/// file, the line and the key.
pub fn load_workload(path: &Path, sets: &[String]) -> Result<Workload> {
    let original = Source::read(path)?;
    // Check the file as written first, so errors point at the user's own lines.
    let file = original.parse()?;
    if sets.is_empty() {
        return build(&original, file);
    }
    build(&original, file)?;
    let mut source = original;
    source.apply_sets(sets)?;
    let file = source.parse()?;
    build(&source, file)
}
