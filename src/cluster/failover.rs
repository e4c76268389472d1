//! `cluster kill`, `promote` and `rejoin`: the failover drill's moves.

use super::node::{self, StopMode};
use super::osuser;
use super::serverconf::{apply_primary_conf, write_node_conf};
use super::state::{LabState, Role};
use super::{require_node, status, Lab};
use crate::error::usage;
use crate::link::protocol::Request;
use anyhow::{Context, Result};
use std::time::Duration;

/// Stop a node at once, as a crash would (`pg_ctl stop -m immediate`).
/// In an orchestrated lab the whole node dies: its agent and its PostgreSQL, so that nothing
/// restarts it in place.
pub async fn kill(lab: &Lab, name: &str) -> Result<()> {
    let state = lab.state()?;
    require_node(&state, name)?;
    if state.ha.is_some() {
        return super::ha::kill_node(lab, &state, name).await;
    }
    node::stop(lab, &state, name, StopMode::Immediate).await
}

/// The tool's own moves (promote, rejoin, rebuild, a sync mode) are the orchestrator's in an
/// orchestrated lab: refused, saying what to do instead.
fn refuse_orchestrated(state: &LabState, what: &str, instead: &str) -> Result<()> {
    match &state.ha {
        Some(ha) => Err(usage(format!(
            "the lab is run by {}: it decides {what}; {instead}",
            ha.kind
        ))),
        None => Ok(()),
    }
}

/// Promote a standby: `pg_ctl promote`, re-point the links (and so the other standbys) at it,
/// give them slots on it, and drop standbys that are gone from its synchronous_standby_names.
/// With `wait`, return once the other standbys stream from it; without, as soon as it takes
/// writes (a drill measures the two apart).
pub async fn promote(lab: &Lab, name: &str, force: bool, wait: bool) -> Result<LabState> {
    let mut state = lab.state()?;
    refuse_orchestrated(
        &state,
        "promotions",
        &format!("`cluster switchover {name}` asks it for one, `cluster kill` the primary to see it fail over"),
    )?;
    let target = require_node(&state, name)?.clone();
    if target.role != Role::Standby {
        return Err(usage(format!(
            "{name} is not a standby: nothing to promote"
        )));
    }
    if node::running_pid(&lab.data_dir(&target.name)).is_none() {
        return Err(usage(format!(
            "{name} is not running: start it with `cluster up`"
        )));
    }
    let old = state.primary().clone();
    let old_running = node::running_pid(&lab.data_dir(&old.name)).is_some();
    if old_running && !force {
        return Err(usage(format!(
            "the primary ({}) is still running: promoting now makes two primaries; \
             `cluster kill {}` first, or pass --force",
            old.name, old.name
        )));
    }
    let user = node::os_user(&state)?;
    let mut cmd = osuser::command(&state.bindir.join("pg_ctl"), user.as_ref());
    cmd.args(["promote", "-w", "-t", "60", "-D"])
        .arg(lab.data_dir(name));
    osuser::run(
        &mut cmd,
        &format!("promoting {name}"),
        Duration::from_secs(90),
    )
    .await?;

    for n in state.nodes.iter_mut() {
        if n.name == name {
            n.role = Role::Primary;
        } else if n.name == old.name {
            n.role = Role::Standby;
            n.needs_rejoin = true;
        }
    }
    lab.save(&state)?;
    apply_primary_conf(lab, &state).await?;
    create_slots(lab, &state).await?;
    lab.links()
        .send(&Request::Upstream { port: target.port })
        .await?;
    if old_running {
        // A forced promotion: the standbys may have received the old primary's WAL past the
        // fork and cannot follow; that is part of the split brain the drill asked for.
        if let Err(e) = status::wait_streaming(lab, &state, Duration::from_secs(5)).await {
            crate::errln!(
                "warning: split brain: {} still runs as a primary; {e:#}",
                old.name
            );
        }
    } else if wait {
        status::wait_streaming(lab, &state, Duration::from_secs(60)).await?;
    }
    Ok(state)
}

/// Wait until every standby that should run streams from the primary (after a promotion).
pub async fn wait_following(lab: &Lab) -> Result<()> {
    let state = lab.state()?;
    status::wait_streaming(lab, &state, Duration::from_secs(60)).await
}

/// A physical slot on the primary for every standby that streams (kept if it exists).
async fn create_slots(lab: &Lab, state: &LabState) -> Result<()> {
    let primary = state.primary();
    let client = lab
        .conn(state, primary.port)?
        .connect(Duration::from_secs(10))
        .await?;
    for n in state.standbys().filter(|n| !n.needs_rejoin) {
        client
            .execute(
                "SELECT pg_create_physical_replication_slot($1, true) \
                 WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
                &[&n.name],
            )
            .await
            .with_context(|| format!("cannot create the slot {} on {}", n.name, primary.name))?;
    }
    Ok(())
}

/// Bring a stopped node back as a standby of the current primary, rewinding it with pg_rewind.
pub async fn rejoin(lab: &Lab, name: &str) -> Result<LabState> {
    let mut state = lab.state()?;
    let target = require_node(&state, name)?.clone();
    refuse_orchestrated(
        &state,
        "how a former primary rejoins",
        &format!("`cluster start {name}` starts its agent and the orchestrator rewinds it"),
    )?;
    let primary = state.primary().clone();
    if primary.name == name {
        return Err(usage(format!(
            "{name} is the primary: promote a standby before rejoining {name}"
        )));
    }
    if node::running_pid(&lab.data_dir(&primary.name)).is_none() {
        return Err(usage(format!(
            "the primary ({}) is not running: nothing to rejoin",
            primary.name
        )));
    }
    node::stop(lab, &state, name, StopMode::Fast).await?;
    // pg_rewind reads the source's timeline from its control file, which a promotion updates
    // only at its end-of-recovery checkpoint: without this it may see "the same timeline".
    let client = lab
        .conn(&state, primary.port)?
        .connect(Duration::from_secs(10))
        .await?;
    client.simple_query("CHECKPOINT").await?;
    // A standby.signal left by an earlier attempt would stop pg_rewind's crash recovery
    // (single-user mode does not do standby mode).
    let _ = std::fs::remove_file(lab.data_dir(name).join("standby.signal"));
    let user = node::os_user(&state)?;
    let source = format!(
        "host=127.0.0.1 port={} user={} dbname={} passfile={}",
        primary.port,
        state.user,
        state.database,
        lab.pgpass_file().display()
    );
    let mut cmd = osuser::command(&state.bindir.join("pg_rewind"), user.as_ref());
    cmd.arg("-D")
        .arg(lab.data_dir(name))
        .arg(format!("--source-server={source}"));
    let output = osuser::run(
        &mut cmd,
        &format!("pg_rewind of {name}"),
        Duration::from_secs(600),
    )
    .await?;
    for line in output.lines().filter(|l| l.starts_with("pg_rewind:")) {
        crate::errln!("info: {line}");
    }

    let n = state.node_mut(name).expect("checked above");
    n.role = Role::Standby;
    n.needs_rejoin = false;
    lab.save(&state)?;
    let node_state = state.node(name).expect("checked above").clone();
    write_node_conf(lab, &state, &node_state)?;
    create_slots(lab, &state).await?;
    node::start(lab, &state, &target.name).await?;
    apply_primary_conf(lab, &state).await?;
    status::wait_streaming(lab, &state, Duration::from_secs(60)).await?;
    Ok(state)
}

/// Start a node that was stopped. A former primary that was not rejoined comes up as a
/// second primary (split brain): refused unless `force` (a drill that wants one).
pub async fn start_node(lab: &Lab, name: &str, force: bool) -> Result<()> {
    let state = lab.state()?;
    let n = require_node(&state, name)?;
    if state.ha.is_some() {
        // The orchestrator decides what a node that comes back becomes (a former primary
        // is rewound and rejoins as a standby).
        return super::ha::start_node(lab, &state, name).await;
    }
    if n.needs_rejoin && !force {
        return Err(usage(format!(
            "{name} was the primary before a promotion: started as it is, it would be a second \
             primary (split brain). `cluster rejoin {name}` makes it a standby; --force starts it anyway"
        )));
    }
    if node::running_pid(&lab.data_dir(name)).is_none() {
        node::start(lab, &state, name).await?;
        if n.role == Role::Standby && !n.needs_rejoin && state.primary().name != name {
            apply_primary_conf(lab, &state).await?;
        }
    }
    Ok(())
}

/// Stop a node cleanly (fast shutdown), and take a standby out of the primary's
/// synchronous_standby_names meanwhile, so commits never wait for it.
pub async fn stop_node(lab: &Lab, name: &str) -> Result<()> {
    let state = lab.state()?;
    require_node(&state, name)?;
    if state.ha.is_some() {
        return super::ha::stop_node(lab, &state, name).await;
    }
    node::stop(lab, &state, name, StopMode::Fast).await?;
    if state.primary().name != name {
        apply_primary_conf(lab, &state).await?;
    }
    Ok(())
}

/// Restart a running node of the lab (a setting that needs a restart). A standby first
/// replays the primary's current position: a standby that has replayed the primary's change
/// of a setting such as max_connections refuses to start with less until it has also replayed
/// the change back.
pub async fn restart_node(lab: &Lab, name: &str) -> Result<()> {
    let state = lab.state()?;
    require_node(&state, name)?;
    refuse_orchestrated(
        &state,
        "when its nodes restart",
        "set a setting that needs a restart before `cluster up --ha`, or restart through the orchestrator",
    )?;
    if state.primary().name != name {
        status::wait_replayed(lab, &state, Duration::from_secs(30)).await?;
    }
    node::restart(lab, &state, name).await
}

/// Replace a node's data with a fresh base backup of the current primary and a new slot, and
/// start it as a standby: for a standby whose slot was lost (the WAL it needs is gone), or a
/// former primary that pg_rewind cannot bring back.
pub async fn rebuild(lab: &Lab, name: &str) -> Result<LabState> {
    let mut state = lab.state()?;
    require_node(&state, name)?;
    refuse_orchestrated(
        &state,
        "how a node is rebuilt",
        &format!("`cluster kill {name}` and `cluster start {name}` let it rejoin"),
    )?;
    let primary = state.primary().clone();
    if primary.name == name {
        return Err(usage(format!(
            "{name} is the primary: promote a standby before rebuilding {name}"
        )));
    }
    if node::running_pid(&lab.data_dir(&primary.name)).is_none() {
        return Err(usage(format!(
            "the primary ({}) is not running: nothing to copy from",
            primary.name
        )));
    }
    node::stop(lab, &state, name, StopMode::Fast).await?;
    drop_slot(lab, &state, name).await?;
    let data = lab.data_dir(name);
    if data.exists() {
        std::fs::remove_dir_all(&data).with_context(|| {
            format!("cannot remove the old data of {name} ({})", data.display())
        })?;
    }
    let n = state.node_mut(name).expect("checked above");
    n.role = Role::Standby;
    n.needs_rejoin = false;
    lab.save(&state)?;
    let node_state = state.node(name).expect("checked above").clone();
    let user = node::os_user(&state)?;
    super::lifecycle::base_backup(lab, &state, &node_state, user.as_ref()).await?;
    node::start(lab, &state, name).await?;
    apply_primary_conf(lab, &state).await?;
    status::wait_streaming(lab, &state, Duration::from_secs(60)).await?;
    Ok(state)
}

/// Drop a node's slot on the primary (retried while its walsender is still exiting).
async fn drop_slot(lab: &Lab, state: &LabState, slot: &str) -> Result<()> {
    let client = lab
        .conn(state, state.primary().port)?
        .connect(Duration::from_secs(10))
        .await?;
    for attempt in 0..50 {
        let r = client
            .execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE slot_name = $1",
                &[&slot],
            )
            .await;
        match r {
            Ok(_) => return Ok(()),
            Err(e) if attempt < 49 && e.code().map(|c| c.code()) == Some("55006") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot drop the slot {slot}")),
        }
    }
    Ok(())
}

/// Change the sync mode of a running lab (reload, no restart).
pub async fn set_sync(lab: &Lab, sync: super::SyncMode) -> Result<()> {
    let mut state = lab.state()?;
    refuse_orchestrated(
        &state,
        "synchronous_standby_names",
        "set its own setting with `cluster up --ha-setting` (number_sync_standbys, synchronous_mode)",
    )?;
    state.sync = sync;
    lab.save(&state)?;
    apply_primary_conf(lab, &state).await
}

/// The running standby that has received the most WAL: the one to promote.
pub async fn most_advanced_standby(lab: &Lab) -> Result<String> {
    let state = lab.state()?;
    let rows = status::collect(lab, &state).await?;
    rows.iter()
        .filter(|r| r.role == Role::Standby && r.reachable && !r.needs_rejoin)
        // The receive position goes back to a segment's start when the walreceiver restarts;
        // the replay position never goes back: the furthest of the two.
        // On a tie, the first in node order (standby1 before standby2).
        .max_by_key(|r| {
            let lsn = |v: &Option<String>| v.as_deref().and_then(crate::pg::parse_lsn).unwrap_or(0);
            (
                lsn(&r.receive_lsn).max(lsn(&r.replay_lsn)),
                std::cmp::Reverse(r.name.clone()),
            )
        })
        .map(|r| r.name.clone())
        .ok_or_else(|| anyhow::anyhow!("no running standby to promote"))
}

/// A planned switchover, asked of the orchestrator of an orchestrated lab: the new primary.
pub async fn switchover(lab: &Lab, target: Option<&str>) -> Result<String> {
    let mut state = lab.state()?;
    let Some(kind) = state.ha.as_ref().map(|h| h.kind) else {
        return Err(usage(
            "a switchover is asked of an orchestrator: this lab has none (`cluster up --ha \
             pg_auto_failover|patroni`); here `cluster promote` does the tool's own",
        ));
    };
    if let Some(t) = target {
        require_node(&state, t)?;
        super::ha::refresh_roles(lab, &mut state).await?;
        if state.primary().name == t {
            return Err(usage(format!("{t} is the primary already")));
        }
    }
    let primary = super::ha::switchover(lab, &state, target)
        .await
        .map_err(|e| e.context(format!("{kind} did not switch over")))?;
    super::ha::refresh_roles(lab, &mut state).await?;
    Ok(primary)
}
