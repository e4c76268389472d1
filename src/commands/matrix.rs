//! `run` of a workload with a `[matrix]`: one run per combination, then the comparison.

use super::run::{run_one, Outcome, Targets};
use crate::cluster::{self, Lab};
use crate::link::protocol::Request;
use crate::report::make_result_dir;
use crate::workload::{Matrix, Variant, Workload};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// One run per combination, each in its own result directory, then the comparison.
pub(super) async fn run_matrix(
    plan: &Workload,
    matrix: &Matrix,
    targets: &Targets,
    source: &str,
    out: Option<&Path>,
    quiet: bool,
) -> Result<Outcome> {
    let variants = matrix.variants();
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
    let dir_for = |leaf: &str| -> Result<PathBuf> {
        match out {
            Some(o) => make_result_dir(Some(&o.join(leaf)), &plan.name, None),
            None => make_result_dir(
                Some(
                    &PathBuf::from("results")
                        .join(&plan.name)
                        .join(format!("{stamp}-{leaf}")),
                ),
                &plan.name,
                None,
            ),
        }
    };
    let lab = targets.lab.as_ref();
    let original_sync = lab.map(|l| l.state().map(|s| s.sync)).transpose()?;
    let original_links = match lab {
        Some(l) => l.links().status().await?,
        None => vec![],
    };
    let mut dirs = Vec::new();
    let mut failures = Vec::new();
    let mut interrupted = false;
    for (i, v) in variants.iter().enumerate() {
        eprintln!("info: matrix {}/{}: {}", i + 1, variants.len(), v.name());
        apply_variant(lab, v).await?;
        let mut p = plan.clone();
        if v.synchronous_commit.is_some() {
            p.synchronous_commit = v.synchronous_commit.clone();
        }
        let o = run_one(
            &p,
            targets,
            source,
            dir_for(&v.name())?,
            Some(v.name()),
            quiet,
        )
        .await?;
        failures.extend(o.failures.iter().map(|f| format!("{}: {f}", v.name())));
        dirs.push(o.dir);
        if o.interrupted {
            interrupted = true;
            break;
        }
    }
    if let Some(l) = lab {
        if let Some(s) = original_sync {
            cluster::set_sync(l, s).await?;
        }
        for link in original_links {
            l.links()
                .send(&Request::Set {
                    node: link.node,
                    delay_us: Some(link.settings.delay_us),
                    rate: Some(link.settings.rate),
                })
                .await?;
        }
    }
    let matrix_dir = dir_for("matrix")?;
    if dirs.len() >= 2 {
        crate::report::compare::compare_runs(&dirs, Some(&matrix_dir))?;
    }
    crate::report::matrix::write_matrix_report(&dirs, &variants[..dirs.len()], &matrix_dir)?;
    println!("matrix: {}", matrix_dir.join("matrix.md").display());
    Ok(Outcome {
        dir: matrix_dir,
        failures,
        interrupted,
    })
}

/// Set the lab up for one combination: sync mode and every standby's link delay.
async fn apply_variant(lab: Option<&Lab>, v: &Variant) -> Result<()> {
    let Some(lab) = lab else { return Ok(()) };
    if let Some(mode) = v.sync {
        cluster::set_sync(lab, mode).await?;
    }
    if let Some(delay) = v.link_delay {
        let state = lab.state()?;
        for n in state.standbys() {
            lab.links()
                .send(&Request::Set {
                    node: n.name.clone(),
                    delay_us: Some(delay.as_micros() as u64),
                    rate: None,
                })
                .await?;
        }
    }
    Ok(())
}
