//! The pg_auto_failover lab: a monitor (PostgreSQL with the pgautofailover extension, run by
//! `pg_autoctl run`) and one `pg_autoctl run` per data node, which owns its PostgreSQL.
//!
//! The tool makes each instance itself (initdb with SCRAM, pg_hba with scram-sha-256 over
//! 127.0.0.1 only, unix sockets off) and has `pg_autoctl create` take it over with
//! `--skip-pg-hba`: pg_autoctl would otherwise write `trust` lines. pg_autoctl sets no
//! passwords: the lab sets autoctl_node's (the monitor) and pgautofailover_replicator's (the
//! first node) to its own, and one password file serves every connection. Its config, state
//! and PID files live under the lab (XDG_* directories).

mod create;
mod monitor;

pub use create::create;

pub use monitor::{failover_began, switchover, view, why_not, write_endpoint};

use super::procs::{self, Agent};
use crate::cluster::osuser;
use crate::cluster::state::LabState;
use crate::cluster::{node, Lab};
use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_postgres::Client;

/// The monitor's data directory and agent name.
const MONITOR: &str = "monitor";
/// The monitor's database.
const MONITOR_DB: &str = "pg_auto_failover";

/// The extension's control file is missing for the server's major: its number.
pub fn extension_missing(bindir: &Path) -> Option<u32> {
    let version = crate::cluster::binaries::server_version(bindir).ok()?;
    let major = crate::cluster::binaries::major_of(&version)?;
    let share = std::process::Command::new(bindir.join("pg_config"))
        .arg("--sharedir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|| PathBuf::from(format!("/usr/share/postgresql/{major}")));
    (!share.join("extension/pgautofailover.control").is_file()).then_some(major)
}

fn pg_autoctl() -> PathBuf {
    super::which("pg_autoctl").unwrap_or_else(|| PathBuf::from("pg_autoctl"))
}

/// pg_autoctl's environment: the lab's, its files under the lab, its own connections over TCP
/// to 127.0.0.1.
fn env(lab: &Lab, state: &LabState) -> Vec<(String, String)> {
    let xdg = lab.dir.join("xdg");
    let mut env = procs::base_env(lab, &state.bindir);
    env.extend([
        (
            "XDG_CONFIG_HOME".into(),
            xdg.join("config").display().to_string(),
        ),
        (
            "XDG_DATA_HOME".into(),
            xdg.join("data").display().to_string(),
        ),
        (
            "XDG_RUNTIME_DIR".into(),
            xdg.join("run").display().to_string(),
        ),
        ("PGHOST".into(), "127.0.0.1".into()),
    ]);
    env
}

fn monitor_data(lab: &Lab) -> PathBuf {
    lab.dir.join("data").join(MONITOR)
}

fn monitor_uri(state: &LabState) -> String {
    format!(
        "postgres://autoctl_node@127.0.0.1:{}/{MONITOR_DB}?sslmode=disable",
        state
            .ha
            .as_ref()
            .map(|h| h.service_port)
            .unwrap_or_default()
    )
}

/// Run a `pg_autoctl` subcommand to completion, as the lab's OS user.
async fn autoctl(
    lab: &Lab,
    state: &LabState,
    args: &[String],
    what: &str,
    limit: Duration,
) -> Result<String> {
    let user = node::os_user(state)?;
    let mut cmd = osuser::command(&pg_autoctl(), user.as_ref());
    cmd.args(args)
        .env_clear()
        .envs(env(lab, state))
        .current_dir(&lab.dir);
    osuser::run(&mut cmd, what, limit).await
}

fn run_agent(lab: &Lab, state: &LabState, name: &str, data: &Path) -> Result<()> {
    let user = node::os_user(state)?;
    let program = pg_autoctl();
    procs::spawn(
        lab,
        user.as_ref(),
        &Agent {
            name,
            program: &program,
            args: vec!["run".into(), "--pgdata".into(), data.display().to_string()],
            env: env(lab, state),
        },
    )?;
    Ok(())
}

/// The monitor as the lab's superuser (the same password as every role of the lab).
async fn monitor_client(lab: &Lab, state: &LabState) -> Result<Client> {
    let port = state
        .ha
        .as_ref()
        .map(|h| h.service_port)
        .unwrap_or_default();
    let mut spec = lab.conn(state, port)?;
    spec.dbname = MONITOR_DB.into();
    spec.connect(Duration::from_secs(3)).await
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn start_monitor(lab: &Lab, state: &LabState) -> Result<()> {
    if procs::running(lab, MONITOR, "pg_autoctl").is_none() {
        run_agent(lab, state, MONITOR, &monitor_data(lab))?;
    }
    let log = procs::log_file(lab, MONITOR);
    procs::wait_until(
        "the pg_auto_failover monitor does not answer",
        &log,
        Duration::from_secs(60),
        || async { monitor_client(lab, state).await.is_ok() },
    )
    .await
}

/// Every data node's agent runs and the monitor has one primary and the rest secondaries.
async fn wait_formed(lab: &Lab, state: &LabState, limit: Duration) -> Result<()> {
    let log = procs::log_file(lab, MONITOR);
    let want = state
        .nodes
        .iter()
        .filter(|n| agent_running(lab, &n.name))
        .count();
    let result = procs::wait_until(
        "the pg_auto_failover formation did not settle",
        &log,
        limit,
        || async {
            let v = view(lab, state).await;
            let settled = v
                .nodes
                .iter()
                .filter(|n| {
                    n.agent_running
                        && n.role == n.state
                        && matches!(n.role.as_str(), "primary" | "secondary" | "single")
                })
                .filter(|n| node::running_pid(&lab.data_dir(&n.name)).is_some())
                .count();
            v.primary.is_some() && settled >= want
        },
    )
    .await;
    if result.is_err() {
        let seen = view(lab, state).await.seen();
        return result.with_context(|| seen);
    }
    Ok(())
}

/// The monitor's settings are GUCs (`pgautofailover.*`, reloadable); number_sync_standbys is
/// the formation's.
pub async fn apply_settings(lab: &Lab, state: &LabState) -> Result<()> {
    let Some(ha) = state.ha.as_ref() else {
        return Ok(());
    };
    let client = monitor_client(lab, state).await?;
    let mut reload = false;
    for (name, shown) in &ha.settings {
        let value = super::settings::native(ha.kind, name, shown)
            .ok_or_else(|| anyhow!("the lab's setting {name} = {shown} is damaged"))?;
        if name == "number_sync_standbys" {
            let nodes = client
                .query_one("SELECT count(*) FROM pgautofailover.node", &[])
                .await?
                .get::<_, i64>(0);
            if nodes < 2 {
                continue; // set once the standbys have joined
            }
            client
                .query(
                    "SELECT pgautofailover.set_formation_number_sync_standbys('default', $1::int)",
                    &[&value.parse::<i32>()?],
                )
                .await
                .with_context(|| {
                    format!("pg_auto_failover refused number_sync_standbys = {value}")
                })?;
            continue;
        }
        client
            .batch_execute(&format!(
                "ALTER SYSTEM SET pgautofailover.{name} = {}",
                quote_literal(&value)
            ))
            .await
            .with_context(|| format!("pg_auto_failover refused {name} = {shown}"))?;
        reload = true;
    }
    if reload {
        client.batch_execute("SELECT pg_reload_conf()").await?;
    }
    Ok(())
}

pub async fn start_all(lab: &Lab, state: &mut LabState) -> Result<()> {
    start_monitor(lab, state).await?;
    apply_settings(lab, state).await?;
    // The last primary first, so the monitor finds it where it left it.
    let mut order: Vec<String> = state.nodes.iter().map(|n| n.name.clone()).collect();
    order.sort_by_key(|n| *n != state.primary().name);
    for name in order {
        start_node(lab, state, &name).await?;
    }
    wait_formed(lab, state, Duration::from_secs(120)).await
}

pub async fn stop_all(lab: &Lab, state: &LabState) -> Result<()> {
    let mut failures = Vec::new();
    for n in &state.nodes {
        if let Err(e) = stop_node(lab, state, &n.name).await {
            failures.push(format!("{}: {e:#}", n.name));
        }
    }
    if let Err(e) = stop_agent(lab, state, MONITOR, &monitor_data(lab)).await {
        failures.push(format!("monitor: {e:#}"));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("some nodes did not stop:\n{}", failures.join("\n")))
    }
}

pub fn agent_running(lab: &Lab, name: &str) -> bool {
    procs::running(lab, name, "pg_autoctl").is_some()
}

pub async fn start_node(lab: &Lab, state: &LabState, name: &str) -> Result<()> {
    if !agent_running(lab, name) {
        run_agent(lab, state, name, &lab.data_dir(name))?;
    }
    Ok(())
}

pub async fn stop_node(lab: &Lab, state: &LabState, name: &str) -> Result<()> {
    stop_agent(lab, state, name, &lab.data_dir(name)).await
}

/// `pg_autoctl stop` (it stops its PostgreSQL), then wait for the agent; a hung one is killed.
async fn stop_agent(lab: &Lab, state: &LabState, name: &str, data: &Path) -> Result<()> {
    if agent_running(lab, name) {
        let _ = autoctl(
            lab,
            state,
            &["stop".into(), "--pgdata".into(), data.display().to_string()],
            &format!("pg_autoctl stop for {name}"),
            Duration::from_secs(30),
        )
        .await;
    }
    procs::stop(
        lab,
        name,
        "pg_autoctl",
        nix::sys::signal::Signal::SIGTERM,
        Duration::from_secs(60),
    )
    .await?;
    if let Some(pid) = node::running_pid(data) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    Ok(())
}

pub async fn kill_node(lab: &Lab, _state: &LabState, name: &str) -> Result<()> {
    procs::kill_group(lab, name, "pg_autoctl").await;
    // The postmaster is in the agent's process group; a second look for one that was not.
    if let Some(pid) = node::running_pid(&lab.data_dir(name)) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        procs::wait_group_gone(pid, Duration::from_secs(10)).await;
    }
    Ok(())
}
