//! What Patroni's REST API (and its log) says: the members and the leader that takes writes,
//! the settings in force, who streams, switchovers, when a promotion began and why none did.

use super::{rest_port, rest_ports, DCS_DEFAULTS, REST_USER};
use crate::cluster::ha::http;
use crate::cluster::ha::procs;
use crate::cluster::ha::{OrchestratedNode, OrchestratorView};
use crate::cluster::state::LabState;
use crate::cluster::Lab;
use anyhow::{anyhow, bail, Result};
use indexmap::IndexMap;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

/// The standbys that stream from `leader`, by its own `GET /patroni`.
pub(super) async fn streaming_from(state: &LabState, leader: &str) -> Vec<String> {
    let Ok(r) = http::get(rest_port(state, leader), "/patroni").await else {
        return Vec::new();
    };
    let Ok(doc) = r.json() else { return Vec::new() };
    doc["replication"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|r| r["state"] == "streaming")
                .filter_map(|r| r["application_name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// PATCH /config with the lab's `--ha-setting`s (Patroni applies them at its next loop).
pub async fn apply_settings(lab: &Lab, state: &LabState) -> Result<()> {
    let settings = super::dcs_settings(state);
    if settings.is_empty() {
        return Ok(());
    }
    let password = lab.password()?;
    let mut last = None;
    for (_, port) in rest_ports(state) {
        match http::request(
            port,
            "PATCH",
            "/config",
            Some(&Value::Object(settings.clone())),
            Some((REST_USER, &password)),
            Duration::from_secs(5),
        )
        .await
        {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) => {
                last = Some(anyhow!(
                    "Patroni refused the settings ({}): {}",
                    r.status,
                    r.body.trim()
                ))
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("no Patroni answered")))
}

/// `GET /cluster` from the first node's REST API that answers.
async fn cluster_doc(state: &LabState) -> Result<Value> {
    let mut last = None;
    for (_, port) in rest_ports(state) {
        match http::get(port, "/cluster").await.and_then(|r| r.json()) {
            Ok(doc) => return Ok(doc),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("no Patroni REST API answers")))
}

/// The leader by /cluster, once its own /primary check passes (it takes writes).
pub async fn writer(_lab: &Lab, state: &LabState) -> Option<String> {
    let doc = cluster_doc(state).await.ok()?;
    let leader = doc["members"]
        .as_array()?
        .iter()
        .find(|m| m["role"] == "leader" || m["role"] == "master")?["name"]
        .as_str()?
        .to_string();
    let port = rest_port(state, &leader);
    let ok = http::get(port, "/primary").await.ok()?.status == 200;
    ok.then_some(leader)
}

pub async fn view(lab: &Lab, state: &LabState) -> OrchestratorView {
    let ha = state.ha.as_ref();
    let mut v = OrchestratorView {
        kind: crate::cluster::ha::HaKind::Patroni,
        settings: IndexMap::new(),
        primary: None,
        nodes: Vec::new(),
        connect: vec![
            format!(
                "writes: 127.0.0.1:{} (HAProxy, /primary)",
                ha.and_then(|h| h.write_port).unwrap_or_default()
            ),
            format!(
                "reads: 127.0.0.1:{} (HAProxy, /replica)",
                ha.and_then(|h| h.read_port).unwrap_or_default()
            ),
        ],
        error: None,
    };
    match cluster_doc(state).await {
        Ok(doc) => {
            for m in doc["members"].as_array().into_iter().flatten() {
                let name = m["name"].as_str().unwrap_or("?").to_string();
                let role = m["role"].as_str().unwrap_or("?").to_string();
                if role == "leader" || role == "master" {
                    v.primary = Some(name.clone());
                }
                v.nodes.push(OrchestratedNode {
                    agent_running: super::agent_running(lab, &name),
                    state: m["state"].as_str().unwrap_or("?").to_string(),
                    healthy: None,
                    timeline: m["timeline"].as_i64(),
                    lsn: m["lag"].as_i64().map(|l| format!("lag {l} B")),
                    role,
                    name,
                });
            }
        }
        Err(e) => v.error = Some(format!("{e:#}")),
    }
    v.settings = settings_in_force(state).await;
    v
}

/// `GET /config`, with Patroni's defaults where a setting is not set.
async fn settings_in_force(state: &LabState) -> IndexMap<String, String> {
    let mut doc = Value::Null;
    for (_, port) in rest_ports(state) {
        if let Ok(d) = http::get(port, "/config").await.and_then(|r| r.json()) {
            doc = d;
            break;
        }
    }
    DCS_DEFAULTS
        .iter()
        .map(|(name, default)| {
            let raw = match &doc[*name] {
                Value::Null => default.to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let shown = match *name {
                "ttl" | "loop_wait" | "retry_timeout" => format!("{raw}s"),
                _ => raw,
            };
            (name.to_string(), shown)
        })
        .collect()
}

/// POST /switchover to the leader's REST API; Patroni answers once it is done.
pub async fn switchover(lab: &Lab, state: &LabState, target: Option<&str>) -> Result<String> {
    let leader = writer(lab, state).await.ok_or_else(|| {
        anyhow!("Patroni has no leader that takes writes: nothing to switch over from")
    })?;
    let mut body = json!({"leader": leader});
    if let Some(t) = target {
        body["candidate"] = json!(t);
    }
    let password = lab.password()?;
    let r = http::request(
        rest_port(state, &leader),
        "POST",
        "/switchover",
        Some(&body),
        Some((REST_USER, &password)),
        Duration::from_secs(90),
    )
    .await?;
    if r.status != 200 {
        bail!(
            "Patroni refused the switchover ({}): {}",
            r.status,
            r.body.trim()
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(w) = writer(lab, state).await.filter(|w| *w != leader) {
            return Ok(w);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "Patroni said \"{}\", yet no other node took writes",
                r.body.trim()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// When `node` began its promotion, by its Patroni's log: the line in which it promoted
/// itself to leader (the leader key won), at or after `since`.
pub async fn promotion_began(
    lab: &Lab,
    _state: &LabState,
    node: &str,
    since: SystemTime,
) -> Option<SystemTime> {
    let text = std::fs::read_to_string(procs::log_file(lab, node)).ok()?;
    text.lines()
        .filter(|l| l.contains("promoted self to leader"))
        .filter_map(log_time)
        .find(|t| *t >= since)
}

/// The time at the start of a Patroni log line (`2026-12-04 15:30:01,123 INFO: ...`, UTC).
fn log_time(line: &str) -> Option<SystemTime> {
    let stamp = line.get(..23)?;
    let t = chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S,%3f").ok()?;
    let ms = t.and_utc().timestamp_millis();
    Some(std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).ok()?))
}

/// Each survivor's last word in its log that is not the routine "no action" line, and what
/// /cluster says of it.
pub async fn why_not(lab: &Lab, state: &LabState, killed: &str) -> String {
    let v = view(lab, state).await;
    let mut parts = Vec::new();
    for n in state.nodes.iter().filter(|n| n.name != killed) {
        let seen = v
            .nodes
            .iter()
            .find(|m| m.name == n.name)
            .map(|m| format!("{} {}", m.role, m.state))
            .unwrap_or_else(|| "not in /cluster".into());
        let text = std::fs::read_to_string(procs::log_file(lab, &n.name)).unwrap_or_default();
        let said = text
            .lines()
            .rev()
            .find(|l| {
                (l.contains(" INFO: ") || l.contains(" WARNING: ")) && !l.contains("no action")
            })
            .map(|l| l.get(24..).unwrap_or(l).to_string())
            .unwrap_or_else(|| "nothing".into());
        parts.push(format!("{} ({seen}) last said: {said}", n.name));
    }
    format!("Patroni promoted no replica: {}", parts.join("; "))
}

/// `node` streams from the leader again (the leader's GET /patroni says so).
pub async fn rejoined(lab: &Lab, state: &LabState, node: &str) -> bool {
    match writer(lab, state).await {
        Some(leader) if leader != node => streaming_from(state, &leader)
            .await
            .iter()
            .any(|s| s == node),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn patroni_log_times_are_utc() {
        let t = super::log_time(
            "2026-12-04 15:30:01,250 INFO: promoted self to leader by acquiring session lock",
        )
        .unwrap();
        let s = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        assert_eq!(s, 1_796_398_201_250);
        assert!(super::log_time("garbage").is_none());
    }
}
