//! What pg_auto_failover's monitor says: each node's reported and assigned state and health,
//! the timeouts in force, its events (when a failover began, why none did), and the
//! switchovers it performs.

use super::{autoctl, monitor_client, monitor_uri};
use crate::cluster::ha::{OrchestratedNode, OrchestratorView};
use crate::cluster::state::LabState;
use crate::cluster::Lab;
use crate::units::format_duration;
use anyhow::{anyhow, Result};
use indexmap::IndexMap;
use std::time::Duration;
use tokio_postgres::Client;

/// What the monitor says of each node, and the settings in force.
pub async fn view(lab: &Lab, state: &LabState) -> OrchestratorView {
    let mut v = OrchestratorView {
        kind: crate::cluster::ha::HaKind::PgAutoFailover,
        settings: IndexMap::new(),
        primary: None,
        nodes: Vec::new(),
        connect: vec![write_uri(state)],
        error: None,
    };
    if let Err(e) = read_view(lab, state, &mut v).await {
        v.error = Some(format!("{e:#}"));
    }
    v
}

async fn read_view(lab: &Lab, state: &LabState, v: &mut OrchestratorView) -> Result<()> {
    let client = monitor_client(lab, state).await?;
    let rows = client
        .query(
            "SELECT nodename, reportedstate::text, goalstate::text, health, reportedtli::int8, \
                    reportedlsn::text \
             FROM pgautofailover.node ORDER BY nodeid",
            &[],
        )
        .await?;
    for r in rows {
        let name: String = r.get(0);
        let reported: String = r.get(1);
        let goal: String = r.get(2);
        let health: i32 = r.get(3);
        if reported == goal && is_writable_state(&goal) {
            v.primary = Some(name.clone());
        }
        v.nodes.push(OrchestratedNode {
            agent_running: super::agent_running(lab, &name),
            name,
            role: reported,
            state: goal,
            healthy: match health {
                1 => Some(true),
                0 => Some(false),
                _ => None,
            },
            timeline: r.get(4),
            lsn: r.get(5),
        });
    }
    v.settings = settings_in_force(&client).await?;
    Ok(())
}

/// The states in which pg_auto_failover lets a node take writes.
pub fn is_writable_state(state: &str) -> bool {
    matches!(
        state,
        "single" | "wait_primary" | "primary" | "join_primary" | "apply_settings"
    )
}

/// The monitor's timeouts as they are now (durations in the unit pg_settings gives).
pub async fn settings_in_force(client: &Client) -> Result<IndexMap<String, String>> {
    let rows = client
        .query(
            "SELECT substr(name, 16), setting, coalesce(unit, '') FROM pg_settings \
             WHERE name LIKE 'pgautofailover.%' ORDER BY name",
            &[],
        )
        .await?;
    let mut out = IndexMap::new();
    for r in rows {
        let (name, setting, unit): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        let shown = match (unit.as_str(), setting.parse::<u64>()) {
            ("ms", Ok(ms)) => format_duration(Duration::from_millis(ms)),
            ("s", Ok(s)) => format_duration(Duration::from_secs(s)),
            _ => setting,
        };
        out.insert(name, shown);
    }
    if let Ok(row) = client
        .query_one(
            "SELECT number_sync_standbys::int8 FROM pgautofailover.formation WHERE formationid = 'default'",
            &[],
        )
        .await
    {
        out.insert("number_sync_standbys".into(), row.get::<_, i64>(0).to_string());
    }
    Ok(out)
}

/// The multi-host URI applications use (`pg_autoctl show uri`): the first node that takes
/// writes.
fn write_uri(state: &LabState) -> String {
    let hosts: Vec<String> = state
        .nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    format!(
        "postgres://{}@{}/{}?target_session_attrs=read-write&sslmode=disable",
        state.user,
        hosts.join(","),
        state.database
    )
}

/// The load's writes go where applications' would: the multi-host string with
/// target_session_attrs=read-write over every node.
pub fn write_endpoint(lab: &Lab, state: &LabState) -> Result<crate::pg::Endpoint> {
    let mut config = lab
        .conn(state, state.nodes[0].port)?
        .config(Duration::from_secs(2));
    for n in &state.nodes[1..] {
        config.host("127.0.0.1").port(n.port);
    }
    config.target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite);
    Ok(crate::pg::Endpoint {
        name: "writes (multi-host, read-write)".into(),
        config,
    })
}

/// `pg_autoctl perform switchover` (the monitor picks the standby) or `perform promotion`
/// of the named node; both wait until the new primary is in place.
pub async fn switchover(lab: &Lab, state: &LabState, target: Option<&str>) -> Result<String> {
    let before = view(lab, state).await.primary;
    let mut args = vec!["perform".to_string()];
    match target {
        Some(name) => args.extend(["promotion".into(), "--name".into(), name.to_string()]),
        None => args.push("switchover".into()),
    }
    args.extend([
        "--monitor".into(),
        monitor_uri(state),
        "--wait".into(),
        "60".into(),
    ]);
    autoctl(
        lab,
        state,
        &args,
        "pg_autoctl perform",
        Duration::from_secs(90),
    )
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = view(lab, state).await.primary;
        if let Some(p) = now.filter(|p| Some(p) != before.as_ref() || target == Some(p.as_str())) {
            return Ok(p);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(anyhow!(
                "pg_auto_failover reported the switchover done, yet no new primary took over"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The goal states in which the monitor is failing over: it has judged the primary gone
/// (draining, demote_timeout), asks the standbys for their positions (report_lsn), or is
/// promoting the candidate it chose (prepare_promotion, stop_replication).
const FAILOVER_GOALS: &str =
    "'draining', 'demote_timeout', 'report_lsn', 'prepare_promotion', 'stop_replication'";

/// When the monitor began the failover that made `node` the primary: its first event at or
/// after `since` that set a failover goal (`pgautofailover.event.eventtime`, the monitor's
/// clock, which on the lab is the tool's).
pub async fn failover_began(
    lab: &Lab,
    state: &LabState,
    node: &str,
    since: std::time::SystemTime,
) -> Option<std::time::SystemTime> {
    let client = monitor_client(lab, state).await.ok()?;
    let since_s = since
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    let sql = format!(
        "SELECT extract(epoch FROM min(eventtime))::float8 FROM pgautofailover.event \
         WHERE eventtime >= to_timestamp($1) AND goalstate::text IN ({FAILOVER_GOALS}) \
           AND (nodename = $2 OR goalstate::text IN ('draining', 'demote_timeout', 'report_lsn'))"
    );
    let row = client.query_one(&sql, &[&since_s, &node]).await.ok()?;
    let at: Option<f64> = row.get(0);
    at.map(|s| std::time::UNIX_EPOCH + Duration::from_secs_f64(s))
}

/// The monitor's own account of why no standby took over from `killed`: each node's reported
/// and assigned state and health, and its last events.
pub async fn why_not(lab: &Lab, state: &LabState, killed: &str) -> String {
    let client = match monitor_client(lab, state).await {
        Ok(c) => c,
        Err(e) => return format!("the monitor cannot be asked ({e:#})"),
    };
    let v = view(lab, state).await;
    let nodes: Vec<String> = v
        .nodes
        .iter()
        .filter(|n| n.name != killed)
        .map(|n| {
            let health = match n.healthy {
                Some(true) => "healthy",
                Some(false) => "unhealthy",
                None => "health unknown",
            };
            format!(
                "{} reported {}, assigned {} ({health})",
                n.name, n.role, n.state
            )
        })
        .collect();
    let events = client
        .query(
            "SELECT description FROM pgautofailover.event ORDER BY eventid DESC LIMIT 3",
            &[],
        )
        .await
        .map(|rows| {
            rows.iter()
                .rev()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    format!(
        "the monitor promoted no standby: {}; its last events: {}",
        nodes.join("; "),
        events.join(" / ")
    )
}
