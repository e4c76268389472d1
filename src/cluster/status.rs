//! `cluster status`: what every node really is right now, asked of the servers themselves.

use super::node;
use super::state::{LabState, Role};
use super::Lab;
use anyhow::{bail, Result};
use serde::Serialize;
use std::time::Duration;

/// One node as `cluster status` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub name: String,
    pub port: u16,
    /// The role the tool gave it.
    pub role: Role,
    /// The postmaster process is alive.
    pub running: bool,
    /// It answers queries.
    pub reachable: bool,
    pub in_recovery: Option<bool>,
    pub timeline: Option<i64>,
    /// On a primary: pg_current_wal_lsn(). On a standby: the replay LSN.
    pub current_lsn: Option<String>,
    pub receive_lsn: Option<String>,
    pub replay_lsn: Option<String>,
    /// pg_stat_replication on the primary, for standbys.
    pub state: Option<String>,
    pub sync_state: Option<String>,
    /// Primary's current LSN minus this standby's replay LSN.
    pub lag_bytes: Option<i64>,
    /// Primary's current LSN minus this standby's slot restart_lsn.
    pub slot_retained_bytes: Option<i64>,
    pub wal_status: Option<String>,
    pub needs_rejoin: bool,
    /// `server_version` as the running server reports it.
    pub version: Option<String>,
    pub error: Option<String>,
}

/// Two or more nodes out of recovery at once: each took writes the other does not have.
#[derive(Debug, Clone, Serialize)]
pub struct SplitBrain {
    /// Where the newer timeline forked from the older one (its history file's switch point).
    pub fork_lsn: Option<String>,
    pub nodes: Vec<SplitSide>,
}

/// One side of a split brain.
#[derive(Debug, Clone, Serialize)]
pub struct SplitSide {
    pub name: String,
    pub timeline: Option<i64>,
    pub lsn: Option<String>,
    /// WAL this side wrote after the fork: the writes the other side does not have.
    pub wal_since_fork_bytes: Option<u64>,
}

/// The nodes that answer as primaries; Some when there is more than one.
pub async fn split_brain(lab: &Lab, state: &LabState, rows: &[NodeStatus]) -> Option<SplitBrain> {
    let primaries: Vec<&NodeStatus> = rows
        .iter()
        .filter(|r| r.reachable && r.in_recovery == Some(false))
        .collect();
    if primaries.len() < 2 {
        return None;
    }
    let newest = primaries.iter().max_by_key(|r| r.timeline.unwrap_or(0))?;
    let fork = match newest.timeline {
        Some(tl) => fork_lsn(lab, state, newest.port, tl).await,
        None => None,
    };
    let nodes = primaries
        .iter()
        .map(|r| {
            let lsn = r.current_lsn.as_deref().and_then(crate::pg::parse_lsn);
            SplitSide {
                name: r.name.clone(),
                timeline: r.timeline,
                lsn: r.current_lsn.clone(),
                wal_since_fork_bytes: match (lsn, fork) {
                    (Some(l), Some(f)) => Some(l.saturating_sub(f)),
                    _ => None,
                },
            }
        })
        .collect();
    Some(SplitBrain {
        fork_lsn: fork.map(crate::pg::format_lsn),
        nodes,
    })
}

/// The switch point into `timeline`, from its history file on the node at `port`.
async fn fork_lsn(lab: &Lab, state: &LabState, port: u16, timeline: i64) -> Option<u64> {
    let client = lab
        .conn(state, port)
        .ok()?
        .connect(Duration::from_secs(3))
        .await
        .ok()?;
    let file = format!("pg_wal/{timeline:08X}.history");
    let text: String = client
        .query_one("SELECT pg_read_file($1)", &[&file])
        .await
        .ok()?
        .get(0);
    parse_history_switch(&text)
}

/// The last line of a timeline history file: `<parent tli>\t<switch LSN>\t<reason>`.
pub fn parse_history_switch(text: &str) -> Option<u64> {
    text.lines()
        .rfind(|l| !l.trim().is_empty() && !l.starts_with('#'))?
        .split_whitespace()
        .nth(1)
        .and_then(crate::pg::parse_lsn)
}

/// Ask every node, then fill in what only the primary knows about its standbys.
pub async fn collect(lab: &Lab, state: &LabState) -> Result<Vec<NodeStatus>> {
    let mut out = Vec::new();
    for n in &state.nodes {
        let mut s = NodeStatus {
            name: n.name.clone(),
            port: n.port,
            role: n.role,
            running: node::running_pid(&lab.data_dir(&n.name)).is_some(),
            reachable: false,
            in_recovery: None,
            timeline: None,
            current_lsn: None,
            receive_lsn: None,
            replay_lsn: None,
            state: None,
            sync_state: None,
            lag_bytes: None,
            slot_retained_bytes: None,
            wal_status: None,
            needs_rejoin: n.needs_rejoin,
            version: None,
            error: None,
        };
        if s.running {
            if let Err(e) = ask_node(lab, state, &mut s).await {
                s.error = Some(format!("{e:#}"));
            }
        }
        out.push(s);
    }
    let primary = state.primary().name.clone();
    if out.iter().any(|s| s.name == primary && s.reachable) {
        if let Err(e) = ask_primary(lab, state, &mut out).await {
            if let Some(p) = out.iter_mut().find(|s| s.name == primary) {
                p.error = Some(format!("{e:#}"));
            }
        }
    }
    Ok(out)
}

async fn ask_node(lab: &Lab, state: &LabState, s: &mut NodeStatus) -> Result<()> {
    let client = lab
        .conn(state, s.port)?
        .connect(Duration::from_secs(3))
        .await?;
    let row = client
        .query_one(
            "SELECT pg_is_in_recovery(), \
                    CASE WHEN pg_is_in_recovery() \
                      THEN COALESCE((SELECT received_tli::int8 FROM pg_stat_wal_receiver), \
                                    (SELECT timeline_id::int8 FROM pg_control_checkpoint())) \
                      ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int8 END, \
                    CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text, \
                    CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() END::text, \
                    CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() END::text, \
                    current_setting('server_version')",
            &[],
        )
        .await?;
    s.reachable = true;
    s.in_recovery = row.get(0);
    s.timeline = row.get(1);
    s.current_lsn = row.get(2);
    s.receive_lsn = row.get(3);
    s.replay_lsn = row.get(4);
    s.version = row.get(5);
    Ok(())
}

async fn ask_primary(lab: &Lab, state: &LabState, out: &mut [NodeStatus]) -> Result<()> {
    let client = lab
        .conn(state, state.primary().port)?
        .connect(Duration::from_secs(3))
        .await?;
    let rows = client
        .query(
            "SELECT application_name, state, sync_state, \
                    GREATEST(0, pg_current_wal_lsn() - replay_lsn)::int8 \
             FROM pg_stat_replication",
            &[],
        )
        .await?;
    // An orchestrator may know a standby by another name (pg_auto_failover's
    // pgautofailover_standby_<id>): its application_name and its slot's.
    let known_as = |s: &NodeStatus| super::ha::replication_name(state, &s.name);
    for r in rows {
        let name: String = r.get(0);
        if let Some(s) = out.iter_mut().find(|s| known_as(s) == name) {
            s.state = r.get(1);
            s.sync_state = r.get(2);
            s.lag_bytes = r.get(3);
        }
    }
    let slots = client
        .query(
            "SELECT slot_name::text, GREATEST(0, pg_current_wal_lsn() - restart_lsn)::int8, wal_status \
             FROM pg_replication_slots WHERE slot_type = 'physical'",
            &[],
        )
        .await?;
    for r in slots {
        let name: String = r.get(0);
        if let Some(s) = out.iter_mut().find(|s| known_as(s) == name) {
            s.slot_retained_bytes = r.get(1);
            s.wal_status = r.get(2);
        }
    }
    Ok(())
}

/// Wait until every running standby has replayed the primary's current position (up to
/// `limit`): before restarting a standby after the primary changed a setting that standbys
/// must match (max_connections and the like are checked against the last change replayed).
pub async fn wait_replayed(lab: &Lab, state: &LabState, limit: Duration) -> Result<()> {
    let primary = lab
        .conn(state, state.primary().port)?
        .connect(Duration::from_secs(3))
        .await?;
    let target: String = primary
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await?
        .get(0);
    let deadline = tokio::time::Instant::now() + limit;
    for n in state
        .standbys()
        .filter(|n| node::running_pid(&lab.data_dir(&n.name)).is_some())
    {
        let Ok(c) = lab
            .conn(state, n.port)?
            .connect(Duration::from_secs(3))
            .await
        else {
            continue;
        };
        loop {
            let done: bool = c
                .query_one(
                    "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, true)",
                    &[&target],
                )
                .await
                .map(|r| r.get(0))
                .unwrap_or(true);
            if done || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// Wait until every standby that should run streams from the primary.
pub async fn wait_streaming(lab: &Lab, state: &LabState, limit: Duration) -> Result<()> {
    let want: Vec<&str> = state
        .standbys()
        .filter(|n| !n.needs_rejoin && node::running_pid(&lab.data_dir(&n.name)).is_some())
        .map(|n| n.name.as_str())
        .collect();
    let deadline = tokio::time::Instant::now() + limit;
    let primary = state.primary();
    loop {
        let streaming = streaming_standbys(lab, state).await.unwrap_or_default();
        let missing: Vec<&str> = want
            .iter()
            .copied()
            .filter(|w| !streaming.iter().any(|s| s == w))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let tails: Vec<String> = missing
                .iter()
                .map(|m| format!("{m}:\n{}", node::log_tail(&lab.log_file(m), 8)))
                .collect();
            bail!(
                "{} not streaming from {} after {limit:?}; last log lines:\n{}",
                missing.join(", "),
                primary.name,
                tails.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn streaming_standbys(lab: &Lab, state: &LabState) -> Result<Vec<String>> {
    let client = lab
        .conn(state, state.primary().port)?
        .connect(Duration::from_secs(3))
        .await?;
    // With a synchronous mode, a standby counts once its walsender has taken its place in
    // synchronous_standby_names (a priority), so `up` returns with sync states in force.
    let rows = client
        .query(
            "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' \
             AND (current_setting('synchronous_standby_names') = '' OR sync_priority > 0 \
                  OR current_setting('synchronous_standby_names') NOT LIKE '%' || application_name || '%')",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Render the status as a table for a terminal.
pub fn render_table(rows: &[NodeStatus]) -> String {
    let mut out = format!(
        "{:<10} {:>5} {:<8} {:<8} {:<10} {:<6} {:>3} {:<12} {:<12} {:>12} {:>12} {:<10} {}\n",
        "node",
        "port",
        "role",
        "running",
        "state",
        "sync",
        "tl",
        "lsn",
        "replay",
        "lag_bytes",
        "slot_bytes",
        "wal_status",
        "version"
    );
    for r in rows {
        let role = match (r.in_recovery, r.role) {
            (Some(true), _) => "standby",
            (Some(false), _) => "primary",
            (None, Role::Primary) => "primary?",
            (None, Role::Standby) => "standby?",
        };
        let running = match (r.running, r.reachable) {
            (true, true) => "yes",
            (true, false) => "no-answer",
            (false, _) if r.needs_rejoin => "rejoin",
            (false, _) => "down",
        };
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let num = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<10} {:>5} {:<8} {:<8} {:<10} {:<6} {:>3} {:<12} {:<12} {:>12} {:>12} {:<10} {}\n",
            r.name,
            r.port,
            role,
            running,
            opt(&r.state),
            opt(&r.sync_state),
            num(r.timeline),
            opt(&r.current_lsn),
            opt(&r.replay_lsn),
            num(r.lag_bytes),
            num(r.slot_retained_bytes),
            opt(&r.wal_status),
            opt(&r.version),
        ));
    }
    out
}

/// The orchestrator's view under the status table: its states, the timeouts in force, and
/// where applications connect.
pub fn render_orchestrator(v: &super::ha::OrchestratorView) -> String {
    let mut out = format!("\norchestrator: {}", v.kind);
    if let Some(p) = &v.primary {
        out.push_str(&format!(", primary {p}"));
    }
    out.push('\n');
    if let Some(e) = &v.error {
        out.push_str(&format!("  cannot be asked: {e}\n"));
    }
    let (first, second) = match v.kind {
        super::ha::HaKind::PgAutoFailover => ("reported", "assigned"),
        super::ha::HaKind::Patroni => ("role", "state"),
    };
    out.push_str(&format!(
        "  {:<10} {:<18} {:<18} {:<9} {:<6} {:>3} {:<12}\n",
        "node", first, second, "health", "agent", "tl", "lsn"
    ));
    for n in &v.nodes {
        let health = match n.healthy {
            Some(true) => "ok",
            Some(false) => "unhealthy",
            None => "-",
        };
        out.push_str(&format!(
            "  {:<10} {:<18} {:<18} {:<9} {:<6} {:>3} {:<12}\n",
            n.name,
            n.role,
            n.state,
            health,
            if n.agent_running { "yes" } else { "down" },
            n.timeline
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into()),
            n.lsn.as_deref().unwrap_or("-"),
        ));
    }
    if !v.settings.is_empty() {
        let s: Vec<String> = v.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("  settings in force: {}\n", s.join(", ")));
    }
    for c in &v.connect {
        out.push_str(&format!("  applications connect to: {c}\n"));
    }
    out
}

/// The split brain, loudly, under the status table.
pub fn render_split_brain(sb: &SplitBrain) -> String {
    let mut out = format!(
        "\nSPLIT BRAIN: {} nodes accept writes ({}); they forked at {}\n",
        sb.nodes.len(),
        sb.nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        sb.fork_lsn.as_deref().unwrap_or("an unknown position")
    );
    for n in &sb.nodes {
        out.push_str(&format!(
            "  {}: timeline {}, at {}, {} bytes of WAL written since the fork\n",
            n.name,
            n.timeline
                .map(|t| t.to_string())
                .unwrap_or_else(|| "?".into()),
            n.lsn.as_deref().unwrap_or("?"),
            n.wal_since_fork_bytes
                .map(|b| b.to_string())
                .unwrap_or_else(|| "?".into())
        ));
    }
    out.push_str("  keep one: `cluster kill` the other, then `cluster rejoin` (pg_rewind) or `cluster rebuild` it\n");
    out
}

/// True when the node the lab calls primary has a live postmaster.
pub fn primary_running(lab: &Lab, state: &LabState) -> bool {
    node::running_pid(&lab.data_dir(&state.primary().name)).is_some()
}

#[cfg(test)]
mod tests {
    #[test]
    fn history_switch_point() {
        let text = "1\t0/3000060\tno recovery target specified\n\n2\t0/5000000\tno recovery target specified\n";
        assert_eq!(super::parse_history_switch(text), Some(0x500_0000));
        assert_eq!(super::parse_history_switch(""), None);
    }
}
