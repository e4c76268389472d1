//! `GET /health/db`: the cluster in one answer a load balancer or a script can act on.

use super::state::MonitorState;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok`, `degraded` (a replica down or over the lag alert), `down` (the primary), or
    /// `starting` (no sample yet, after waiting up to 5 s for the first).
    pub status: &'static str,
    pub primary: PrimaryHealth,
    pub replicas: Vec<ReplicaHealth>,
    /// The largest replica lag in seconds (null while none answers).
    pub lag_seconds: Option<f64>,
    pub split_brain: bool,
}

#[derive(Debug, Serialize)]
pub struct PrimaryHealth {
    pub node: String,
    pub ok: bool,
    pub lsn: Option<String>,
    pub timeline: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct ReplicaHealth {
    pub node: String,
    pub ok: bool,
    pub state: Option<String>,
    pub sync_state: Option<String>,
    pub lag_seconds: Option<f64>,
    pub lag_bytes: Option<u64>,
    pub replay_lsn: Option<String>,
}

/// The answer and its HTTP status: 200 when every node answers and no replica is over the
/// lag alert, 503 otherwise.
pub fn health(m: &MonitorState) -> (u16, Health) {
    let primary = m.nodes.first();
    let replicas: Vec<ReplicaHealth> = m
        .nodes
        .iter()
        .skip(1)
        .map(|n| ReplicaHealth {
            node: n.node.clone(),
            ok: n.ok,
            state: n.state.clone(),
            sync_state: n.sync_state.clone(),
            lag_seconds: n.lag_seconds,
            lag_bytes: n.lag_bytes,
            replay_lsn: n.lsn.clone(),
        })
        .collect();
    let lag = m.max_lag();
    let over = match (m.lag_alert, lag) {
        (Some(limit), Some(l)) => l > limit,
        _ => false,
    };
    let primary_ok = primary.is_some_and(|p| p.ok);
    let status = if m.samples == 0 {
        // Not looked at yet (the first sample is late): nothing to claim, up or down.
        "starting"
    } else if !primary_ok {
        "down"
    } else if replicas.iter().any(|r| !r.ok) || over || m.split_brain {
        "degraded"
    } else {
        "ok"
    };
    let h = Health {
        status,
        primary: PrimaryHealth {
            node: primary.map(|p| p.node.clone()).unwrap_or_default(),
            ok: primary_ok,
            lsn: primary.and_then(|p| p.lsn.clone()),
            timeline: primary.and_then(|p| p.timeline),
        },
        replicas,
        lag_seconds: lag,
        split_brain: m.split_brain,
    };
    (if status == "ok" { 200 } else { 503 }, h)
}
