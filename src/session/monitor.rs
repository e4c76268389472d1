//! `monitor`: the sampler with no load, its samples through a recorder into the endpoints'
//! state, until SIGINT or SIGTERM. Against the lab it follows promotions made meanwhile with
//! `cluster promote` from another shell.

use super::signals::Signals;
use super::targets::lab_endpoints;
use crate::cluster::Lab;
use crate::config::load_workload;
use crate::monitor::{serve, MonitorSink, MonitorState};
use crate::pg::Endpoint;
use crate::record::{self, Recorder, RecorderSetup, Tee};
use crate::report::ConsoleSink;
use crate::topology::Topology;
use anyhow::Result;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What `monitor` was asked for.
pub struct MonitorRequest {
    pub workload: Option<PathBuf>,
    pub lab_dir: Option<PathBuf>,
    pub listen: String,
    pub lag_alert: Option<Duration>,
    pub every: Option<Duration>,
}

pub async fn monitor(req: MonitorRequest) -> Result<()> {
    let mut signals = Signals::install();
    let plan = req
        .workload
        .as_deref()
        .map(|w| load_workload(w, &[]))
        .transpose()?;
    let (endpoints, lab) = match plan.as_ref().and_then(|p| p.cluster.clone()) {
        Some(c) => {
            let nodes = std::iter::once(c.primary)
                .chain(c.standbys)
                .enumerate()
                .map(|(i, config)| Endpoint {
                    name: if i == 0 {
                        "primary".into()
                    } else {
                        format!("standby{i}")
                    },
                    config,
                })
                .collect();
            (nodes, None)
        }
        None => {
            let lab = Lab::locate(req.lab_dir.as_deref());
            (lab_endpoints(&lab, true)?, Some(lab))
        }
    };
    let every = req
        .every
        .or_else(|| plan.as_ref().and_then(|p| p.sample_every))
        .unwrap_or(Duration::from_millis(500));
    let state = MonitorState::new(req.lag_alert.map(|d| d.as_secs_f64()), vec![]);
    let server = serve(&req.listen, state.clone()).await?;
    crate::errln!(
        "info: serving http://{}/ (status page), /health/db and /metrics; Ctrl-C to stop",
        server.addr
    );
    // An orchestrator may know a standby by another name (pg_auto_failover's
    // pgautofailover_standby_<id>) in pg_stat_replication and its slots.
    let repl_names: Vec<String> = match lab.as_ref().map(|l| l.state()).transpose()? {
        Some(state) => endpoints
            .iter()
            .map(|e| crate::cluster::ha::replication_name(&state, &e.name))
            .collect(),
        None => Vec::new(),
    };
    let topology = Arc::new(Topology::with_access(
        endpoints
            .iter()
            .map(|e| (e.name.clone(), e.clone()))
            .collect(),
        repl_names,
        Default::default(),
    ));
    let origin = Instant::now();
    let recorder = Recorder::new(RecorderSetup {
        tx_writes: vec![],
        groups: 0,
        nodes: endpoints.iter().map(|e| e.name.clone()).collect(),
        origin,
        warmup: Duration::ZERO,
        lag_alert: req.lag_alert,
        steps: None,
        writes_via_access: false,
    });
    let (tx, rx) = mpsc::channel(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sink = Tee(MonitorSink(state.clone()), ConsoleSink);
    let recording = tokio::spawn(async move {
        record::drive(recorder, rx, &mut sink, origin, Duration::from_secs(1)).await
    });
    let sampler = tokio::spawn(crate::sampler::run_sampler(
        topology.clone(),
        every,
        origin,
        tx,
        stop_rx.clone(),
    ));
    let follower = lab.map(|lab| tokio::spawn(follow_lab(lab, topology, stop_rx)));
    let sig = signals.next().await;
    crate::errln!(
        "info: {} received: stopping",
        crate::error::signal_name(sig)
    );
    let _ = stop_tx.send(true);
    let _ = sampler.await;
    if let Some(f) = follower {
        let _ = f.await;
    }
    let _ = recording.await;
    server.stop().await;
    Ok(())
}

/// Follow the lab's roles as `cluster promote` and `rejoin` change them from another shell,
/// or as the orchestrator of an orchestrated lab changes them.
async fn follow_lab(lab: Lab, topology: Arc<Topology>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let Ok(mut state) = lab.state() else { continue };
        if state.ha.is_some()
            && crate::cluster::ha::refresh_roles(&lab, &mut state)
                .await
                .is_err()
        {
            continue;
        }
        let view = topology.view();
        let primary = &state.primary().name;
        if view.primary().map(|p| view.name(p)) != Some(primary.as_str()) {
            let _ = topology.promote(primary);
        }
        for n in state.standbys().filter(|n| !n.needs_rejoin) {
            let i = view.index_of(&n.name);
            if i.is_some_and(|i| view.nodes[i].role != crate::topology::NodeRole::Standby) {
                let _ = topology.rejoin(&n.name);
            }
        }
    }
}
