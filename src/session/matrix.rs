//! A workload with a `[matrix]`: one run per combination, each in its own result directory,
//! then the comparison and matrix.md. The session restores the lab afterwards, whichever way
//! the matrix ended.

use super::one_run::{Outcome, Session};
use super::targets::Targets;
use crate::cluster;
use crate::link::protocol::Request;
use crate::report::make_result_dir;
use crate::workload::{Matrix, Variant, Workload};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// How the matrix ended: its directory, the failed `[expect]` lines, and the signal that
/// stopped it, if one did.
pub struct MatrixOutcome {
    pub dir: PathBuf,
    pub failures: Vec<String>,
    pub interrupted: Option<i32>,
}

pub async fn run_matrix(
    session: &mut Session<'_>,
    plan: &Workload,
    matrix: &Matrix,
    out: Option<&Path>,
) -> Result<MatrixOutcome> {
    let variants = matrix.variants();
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
    let dir_for = |leaf: &str| -> Result<PathBuf> {
        let base = match out {
            Some(o) => o.join(leaf),
            None => PathBuf::from("results")
                .join(&plan.name)
                .join(format!("{stamp}-{leaf}")),
        };
        make_result_dir(Some(&base), &plan.name, None)
    };
    let lab = session.targets.lab.clone();
    let mut runs: Vec<Outcome> = Vec::new();
    let mut interrupted = None;
    let mut stopped: Vec<String> = Vec::new();
    let looped = async {
        for (i, v) in variants.iter().enumerate() {
            crate::errln!("info: matrix {}/{}: {}", i + 1, variants.len(), v.name());
            session.exclude = apply_variant(session.targets, v, &mut stopped).await?;
            let mut p = plan.clone();
            if v.synchronous_commit.is_some() {
                p.synchronous_commit = v.synchronous_commit.clone();
            }
            let o = session
                .run_one(&p, dir_for(&v.name())?, Some(v.name()))
                .await?;
            interrupted = o.interrupted;
            runs.push(o);
            if interrupted.is_some() {
                break;
            }
        }
        anyhow::Ok(())
    }
    .await;
    session.exclude.clear();
    // The standbys a combination stopped run again, whichever way the matrix ended.
    if let Some(lab) = &lab {
        for node in &stopped {
            if let Err(e) = cluster::start_node(lab, node, false).await {
                crate::errln!("warning: {node} could not be started again: {e:#}");
            }
        }
    }
    looped?;
    let failures = runs
        .iter()
        .flat_map(|o| {
            let name = o.summary.variant.clone().unwrap_or_default();
            super::one_run::failures(&o.summary)
                .into_iter()
                .map(move |f| format!("{name}: {f}"))
        })
        .collect();
    let dirs: Vec<PathBuf> = runs.into_iter().map(|o| o.dir).collect();
    let matrix_dir = dir_for("matrix")?;
    if dirs.len() >= 2 {
        crate::report::compare::compare_runs(&dirs, Some(&matrix_dir))?;
    }
    crate::report::matrix::write_matrix_report(&dirs, &variants[..dirs.len()], &matrix_dir)?;
    crate::outln!("matrix: {}", matrix_dir.join("matrix.md").display());
    Ok(MatrixOutcome {
        dir: matrix_dir,
        failures,
        interrupted,
    })
}

/// Set the lab up for one combination: sync mode, every standby's link delay, how many
/// standbys stream, server settings. Returns the standbys this combination stops (the run
/// leaves them out); `stopped` collects every standby the matrix stopped.
async fn apply_variant(
    targets: &Targets,
    v: &Variant,
    stopped: &mut Vec<String>,
) -> Result<Vec<String>> {
    let mut excluded = Vec::new();
    if let Some(lab) = targets.lab.as_ref() {
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
        if let Some(keep) = v.standbys {
            let standbys = targets.endpoints.iter().skip(1).map(|e| e.name.clone());
            for (i, name) in standbys.enumerate() {
                if (i as u32) < keep {
                    cluster::start_node(lab, &name, false).await?;
                } else {
                    cluster::stop_node(lab, &name).await?;
                    if !stopped.contains(&name) {
                        stopped.push(name.clone());
                    }
                    excluded.push(name);
                }
            }
            cluster::wait_following(lab).await?;
        }
    }
    // Settings on every node that runs in this combination, standbys first.
    let running: Vec<&crate::pg::Endpoint> = targets
        .endpoints
        .iter()
        .skip(1)
        .chain(targets.endpoints.first())
        .filter(|e| !excluded.contains(&e.name))
        .collect();
    for (name, value) in &v.settings {
        for node in &running {
            super::settings::apply_on(node, targets.lab.as_ref(), name, value).await?;
        }
    }
    Ok(excluded)
}
