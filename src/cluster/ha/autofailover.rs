//! The pg_auto_failover lab: a monitor (PostgreSQL with the pgautofailover extension, run by
//! `pg_autoctl run`) and one `pg_autoctl run` per data node, which owns its PostgreSQL.
//!
//! The tool makes each instance itself (initdb with SCRAM, pg_hba with scram-sha-256 over
//! 127.0.0.1 only, unix sockets off) and has `pg_autoctl create` take it over with
//! `--skip-pg-hba`: pg_autoctl would otherwise write `trust` lines. pg_autoctl sets no
//! passwords: the lab sets autoctl_node's (the monitor) and pgautofailover_replicator's (the
//! first node) to its own, and one password file serves every connection. Its config, state
//! and PID files live under the lab (XDG_* directories).

use super::procs::{self, Agent};
use super::OrchestratedNode;
use super::OrchestratorView;
use crate::cluster::osuser::{self, OsUser};
use crate::cluster::serverconf::prepare_orchestrated_datadir;
use crate::cluster::state::LabState;
use crate::cluster::{node, Lab};
use crate::units::format_duration;
use anyhow::{anyhow, Context, Result};
use indexmap::IndexMap;
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

/// pg_autoctl's environment: the lab's, its files under the lab, every local connection over
/// TCP to 127.0.0.1 (the lab has no unix sockets).
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

/// Monitor, then the first node (it becomes `single`, then the primary), then each standby
/// (pg_autoctl base-backs it up from the primary); return once all are in their states.
pub async fn create(lab: &Lab, state: &mut LabState, user: Option<&OsUser>) -> Result<()> {
    let sock = lab.socket_dir();
    if sock.join(".s.PGSQL.65535").as_os_str().len() > 100 {
        return Err(crate::error::usage(format!(
            "the lab directory {} is too deep for a unix socket path (at most about 100 \
             characters): choose a shorter --dir",
            lab.dir.display()
        )));
    }
    for d in [
        "xdg",
        "xdg/config",
        "xdg/data",
        "xdg/run",
        "run",
        "home",
        "sock",
    ] {
        let dir = lab.dir.join(d);
        std::fs::create_dir_all(&dir)?;
        osuser::chown(&dir, user)?;
    }
    use std::os::unix::fs::PermissionsExt;
    for d in ["xdg/run", "sock"] {
        std::fs::set_permissions(lab.dir.join(d), std::fs::Permissions::from_mode(0o700))?;
    }
    let port = state
        .ha
        .as_ref()
        .map(|h| h.service_port)
        .unwrap_or_default();
    let mon = monitor_data(lab);
    crate::cluster::lifecycle::initdb_at(lab, state, user, &mon).await?;
    prepare_orchestrated_datadir(lab, &mon, MONITOR, port)?;
    let p = |s: &str| s.to_string();
    autoctl(
        lab,
        state,
        &[
            p("create"),
            p("monitor"),
            p("--pgdata"),
            mon.display().to_string(),
            p("--pgport"),
            port.to_string(),
            p("--hostname"),
            p("127.0.0.1"),
            p("--skip-pg-hba"),
            p("--no-ssl"),
        ],
        "pg_autoctl create monitor",
        Duration::from_secs(180),
    )
    .await?;
    // The monitor has no --listen: it takes listen_addresses from its configuration, read
    // when it starts.
    autoctl(
        lab,
        state,
        &[
            p("config"),
            p("set"),
            p("--pgdata"),
            mon.display().to_string(),
            p("postgresql.listen_addresses"),
            p("127.0.0.1"),
        ],
        "pg_autoctl config set",
        Duration::from_secs(30),
    )
    .await?;
    start_monitor(lab, state).await?;
    let password = lab.password()?;
    monitor_client(lab, state)
        .await?
        .batch_execute(&format!(
            "ALTER ROLE autoctl_node PASSWORD {}",
            quote_literal(&password)
        ))
        .await
        .context("cannot set the monitor's password")?;
    apply_settings(lab, state).await?;
    let names: Vec<String> = state.nodes.iter().map(|n| n.name.clone()).collect();
    for (i, name) in names.iter().enumerate() {
        let n = state.node(name).expect("a node of the plan").clone();
        let data = lab.data_dir(name);
        if i == 0 {
            crate::cluster::lifecycle::initdb_at(lab, state, user, &data).await?;
            prepare_orchestrated_datadir(lab, &data, name, n.port)?;
        }
        autoctl(
            lab,
            state,
            &[
                p("create"),
                p("postgres"),
                p("--pgdata"),
                data.display().to_string(),
                p("--pgport"),
                n.port.to_string(),
                p("--name"),
                name.clone(),
                p("--hostname"),
                p("127.0.0.1"),
                p("--listen"),
                p("127.0.0.1"),
                p("--pghost"),
                p("127.0.0.1"),
                p("--monitor"),
                monitor_uri(state),
                p("--skip-pg-hba"),
                p("--no-ssl"),
                p("--username"),
                state.user.clone(),
                p("--dbname"),
                state.database.clone(),
            ],
            &format!("pg_autoctl create postgres for {name}"),
            Duration::from_secs(600),
        )
        .await?;
        run_agent(lab, state, name, &data)?;
        if i == 0 {
            set_replicator_password(lab, state, n.port, &password).await?;
        }
    }
    wait_formed(lab, state, Duration::from_secs(120)).await?;
    record_node_ids(lab, state).await?;
    apply_settings(lab, state).await
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

/// The first node made the replication role; it needs the lab's password before a standby
/// can base-backup from it.
async fn set_replicator_password(
    lab: &Lab,
    state: &LabState,
    port: u16,
    password: &str,
) -> Result<()> {
    let log = procs::log_file(lab, &state.nodes[0].name);
    let sql = format!(
        "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgautofailover_replicator') THEN \
         ALTER ROLE pgautofailover_replicator PASSWORD {}; ELSE RAISE 'not yet'; END IF; END $$",
        quote_literal(password)
    );
    procs::wait_until(
        "the first node did not become the primary",
        &log,
        Duration::from_secs(90),
        || async {
            match lab.conn(state, port) {
                Ok(spec) => match spec.connect(Duration::from_secs(2)).await {
                    Ok(c) => c.batch_execute(&sql).await.is_ok(),
                    Err(_) => false,
                },
                Err(_) => false,
            }
        },
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
        let v = view(lab, state).await;
        let seen: Vec<String> = v
            .nodes
            .iter()
            .map(|n| format!("{} {} -> {}", n.name, n.role, n.state))
            .collect();
        return result.with_context(|| format!("the monitor sees: {}", seen.join("; ")));
    }
    Ok(())
}

/// pg_auto_failover names each standby's slot and application_name after its node id.
async fn record_node_ids(lab: &Lab, state: &mut LabState) -> Result<()> {
    let client = monitor_client(lab, state).await?;
    let rows = client
        .query("SELECT nodename, nodeid FROM pgautofailover.node", &[])
        .await?;
    for r in rows {
        let name: String = r.get(0);
        let id: i64 = r.get(1);
        if let Some(n) = state.node_mut(&name) {
            n.repl_name = Some(format!("pgautofailover_standby_{id}"));
        }
    }
    lab.save(state)
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
    procs::kill_group(lab, name, "pg_autoctl");
    // The postmaster is in the agent's process group; a second look for one that was not.
    if let Some(pid) = node::running_pid(&lab.data_dir(name)) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    Ok(())
}

/// What the monitor says of each node, and the settings in force.
pub async fn view(lab: &Lab, state: &LabState) -> OrchestratorView {
    let mut v = OrchestratorView {
        kind: super::HaKind::PgAutoFailover,
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
            agent_running: agent_running(lab, &name),
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
