//! One run of a workload into one result directory: the topology, the clients, the sampler
//! and the drill timeline, all feeding the recorder; then the summary, the `[expect]`
//! verdicts, the charts and report.md.

use super::keys;
use super::signals::Signals;
use super::sweep::{summarize, SweepRun};
use super::targets::{lab_now, Targets};
use super::timeline::Timeline;
use crate::consistency::verify;
use crate::exec::{self, Stop};
use crate::messages::{Beat, Record};
use crate::monitor::{MonitorSink, Shared as MonitorShared};
use crate::pg::{server_info, Endpoint};
use crate::record::summary::{build, ExpectLine, GroupMeta, RunMeta, RunSummary, ShardInfo};
use crate::record::{self, Recorder, RecorderSetup, Sink, Tee};
use crate::report::{expect, write_atomic, Progress, RunFiles};
use crate::sampler::heartbeat;
use crate::shard::rendezvous::Start;
use crate::shard::Rendezvous;
use crate::topology::Topology;
use crate::workload::Workload;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How one run ended.
pub struct Outcome {
    pub dir: PathBuf,
    pub summary: RunSummary,
    /// The signal that stopped it, if one did.
    pub interrupted: Option<i32>,
}

/// What every run of a session shares.
pub struct Session<'a> {
    pub targets: &'a Targets,
    pub source: &'a str,
    pub quiet: bool,
    pub signals: &'a mut Signals,
    pub lag_alert: Option<Duration>,
    /// `--serve`: the endpoints' state, fed by every run's recorder.
    pub monitor: Option<MonitorShared>,
    /// Standbys a `[matrix]` combination stopped: left out of its run.
    pub exclude: Vec<String>,
    /// `--shard`: where this shard meets the others to start together.
    pub rendezvous: Option<&'a Rendezvous>,
}

fn now_text() -> String {
    time_text(SystemTime::now())
}

fn time_text(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Session<'_> {
    /// Run the load once into `dir`: results as the run goes, then summary, charts, report.md.
    pub async fn run_one(
        &mut self,
        plan: &Workload,
        dir: PathBuf,
        variant: Option<String>,
    ) -> Result<Outcome> {
        let mut meta = self.meta(plan, variant).await?;
        crate::errln!("info: running {} -> {}", plan.name, dir.display());
        let (tx, rx) = mpsc::channel(65_536);
        let kept: Vec<usize> = (0..self.targets.endpoints.len())
            .filter(|i| !self.exclude.contains(&self.targets.endpoints[*i].name))
            .collect();
        let endpoints: Vec<Endpoint> = kept
            .iter()
            .map(|i| self.targets.endpoints[*i].clone())
            .collect();
        let endpoints = &endpoints;
        let topology = Arc::new(Topology::with_access(
            endpoints
                .iter()
                .map(|e| (e.name.clone(), e.clone()))
                .collect(),
            kept.iter()
                .map(|i| self.targets.repl_names[*i].clone())
                .collect(),
            self.targets.access.clone(),
        ));
        if plan.tracks_keys() {
            keys::truncate(&endpoints[0].connect(None).await?).await?;
        }
        let plan_arc = Arc::new(plan.clone());
        let load = exec::connect_clients(plan_arc, topology.clone(), tx.clone())
            .await
            .context("cannot start the load's threads")?;
        // The heartbeat's WAL per beat, measured before the load writes anything.
        let heartbeat = match plan.heartbeat_every {
            Some(every) => match heartbeat::prepare(&endpoints[0]).await {
                Some((wal, k0)) => Some((every, wal, k0)),
                None => {
                    crate::errln!("warning: the heartbeat could not be written on the primary: the run goes on without it");
                    None
                }
            },
            None => None,
        };
        let origin = match self.rendezvous {
            Some(rv) => {
                let start = self.start_together(rv).await?;
                meta.shard = Some(shard_info(rv, &start, plan));
                start.at
            }
            None => Instant::now(),
        };
        let origin_wall = SystemTime::now();
        // started_at and ended_at bound the load (warmup included), so that runs and shards
        // line up by them.
        meta.started_at = time_text(origin_wall);
        let total = plan.duration.map(|d| d + plan.warmup);
        let files = RunFiles::create(
            &dir,
            meta.clone(),
            Progress::new(self.quiet, total),
            origin_wall,
        )?;
        let mut sink: Box<dyn Sink> = match &self.monitor {
            Some(m) => {
                m.lock().unwrap_or_else(|e| e.into_inner()).tx_names = meta.tx_names.clone();
                Box::new(Tee(files, MonitorSink(m.clone())))
            }
            None => Box::new(files),
        };
        let (steps_tx, steps_rx) = mpsc::unbounded_channel();
        let recorder = Recorder::new(RecorderSetup {
            tx_writes: plan.transactions.iter().map(|t| t.is_write()).collect(),
            groups: plan.groups.len(),
            nodes: endpoints.iter().map(|e| e.name.clone()).collect(),
            origin,
            warmup: plan.warmup,
            lag_alert: self.lag_alert,
            steps: plan.sweep.as_ref().map(|_| steps_tx),
            writes_via_access: topology.view().writes_via_access(),
        });
        let interval = plan.interval;
        let recording = tokio::spawn(async move {
            record::drive(recorder, rx, sink.as_mut(), origin, interval).await
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let sampler = plan.sample_every.map(|every| {
            tokio::spawn(crate::sampler::run_sampler(
                topology.clone(),
                every,
                origin,
                tx.clone(),
                stop_rx.clone(),
            ))
        });
        let beats = heartbeat.map(|(every, wal, k0)| {
            let _ = tx.try_send(Record::Beat(Beat::WalPerBeat(wal)));
            tokio::spawn(heartbeat::run_heartbeat(
                topology.clone(),
                every,
                k0,
                tx.clone(),
                stop_rx.clone(),
            ))
        });
        let timeline = Timeline {
            lab: self.targets.lab.clone(),
            topology: topology.clone(),
            records: tx.clone(),
            orchestrator: self.targets.orchestrator.clone(),
        };
        let timeline = tokio::spawn(timeline.run(plan.events.clone(), origin, stop_rx));

        let judged = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (sweep_done, mut sweep_ended) = tokio::sync::oneshot::channel::<()>();
        let sweep_task = plan.sweep.clone().map(|sweep| {
            let run = SweepRun {
                sweep,
                control: load.control(),
                records: tx.clone(),
                steps: steps_rx,
                topology: topology.clone(),
                lab: self.targets.lab.clone(),
                warmup: plan.warmup,
                judged: judged.clone(),
            };
            tokio::spawn(async move {
                run.run().await;
                let _ = sweep_done.send(());
            })
        });
        let signals = &mut *self.signals;
        let sweeping = sweep_task.is_some();
        let until = async move {
            tokio::select! {
                sig = signals.next() => Stop::Interrupted(sig),
                _ = &mut sweep_ended, if sweeping => Stop::Done,
            }
        };
        let end = load.run(origin, until).await;
        if let Some(t) = sweep_task {
            t.abort();
        }
        drop(tx);
        let _ = stop_tx.send(true);
        if let Some(s) = sampler {
            let _ = s.await;
        }
        if let Some(b) = beats {
            let _ = b.await;
        }
        self.finish_timeline(timeline).await;
        let recorded = recording.await.context("the recorder stopped")??;
        if let Some(rv) = self.rendezvous {
            rv.finish().await;
        }
        write_totals(&dir, origin_wall, plan, &recorded)?;

        meta.ended_at = Some(time_text(
            origin_wall + end.stopped_at.saturating_duration_since(origin),
        ));
        for (g, b) in meta.groups.iter_mut().zip(&end.backlog) {
            g.backlog = *b;
        }
        let interrupted = match end.stop {
            Stop::Interrupted(sig) => Some(sig),
            _ => None,
        };
        let mut summary = build(&meta, &recorded, interrupted.is_some());
        if let Some(sweep) = &plan.sweep {
            let steps = std::mem::take(&mut *judged.lock().unwrap_or_else(|e| e.into_inner()));
            let group = &plan.groups[sweep.group].name;
            summary.sweep = Some(summarize(sweep, group, steps, &summary.drills));
        }
        let view = topology.view();
        let primary = view.primary().map(|p| view.nodes[p].endpoint.clone());
        self.who_decided(plan, &mut summary);
        let drilled = summary.drills.failover.is_some() || summary.drills.switchover.is_some();
        if plan.tracks_keys() && drilled {
            let read = match &primary {
                Some(p) => async { keys::read(&p.connect(None).await?).await }
                    .await
                    .map_err(|e| format!("on {}: {e:#}", p.name)),
                None => Err("no node is the primary".to_string()),
            };
            let counts = match read {
                Ok(present) => keys::count(&recorded.keys, &present),
                Err(why) => {
                    crate::errln!("warning: the drill's keys could not be read ({why}): what was lost is unknown");
                    keys::count_unread(&recorded.keys)
                }
            };
            if let Some(s) = summary.drills.switchover.as_mut() {
                s.lost = counts.lost;
            }
            if let Some(f) = summary.drills.failover.as_mut() {
                f.keys = counts;
            }
        }
        if plan.verify && interrupted.is_none() {
            if let (Some(rv), Some(info)) = (self.rendezvous, &meta.shard) {
                let running = rv
                    .wait_others(info.start_at_unix_s, Duration::from_secs(60))
                    .await;
                if !running.is_empty() {
                    crate::errln!(
                        "warning: shards {running:?} were still running a minute after this one: \
                         the nodes are compared while they write"
                    );
                }
            }
            let nodes: Vec<Endpoint> = view
                .primary()
                .into_iter()
                .chain(view.standbys())
                .map(|i| view.nodes[i].endpoint.clone())
                .collect();
            summary.verify = Some(verify(&nodes, Duration::from_secs(60)).await?);
        }
        // A shard sees part of the load: `merge` judges [expect] on the whole.
        if summary.shard.is_none() {
            summary.expect = expect::evaluate(&plan.expect, &summary);
        }
        write_atomic(
            &dir.join("summary.json"),
            &serde_json::to_vec_pretty(&summary)?,
        )?;
        if let Err(e) = crate::report::render_report(&dir) {
            crate::errln!("warning: the charts and report.md could not be drawn: {e:#}");
        }
        Ok(Outcome {
            dir,
            summary,
            interrupted,
        })
    }

    /// Who decided the failover, and the timeouts it ran with: the orchestrator (or the
    /// `[cluster]`'s nodes, observed), or the workload's own promote event.
    fn who_decided(&self, plan: &Workload, summary: &mut RunSummary) {
        let Some(f) = summary.drills.failover.as_mut() else {
            return;
        };
        match &self.targets.orchestrator {
            Some(o) => {
                f.decided_by = Some(o.decided_by().to_string());
                f.settings = summary
                    .cluster
                    .ha
                    .as_ref()
                    .map(|h| h.settings.clone())
                    .unwrap_or_default();
                if let Some((name, secs)) = o.detection_setting(&f.settings) {
                    f.detection_setting = Some(name);
                    f.detection_setting_s = Some(secs);
                }
            }
            None if plan
                .events
                .iter()
                .any(|e| matches!(e.action, crate::workload::Action::Promote(_))) =>
            {
                f.decided_by = Some("pgbench-repl".into());
            }
            None => {}
        }
    }

    /// The undos of the timeline still run after the load stops; a second signal (or a
    /// minute) ends them.
    async fn finish_timeline(&mut self, timeline: tokio::task::JoinHandle<()>) {
        let abort = timeline.abort_handle();
        tokio::select! {
            _ = timeline => {}
            _ = tokio::time::sleep(Duration::from_secs(60)) => {
                abort.abort();
                crate::errln!("warning: a drill action was still running a minute after the run ended: stopped");
            }
            _ = self.signals.next() => {
                abort.abort();
                crate::errln!("warning: the drill's undo actions were stopped by a second signal");
            }
        }
    }

    async fn meta(&self, plan: &Workload, variant: Option<String>) -> Result<RunMeta> {
        let primary = self.targets.endpoints[0].connect(None).await?;
        let mut server = server_info(&primary).await?;
        drop(primary);
        server.nodes = node_versions(&self.targets.endpoints).await;
        if let Some(level) = &plan.synchronous_commit {
            server.synchronous_commit = level.clone();
        }
        let mut cluster = match &self.targets.lab {
            Some(lab) => lab_now(lab, &self.targets.cluster).await,
            None => self.targets.cluster.clone(),
        };
        if let (Some(ha), Some(o)) = (cluster.ha.as_mut(), &self.targets.orchestrator) {
            ha.settings = o.settings().await;
        }
        Ok(RunMeta {
            workload: plan.name.clone(),
            description: plan.description.clone(),
            variant,
            source: self.source.to_string(),
            started_at: now_text(),
            ended_at: None,
            warmup_s: plan.warmup.as_secs_f64(),
            planned_duration_s: plan.duration.map(|d| d.as_secs_f64()),
            seed: plan.seed,
            cluster,
            server,
            tx_names: plan.transactions.iter().map(|t| t.name.clone()).collect(),
            groups: plan
                .groups
                .iter()
                .map(|g| GroupMeta {
                    name: g.name.clone(),
                    clients: g.clients,
                    rate: g.rate,
                    read_your_writes: g.read_your_writes,
                    stop_after: g.stop_after,
                    max_tries: g.max_tries,
                    backlog: None,
                })
                .collect(),
            shard: None,
        })
    }

    /// Mark this shard ready, wait for the common start and until it comes; a signal
    /// meanwhile ends the run before it began.
    async fn start_together(&mut self, rv: &Rendezvous) -> Result<Start> {
        let waited = async {
            let start = rv.ready_and_start().await?;
            tokio::time::sleep_until(start.at).await;
            anyhow::Ok(start)
        };
        tokio::select! {
            r = waited => {
                let start = r?;
                if start.late_s > 0.0 {
                    crate::errln!(
                        "warning: shard {} started {:.3}s after the common start",
                        rv.spec, start.late_s
                    );
                }
                Ok(start)
            }
            sig = self.signals.next() => {
                let _ = rv.leave().await;
                Err(crate::error::Interrupted::before_start(sig).into())
            }
        }
    }
}

fn shard_info(rv: &Rendezvous, start: &Start, plan: &Workload) -> ShardInfo {
    ShardInfo {
        index: rv.spec.index,
        count: rv.spec.count,
        run_id: rv.run_id.clone(),
        host: rv.host.clone(),
        start_at_unix_s: start.start_at_unix_s,
        origin_unix_s: start.start_at_unix_s + start.late_s,
        late_s: start.late_s,
        clock_offset_s: start.clock_offset_s,
        expect: plan
            .expect
            .iter()
            .map(|e| ExpectLine {
                path: e.path.clone(),
                condition: e.text.clone(),
            })
            .collect(),
    }
}

/// totals.hlog: the measured part's histograms, which `merge` adds up losslessly.
fn write_totals(
    dir: &std::path::Path,
    origin: SystemTime,
    plan: &Workload,
    run: &record::RecordedRun,
) -> Result<()> {
    use crate::report::hlog::{schedule_lag_tag, HlogWriter};
    let mut names: Vec<String> = plan.transactions.iter().map(|t| t.name.clone()).collect();
    names.extend(plan.groups.iter().map(|g| schedule_lag_tag(&g.name)));
    let mut w = HlogWriter::create(
        &dir.join("totals.hlog"),
        &names,
        origin,
        "pgbench-repl totals: the measured part of the run; one tag per transaction \
         (latency), one per open-model group (schedule_lag.<group>); microseconds",
    )?;
    let (from, length) = (plan.warmup.as_secs_f64(), run.measured_s);
    for (i, t) in run.tx.iter().enumerate() {
        w.write(i, from, length, &t.latency)?;
    }
    let n = run.tx.len();
    for (gi, h) in run.schedule_lag.iter().enumerate() {
        w.write(n + gi, from, length, h)?;
    }
    w.flush()
}

/// The checks a run failed: its `[expect]` lines, and `verify` when the nodes differ.
pub fn failures(summary: &RunSummary) -> Vec<String> {
    let mut out = expect::failures(&summary.expect);
    if let Some(v) = summary.verify.as_ref().filter(|v| !v.consistent) {
        out.push(format!(
            "verify: the nodes differ: {}",
            v.differences.join("; ")
        ));
        out.extend(
            v.behind
                .iter()
                .map(|n| format!("verify: {n} did not catch up")),
        );
    }
    out
}

/// Each node's `server_version`; a node that does not answer within 2 s is left out.
async fn node_versions(
    endpoints: &[crate::pg::Endpoint],
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for e in endpoints {
        let asked = async {
            let c = e.connect(None).await?;
            let row = c.client.query_one("SHOW server_version", &[]).await?;
            anyhow::Ok(row.get::<_, String>(0))
        };
        if let Ok(Ok(v)) = tokio::time::timeout(Duration::from_secs(3), asked).await {
            out.insert(e.name.clone(), v);
        }
    }
    out
}
