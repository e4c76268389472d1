//! `[matrix] pg_version = [..]` (DESIGN section 17): one lab per PostgreSQL major, made for the
//! run beside the lab the run would use, the same workload on each, then the comparison and
//! matrix.md: the upgrade-planning table. Each major's lab is destroyed after its run, whichever
//! way the run ended.

use super::matrix::MatrixOutcome;
use super::signals::Signals;
use super::{run_plan, RunRequest};
use crate::cluster::{self, BinChoice, Lab, UpOptions};
use crate::workload::{Matrix, Workload};
use anyhow::Result;
use std::path::PathBuf;

pub async fn run_majors(
    req: &RunRequest,
    plan: &Workload,
    matrix: &Matrix,
    signals: &mut Signals,
) -> Result<MatrixOutcome> {
    let majors = &matrix.pg_version;
    // Every major's binaries before any lab starts: a missing one stops the matrix at once.
    let bins = majors
        .iter()
        .map(|m| {
            let choice = BinChoice {
                dir: None,
                major: Some(*m),
            };
            let dir = cluster::find_bindir(&choice).map_err(|e| {
                crate::error::usage(format!(
                    "{}: matrix.pg_version: {}",
                    matrix.origin,
                    format!("{e:#}").trim_start_matches("--pg-version ")
                ))
            })?;
            Ok((*m, dir))
        })
        .collect::<Result<Vec<(u32, PathBuf)>>>()?;
    let base = Lab::locate(req.lab_dir.as_deref());
    let standbys = match base.exists().then(|| base.state()).transpose()? {
        Some(state) => state.nodes.len() as u32 - 1,
        None => 2,
    };
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
    let dir_for = |leaf: &str| -> PathBuf {
        match &req.out {
            Some(o) => o.join(leaf),
            None => PathBuf::from("results")
                .join(&plan.name)
                .join(format!("{stamp}-{leaf}")),
        }
    };
    let mut inner = plan.clone();
    inner.matrix = None;
    let name = base
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "lab".into());
    let mut dirs = Vec::new();
    let mut variants = Vec::new();
    let mut failures = Vec::new();
    let mut interrupted = None;
    let all = matrix.variants();
    for (i, v) in all.iter().enumerate() {
        let major = v.pg_version.unwrap_or_default();
        let Some((_, bindir)) = bins.iter().find(|(m, _)| *m == major).cloned() else {
            continue;
        };
        let leaf = v.name();
        crate::errln!(
            "info: matrix {}/{}: PostgreSQL {major}{} from {}",
            i + 1,
            all.len(),
            v.round.map(|r| format!(" (round {r})")).unwrap_or_default(),
            bindir.display()
        );
        let lab = Lab::locate(Some(&base.dir.with_file_name(format!("{name}-pg{major}"))));
        if lab.exists() {
            // Left by a matrix that was killed: it is this matrix's own, not the user's.
            cluster::destroy(&lab).await?;
        }
        let port = cluster::free_port_base(standbys).ok_or_else(|| {
            anyhow::anyhow!("no free block of ports above 56000 for PostgreSQL {major}'s lab")
        })?;
        let opts = UpOptions {
            standbys: Some(standbys),
            port: Some(port),
            bins: BinChoice {
                dir: Some(bindir),
                major: Some(major),
            },
            ..Default::default()
        };
        let ran = async {
            cluster::up(&lab, &opts).await?;
            run_plan(
                req,
                &inner,
                signals,
                Some(&lab.dir),
                Some((leaf.clone(), dir_for(&leaf))),
            )
            .await
        }
        .await;
        if let Err(e) = cluster::destroy(&lab).await {
            crate::errln!(
                "warning: PostgreSQL {major}'s lab at {} could not be destroyed: {e:#}",
                lab.dir.display()
            );
        }
        let o = ran?;
        failures.extend(o.failures.into_iter().map(|f| format!("{leaf}: {f}")));
        dirs.push(o.dir);
        variants.push(v.clone());
        if o.interrupted.is_some() {
            interrupted = o.interrupted;
            break;
        }
    }
    let matrix_dir = crate::report::make_result_dir(Some(&dir_for("matrix")), &plan.name, None)?;
    if dirs.len() >= 2 {
        crate::report::compare::compare_runs(&dirs, Some(&matrix_dir))?;
    }
    crate::report::matrix::write_matrix_report(&dirs, &variants, &matrix_dir)?;
    crate::outln!("matrix: {}", matrix_dir.join("matrix.md").display());
    Ok(MatrixOutcome {
        dir: matrix_dir,
        failures,
        interrupted,
    })
}
