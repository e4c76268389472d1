//! The layer that owns a run: it loads the plan, reaches the cluster, checks the SQL, runs the
//! load once or once per `[matrix]` combination, handles SIGINT and SIGTERM, and puts back
//! what the run changed on the lab, by every path out of it.

mod failover_watch;
mod keys;
mod majors;
mod matrix;
pub mod monitor;
mod observed;
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
use crate::error::{usage, CheckFailed, Interrupted};
use crate::exec::preflight;
use crate::report::make_result_dir;
use crate::shard::{split_plan, Rendezvous, ShardSpec};
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
    /// `--shard I/N`: run this shard's part and start with the others.
    pub shard: Option<ShardRequest>,
}

/// `--shard`, `--run-id`, `--shard-wait`.
pub struct ShardRequest {
    pub spec: ShardSpec,
    /// What the shards of one run share; the workload's name when none is given.
    pub run_id: Option<String>,
    /// How long a shard waits for the others.
    pub wait: Duration,
}

/// Run a workload (or its matrix) to the end; errors carry the exit code.
pub async fn run_workload(req: RunRequest) -> Result<()> {
    let mut signals = Signals::install();
    let mut sets = req.sets.clone();
    if let Some(d) = req.duration {
        sets.push(format!("run.duration={}", format_duration(d)));
    }
    let plan = load_workload(&req.workload, &sets)?;
    let plan = match &req.shard {
        Some(s) => split_plan(&plan, s.spec).map_err(usage)?,
        None => plan,
    };
    let outcome = match plan.matrix.as_ref().filter(|m| !m.pg_version.is_empty()) {
        Some(m) => {
            if req.shard.is_some() {
                return Err(usage(
                    "[matrix] pg_version starts a lab per major: it cannot run as a shard",
                ));
            }
            majors::run_majors(&req, &plan, &m.clone(), &mut signals).await?
        }
        None => run_plan(&req, &plan, &mut signals, req.lab_dir.as_deref(), None).await?,
    };
    finish(outcome)
}

/// A run's ending as the exit code sees it: interrupted (130/143), failed checks (3), or 0.
fn finish(outcome: matrix::MatrixOutcome) -> Result<()> {
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

/// Run a loaded plan (or its matrix) against the lab at `lab_dir` (or its [cluster]); `variant`
/// names a single run that is one of several (a major of a pg_version matrix).
async fn run_plan(
    req: &RunRequest,
    plan: &crate::workload::Workload,
    signals: &mut Signals,
    lab_dir: Option<&std::path::Path>,
    variant: Option<(String, PathBuf)>,
) -> Result<matrix::MatrixOutcome> {
    let source = req.workload.display().to_string();
    let run_id = req
        .shard
        .as_ref()
        .map(|s| s.run_id.clone().unwrap_or_else(|| plan.name.clone()));
    let out = match (&req.out, &req.shard, &run_id) {
        (None, Some(s), Some(id)) => Some(
            PathBuf::from("results")
                .join(&plan.name)
                .join(crate::report::hlog::hlog_tag(id).replace(':', "_"))
                .join(format!("shard-{}", s.spec.index)),
        ),
        _ => req.out.clone(),
    };
    let first = req.shard.as_ref().is_none_or(|s| s.spec.is_first());
    // A signal while the lab starts or the SQL is checked ends the run before it begins.
    let prepared = async {
        let targets = targets::resolve(plan, lab_dir).await?;
        targets::check_event_targets(plan, &targets)?;
        let rendezvous = match (&req.shard, &run_id) {
            (Some(s), Some(id)) => Some(Rendezvous {
                primary: targets.endpoints[0].clone(),
                run_id: id.clone(),
                spec: s.spec,
                wait: s.wait,
                host: host_name(),
            }),
            _ => None,
        };
        // Shard 0 runs [setup] and registers after it; the others register, then wait for
        // it before they check their statements against the tables it made.
        if let Some(rv) = rendezvous.as_ref().filter(|_| !first) {
            rv.register().await?;
            rv.wait_for_setup().await?;
        }
        let primary = targets.endpoints[0].connect(None).await?;
        preflight::run_setup(&primary, plan, &source).await?;
        preflight::check_statements(&primary, plan, &source).await?;
        if plan.tracks_keys() {
            keys::create_table(&primary).await?;
        }
        if plan.heartbeat_every.is_some() {
            primary
                .client
                .batch_execute(crate::sampler::heartbeat::TABLE_SQL)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot create the heartbeat's table: {}",
                        crate::pg::db_message(&e)
                    )
                })?;
        }
        drop(primary);
        // Reads routed to standbys (and the heartbeat's pollers) start once they have
        // replayed what [setup] made.
        if plan.reads_standbys() || plan.heartbeat_every.is_some() {
            wait_for_setup_replay(&targets.endpoints).await;
        }
        if let Some(rv) = rendezvous.as_ref().filter(|_| first) {
            rv.register().await?;
        }
        // Only the run (or shard 0) changes the lab, so only it puts the lab back.
        let snapshot = match (&targets.lab, first) {
            (Some(lab), true) => Some(LabSnapshot::capture(lab).await?),
            _ => None,
        };
        anyhow::Ok((targets, snapshot, rendezvous))
    };
    let (targets, snapshot, rendezvous) = tokio::select! {
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
                crate::errln!(
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
        signals,
        lag_alert: req.lag_alert,
        monitor: server.as_ref().map(|_| monitor.clone()),
        exclude: Vec::new(),
        rendezvous: rendezvous.as_ref(),
    };
    let result = match (plan.matrix.clone(), variant) {
        (_, Some((name, dir))) => single(&mut session, plan, Some(&dir), Some(name)).await,
        (None, None) => single(&mut session, plan, out.as_deref(), None).await,
        (Some(m), None) => matrix::run_matrix(&mut session, plan, &m, out.as_deref()).await,
    };
    if let (Some(lab), Some(snap)) = (&targets.lab, &snapshot) {
        if let Err(e) = snap.restore(lab).await {
            crate::errln!("warning: the lab's links or sync mode could not be put back: {e:#}");
        }
    }
    if let Err(e) = settings.restore(targets.lab.as_ref()).await {
        crate::errln!(
            "warning: the server settings the run changed could not all be put back: {e:#}"
        );
    }
    if let Some(s) = server {
        s.stop().await;
    }
    result
}

/// This machine's name, for the shards' table and the merged report.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

async fn single(
    session: &mut Session<'_>,
    plan: &crate::workload::Workload,
    out: Option<&std::path::Path>,
    variant: Option<String>,
) -> Result<matrix::MatrixOutcome> {
    let dir = make_result_dir(out, &plan.name, None)?;
    let o = session.run_one(plan, dir, variant).await?;
    crate::out!(
        "{}",
        crate::report::table::summary_table(&o.summary, &o.dir)
    );
    Ok(matrix::MatrixOutcome {
        failures: crate::report::expect::failures(&o.summary.expect),
        dir: o.dir,
        interrupted: o.interrupted,
    })
}

/// How long a run waits for the standbys to replay [setup] before its reads start.
const SETUP_REPLAY_WAIT: Duration = Duration::from_secs(10);

/// Wait (up to SETUP_REPLAY_WAIT) for every standby to replay the primary's position after
/// [setup]; say which did not (their reads may fail until they do, and are counted).
async fn wait_for_setup_replay(endpoints: &[crate::pg::Endpoint]) {
    match crate::consistency::wait_for_replay(endpoints, SETUP_REPLAY_WAIT).await {
        Ok(behind) if !behind.is_empty() => crate::errln!(
            "warning: {} had not replayed [setup] after {}s; reads routed there may fail until it has",
            behind.join(", "),
            SETUP_REPLAY_WAIT.as_secs()
        ),
        Ok(_) => {}
        Err(e) => crate::errln!("warning: could not wait for the standbys to replay [setup]: {e:#}"),
    }
}
