//! The layer that owns a run: it loads the plan, reaches the cluster, checks the SQL, runs the
//! load once or once per `[matrix]` combination, handles SIGINT and SIGTERM, and puts back
//! what the run changed on the lab, by every path out of it.

mod keys;
mod matrix;
pub mod monitor;
mod one_run;
mod restore;
pub mod settings;
pub mod signals;
mod sweep;
mod targets;
pub mod timeline;

pub use restore::LabSnapshot;
use settings::SettingsSnapshot;

use crate::config::load_workload;
use crate::error::{CheckFailed, Interrupted};
use crate::exec::preflight;
use crate::report::make_result_dir;
use crate::units::format_duration;
use anyhow::Result;
use one_run::Session;
use signals::Signals;
use std::path::PathBuf;
use std::time::Duration;

/// What `run` was asked to do.
pub struct RunRequest {
    pub workload: PathBuf,
    pub sets: Vec<String>,
    pub duration: Option<Duration>,
    pub out: Option<PathBuf>,
    pub quiet: bool,
    pub lab_dir: Option<PathBuf>,
    /// `--serve ADDR`: /health/db, /metrics and the status page during the run.
    pub serve: Option<String>,
    pub lag_alert: Option<Duration>,
}

/// Run a workload (or its matrix) to the end; errors carry the exit code.
pub async fn run_workload(req: RunRequest) -> Result<()> {
    let mut signals = Signals::install();
    let mut sets = req.sets.clone();
    if let Some(d) = req.duration {
        sets.push(format!("run.duration={}", format_duration(d)));
    }
    let plan = load_workload(&req.workload, &sets)?;
    let source = req.workload.display().to_string();
    // A signal while the lab starts or the SQL is checked ends the run before it begins.
    let prepared = async {
        let targets = targets::resolve(&plan, req.lab_dir.as_deref()).await?;
        targets::check_event_targets(&plan, &targets)?;
        let primary = targets.endpoints[0].connect(None).await?;
        preflight::run_setup(&primary, &plan, &source).await?;
        preflight::check_statements(&primary, &plan, &source).await?;
        if plan.tracks_keys() {
            keys::create_table(&primary).await?;
        }
        drop(primary);
        let snapshot = match &targets.lab {
            Some(lab) => Some(LabSnapshot::capture(lab).await?),
            None => None,
        };
        anyhow::Ok((targets, snapshot))
    };
    let (targets, snapshot) = tokio::select! {
        r = prepared => r?,
        sig = signals.next() => return Err(Interrupted::before_start(sig).into()),
    };
    // Not cancelled by a signal: once a setting changes, it is put back. A signal that comes
    // meanwhile stops the run as soon as it starts.
    let mut settings = SettingsSnapshot::empty();
    let applied = async {
        settings
            .apply_run_settings(
                &targets.endpoints,
                targets.lab.as_ref(),
                &plan.server_settings,
                &source,
            )
            .await?;
        settings
            .capture(&targets.endpoints, &plan.changed_settings())
            .await
    }
    .await;
    if let Err(e) = applied {
        let _ = settings.restore(targets.lab.as_ref()).await;
        return Err(e);
    }
    let monitor = crate::monitor::MonitorState::new(req.lag_alert.map(|d| d.as_secs_f64()), vec![]);
    let server = match &req.serve {
        Some(addr) => match crate::monitor::serve(addr, monitor.clone()).await {
            Ok(s) => {
                eprintln!(
                    "info: serving http://{}/ (/health/db, /metrics) during the run",
                    s.addr
                );
                Some(s)
            }
            Err(e) => {
                let _ = settings.restore(targets.lab.as_ref()).await;
                return Err(e);
            }
        },
        None => None,
    };
    let mut session = Session {
        targets: &targets,
        source: &source,
        quiet: req.quiet,
        signals: &mut signals,
        lag_alert: req.lag_alert,
        monitor: server.as_ref().map(|_| monitor.clone()),
        exclude: Vec::new(),
    };
    let result = match plan.matrix.clone() {
        None => single(&mut session, &plan, req.out.as_deref()).await,
        Some(m) => matrix::run_matrix(&mut session, &plan, &m, req.out.as_deref()).await,
    };
    if let (Some(lab), Some(snap)) = (&targets.lab, &snapshot) {
        if let Err(e) = snap.restore(lab).await {
            eprintln!("warning: the lab's links or sync mode could not be put back: {e:#}");
        }
    }
    if let Err(e) = settings.restore(targets.lab.as_ref()).await {
        eprintln!("warning: the server settings the run changed could not all be put back: {e:#}");
    }
    if let Some(s) = server {
        s.stop().await;
    }
    let outcome = result?;
    if let Some(sig) = outcome.interrupted {
        return Err(Interrupted::after_run(sig, &outcome.dir).into());
    }
    if !outcome.failures.is_empty() {
        return Err(CheckFailed(format!(
            "checks failed:\n  {}",
            outcome.failures.join("\n  ")
        ))
        .into());
    }
    Ok(())
}

async fn single(
    session: &mut Session<'_>,
    plan: &crate::workload::Workload,
    out: Option<&std::path::Path>,
) -> Result<matrix::MatrixOutcome> {
    let dir = make_result_dir(out, &plan.name, None)?;
    let o = session.run_one(plan, dir, None).await?;
    print!(
        "{}",
        crate::report::table::summary_table(&o.summary, &o.dir)
    );
    Ok(matrix::MatrixOutcome {
        failures: crate::report::expect::failures(&o.summary.expect),
        dir: o.dir,
        interrupted: o.interrupted,
    })
}
