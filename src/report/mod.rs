//! Result files (DESIGN section 8): writers for the per-second files and the summary.

pub mod capacity;
pub mod charts;
pub mod compare;
mod drills_md;
pub mod expect;
mod files;
mod format;
mod headline;
pub mod hlog;
mod html;
pub mod load;
mod majors;
pub mod matrix;
pub mod progress;
pub mod render;
mod run_files;
pub mod table;

pub use files::{EventsWriter, IntervalsWriter, LagWriter, LAG_COLUMNS};
pub use hlog::HlogWriter;
pub use progress::Progress;
pub use render::render_report;
pub use run_files::{event_line, ConsoleSink, RunFiles};

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// `results/<workload>/<YYYYMMDD-HHMMSS>[-<variant>]/`, or `--out` as given; never an existing
/// directory's files overwritten (a suffix is added instead).
pub fn make_result_dir(
    out: Option<&Path>,
    workload: &str,
    variant: Option<&str>,
) -> Result<PathBuf> {
    let base = match out {
        Some(p) => p.to_path_buf(),
        None => {
            let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
            let leaf = match variant {
                Some(v) => format!("{stamp}-{v}"),
                None => stamp,
            };
            PathBuf::from("results").join(workload).join(leaf)
        }
    };
    let mut dir = base.clone();
    let mut n = 1;
    while dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        n += 1;
        dir = PathBuf::from(format!("{}-{n}", base.display()));
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the result directory {}", dir.display()))?;
    Ok(dir)
}

/// Write a file atomically (temp file + rename): a reader never sees half a summary, and a
/// crash at any moment leaves the old one or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
