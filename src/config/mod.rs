//! Workload files: read, override, check, and compile into a `Workload` plan.

mod build;
mod connstr;
mod drills;
pub mod file;
mod groups;
pub mod source;
mod transactions;

pub use build::build;
pub use connstr::{describe, parse_conninfo};

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
