//! `pgbench-repl run WORKLOAD.toml`: load the plan, reach the cluster, check the SQL, drive the
//! load while the recorder writes results, then the summary and the `[expect]` verdicts.

use crate::cli::RunArgs;
use crate::cluster::{self, Lab, UpOptions};
use crate::config::{describe, load_workload};
use crate::error::{usage, ExpectFailed, Interrupted};
use crate::exec::{self, preflight, Endpoint};
use crate::record::{Progress, RecordedRun, Recorder, Writers};
use crate::report::summary::{self, GroupMeta, RunMeta};
use crate::report::{
    make_result_dir, write_atomic, EventsWriter, HlogWriter, IntervalsWriter, LagWriter,
};
use crate::units::format_duration;
use crate::workload::{Action, Workload};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Where a run's load goes.
pub(super) struct Targets {
    pub endpoints: Vec<Endpoint>,
    pub lab: Option<Lab>,
    pub cluster_doc: Value,
}

/// How one run ended.
pub(super) struct Outcome {
    pub dir: PathBuf,
    pub failures: Vec<String>,
    pub interrupted: bool,
}

pub async fn run(args: RunArgs) -> Result<()> {
    let mut sets = args.sets.clone();
    if let Some(d) = args.duration {
        sets.push(format!("run.duration={}", format_duration(d)));
    }
    let plan = load_workload(&args.workload, &sets)?;
    let source = args.workload.display().to_string();
    let targets = resolve_targets(&plan, args.lab.dir.as_deref()).await?;
    check_event_targets(&plan, targets.lab.as_ref())?;
    let primary = targets.endpoints[0].connect(None).await?;
    preflight::run_setup(&primary, &plan, &source).await?;
    preflight::check_statements(&primary, &plan, &source).await?;
    drop(primary);

    let outcome = match plan.matrix.clone() {
        None => {
            let dir = make_result_dir(args.out.as_deref(), &plan.name, None)?;
            let o = run_one(&plan, &targets, &source, dir, None, args.quiet).await?;
            if !o.interrupted {
                if let Ok(doc) = std::fs::read(o.dir.join("summary.json")) {
                    print_summary(&serde_json::from_slice(&doc)?, &o.dir);
                }
            }
            o
        }
        Some(matrix) => {
            super::matrix::run_matrix(
                &plan,
                &matrix,
                &targets,
                &source,
                args.out.as_deref(),
                args.quiet,
            )
            .await?
        }
    };
    if outcome.interrupted {
        return Err(Interrupted(format!(
            "interrupted: what was measured is in {}",
            outcome.dir.display()
        ))
        .into());
    }
    if !outcome.failures.is_empty() {
        return Err(ExpectFailed(format!(
            "[expect] failed:\n  {}",
            outcome.failures.join("\n  ")
        ))
        .into());
    }
    Ok(())
}

/// Run the load once into `dir`: results as the run goes, then summary, charts, report.md.
pub(super) async fn run_one(
    plan: &Workload,
    targets: &Targets,
    source: &str,
    dir: PathBuf,
    variant: Option<String>,
    quiet: bool,
) -> Result<Outcome> {
    let endpoints = targets.endpoints.clone();
    let primary = endpoints[0].connect(None).await?;
    let mut server = preflight::server_info(&primary).await?;
    drop(primary);
    if let Some(level) = &plan.synchronous_commit {
        server["synchronous_commit"] = Value::from(level.clone());
    }
    let tx_names: Vec<String> = plan.transactions.iter().map(|t| t.name.clone()).collect();
    let mut meta = RunMeta {
        workload: plan.name.clone(),
        description: plan.description.clone(),
        variant,
        source: source.to_string(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ended_at: None,
        warmup_s: plan.warmup.as_secs_f64(),
        planned_duration_s: plan.duration.map(|d| d.as_secs_f64()),
        seed: plan.seed,
        cluster: targets.cluster_doc.clone(),
        server,
        tx_names: tx_names.clone(),
        groups: plan
            .groups
            .iter()
            .map(|g| GroupMeta {
                name: g.name.clone(),
                clients: g.clients,
                rate: g.rate,
                read_your_writes: g.read_your_writes,
                stop_after: g.stop_after,
                backlog: None,
            })
            .collect(),
    };
    if let Some(lab) = &targets.lab {
        let links = lab.links().status().await.unwrap_or_default();
        meta.cluster["links"] = serde_json::to_value(&links)?;
        meta.cluster["sync"] = Value::from(lab.state()?.sync.to_string());
    }
    eprintln!("info: running {} -> {}", plan.name, dir.display());

    let summary_path = dir.join("summary.json");
    let checkpoint_meta = meta.clone();
    let checkpoint_path = summary_path.clone();
    let checkpoint = move |run: &RecordedRun| {
        let doc = summary::build(&checkpoint_meta, run, true);
        let _ = write_atomic(
            &checkpoint_path,
            &serde_json::to_vec_pretty(&doc).unwrap_or_default(),
        );
    };
    let writers = Writers {
        intervals: IntervalsWriter::create(&dir.join("intervals.csv"), &tx_names)?,
        events: EventsWriter::create(&dir.join("events.csv"))?,
        hlog: HlogWriter::create(&dir.join("latency.hlog"), &tx_names, SystemTime::now())?,
        lag: LagWriter::create(&dir.join("lag.csv"))?,
        checkpoint: Box::new(checkpoint),
    };
    let (tx, rx) = mpsc::channel(65_536);
    let plan = Arc::new(plan.clone());
    let load = exec::connect_clients(plan.clone(), endpoints.clone(), tx).await;
    let origin = Instant::now();
    let total = plan.duration.map(|d| d + plan.warmup);
    let standby_names: Vec<String> = endpoints.iter().skip(1).map(|e| e.name.clone()).collect();
    let recorder = Recorder::new(
        tx_names.len(),
        plan.groups.len(),
        &standby_names,
        origin,
        plan.warmup,
        writers,
        Progress::new(quiet, total),
    );
    let recording = tokio::spawn(recorder.run(rx));
    let end = load.run(targets.lab.clone(), origin).await;
    let recorded = recording.await.context("the recorder stopped")??;

    meta.ended_at = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    for (g, b) in meta.groups.iter_mut().zip(&end.backlog) {
        g.backlog = *b;
    }
    let mut doc = summary::build(&meta, &recorded, end.interrupted);
    let failures = crate::report::expect::evaluate(&plan.expect, &mut doc);
    write_atomic(&summary_path, &serde_json::to_vec_pretty(&doc)?)?;
    if let Err(e) = crate::report::render_report(&dir) {
        eprintln!("warning: the charts and report.md could not be drawn: {e:#}");
    }
    if end.interrupted {
        print_summary(&doc, &dir);
    }
    Ok(Outcome {
        dir,
        failures,
        interrupted: end.interrupted,
    })
}

/// The nodes the load reaches: the lab (started if it is not running) or the [cluster].
async fn resolve_targets(plan: &Workload, lab_dir: Option<&Path>) -> Result<Targets> {
    if let Some(c) = &plan.cluster {
        let mut endpoints = vec![Endpoint {
            name: "primary".into(),
            config: c.primary.clone(),
        }];
        for (i, s) in c.standbys.iter().enumerate() {
            endpoints.push(Endpoint {
                name: format!("standby{}", i + 1),
                config: s.clone(),
            });
        }
        let doc = json!({
            "kind": "external",
            "nodes": endpoints.iter().map(|e| json!({"name": e.name, "at": e.describe()})).collect::<Vec<_>>(),
        });
        return Ok(Targets {
            endpoints,
            lab: None,
            cluster_doc: doc,
        });
    }
    let lab = Lab::locate(lab_dir);
    let running = lab.exists()
        && lab
            .state()
            .map(|s| cluster::status::primary_running(&lab, &s))
            .unwrap_or(false);
    if !running {
        eprintln!("info: starting the lab at {}", lab.dir.display());
        cluster::up(&lab, &UpOptions::default()).await?;
    }
    let state = lab.state()?;
    let mut endpoints = Vec::new();
    for n in std::iter::once(state.primary()).chain(state.standbys().filter(|n| !n.needs_rejoin)) {
        endpoints.push(Endpoint {
            name: n.name.clone(),
            config: lab
                .conn(&state, n.port)?
                .config(std::time::Duration::from_secs(5)),
        });
    }
    let doc = json!({
        "kind": "lab",
        "dir": lab.dir,
        "sync": state.sync.to_string(),
        "nodes": endpoints.iter().map(|e| json!({"name": e.name, "at": describe(&e.config)})).collect::<Vec<_>>(),
    });
    Ok(Targets {
        endpoints,
        lab: Some(lab),
        cluster_doc: doc,
    })
}

/// Drill actions that name a node must name one of the lab's.
fn check_event_targets(plan: &Workload, lab: Option<&Lab>) -> Result<()> {
    for (i, e) in plan.events.iter().enumerate() {
        let node = match &e.action {
            Action::Exec { .. } | Action::SetSync(_) | Action::Promote(None) => continue,
            Action::PauseLink(n)
            | Action::ResumeLink(n)
            | Action::CutLink(n)
            | Action::HealLink(n)
            | Action::Kill(n)
            | Action::Start(n)
            | Action::Rejoin(n)
            | Action::SetLink { node: n, .. }
            | Action::Promote(Some(n)) => n,
        };
        let Some(lab) = lab else {
            return Err(usage(format!(
                "event[{i}]: this action needs the lab; against a [cluster] use action = \"exec\""
            )));
        };
        cluster::require_node(&lab.state()?, node)
            .map_err(|e| usage(format!("event[{i}].target: {e}")))?;
    }
    Ok(())
}

/// A short table on stdout.
fn print_summary(doc: &Value, dir: &Path) {
    let f = |v: &Value| {
        v.as_f64()
            .map(|x| format!("{x:.2}"))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "{:<20} {:>9} {:>7} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "transaction", "ok", "failed", "unknown", "tps", "p50 ms", "p99 ms", "max ms"
    );
    if let Some(txs) = doc["transactions"].as_object() {
        for (name, t) in txs {
            println!(
                "{:<20} {:>9} {:>7} {:>7} {:>10} {:>9} {:>9} {:>9}",
                name,
                t["ok"].to_string(),
                t["failed"].to_string(),
                t["unknown"].to_string(),
                f(&t["tps"]),
                f(&t["latency_ms"]["p50"]),
                f(&t["latency_ms"]["p99"]),
                f(&t["latency_ms"]["max"])
            );
        }
    }
    let total = &doc["total"];
    println!(
        "{:<20} {:>9} {:>7} {:>7} {:>10}",
        "total",
        total["ok"].to_string(),
        total["failed"].to_string(),
        total["unknown"].to_string(),
        f(&total["tps"])
    );
    let wal = &doc["wal"];
    if let Some(rate) = wal["bytes_per_s"].as_f64() {
        println!(
            "WAL: {:.1} MB written, {:.2} MB/s, {} bytes per transaction",
            wal["bytes"].as_f64().unwrap_or(0.0) / 1e6,
            rate / 1e6,
            wal["bytes_per_tx"]
        );
    }
    if doc["interrupted"] == true {
        println!("interrupted: the results hold what was measured until then");
    }
    println!("results: {}", dir.display());
}
