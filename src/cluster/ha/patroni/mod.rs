//! The Patroni lab: etcd, one Patroni per node (it runs initdb, pg_basebackup, promotion,
//! pg_rewind), and HAProxy in front with a write port (/primary) and a read port (/replica).
//!
//! Each Patroni gets its configuration as JSON (which YAML reads) in a 0600 file under the
//! lab: SCRAM for every role with the lab's password, pg_hba with scram-sha-256 only (unix
//! socket in the lab's `sock` directory, 127.0.0.1), its REST API on 127.0.0.1 with basic
//! credentials for anything that changes state. Patroni starts with a clean environment and
//! TZ=UTC, so the times in its log are the tool's clock.

mod api;

pub use api::{apply_settings, promotion_began, rejoined, switchover, view, why_not, writer};

use super::procs::{self, Agent};
use super::{etcd, haproxy};
use crate::cluster::osuser::{self, OsUser};
use crate::cluster::serverconf::common_settings;
use crate::cluster::state::LabState;
use crate::cluster::{node, Lab};
use crate::pg::Endpoint;
use anyhow::{anyhow, Context, Result};
use api::streaming_from;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// The REST API's user for requests that change state (POST /switchover, PATCH /config).
const REST_USER: &str = "pgbench-repl";

/// Settings Patroni keeps in etcd for the whole cluster, and the defaults it applies.
const DCS_DEFAULTS: &[(&str, &str)] = &[
    ("ttl", "30"),
    ("loop_wait", "10"),
    ("retry_timeout", "10"),
    ("maximum_lag_on_failover", "1048576"),
    ("synchronous_mode", "false"),
];

/// Server settings that must be the same on every node: Patroni keeps them in etcd.
const CLUSTER_WIDE: &[&str] = &[
    "max_connections",
    "max_wal_senders",
    "max_replication_slots",
    "wal_level",
    "wal_keep_size",
    "hot_standby",
];

fn config_dir(lab: &Lab) -> PathBuf {
    lab.dir.join("patroni")
}

fn config_file(lab: &Lab, name: &str) -> PathBuf {
    config_dir(lab).join(format!("{name}.yml"))
}

fn rest_port(state: &LabState, name: &str) -> u16 {
    let base = state
        .ha
        .as_ref()
        .and_then(|h| h.rest_port_base)
        .unwrap_or_default();
    let i = state.nodes.iter().position(|n| n.name == name).unwrap_or(0);
    base + i as u16
}

fn rest_ports(state: &LabState) -> Vec<(String, u16)> {
    state
        .nodes
        .iter()
        .map(|n| (n.name.clone(), rest_port(state, &n.name)))
        .collect()
}

/// A setting from `--ha-setting` as Patroni's JSON takes it.
fn dcs_value(native: &str) -> Value {
    match native {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        n => n
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(n.to_string())),
    }
}

/// The lab's `--ha-setting`s for Patroni's DCS configuration.
fn dcs_settings(state: &LabState) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    if let Some(ha) = &state.ha {
        for (name, shown) in &ha.settings {
            if let Some(native) = super::settings::native(ha.kind, name, shown) {
                out.insert(name.clone(), dcs_value(&native));
            }
        }
    }
    out
}

/// One node's Patroni configuration.
fn node_config(lab: &Lab, state: &LabState, name: &str, password: &str) -> Value {
    let n = state.node(name).expect("a node of the lab");
    let (mut local, mut shared) = (serde_json::Map::new(), serde_json::Map::new());
    for (k, v) in common_settings() {
        if matches!(k.as_str(), "listen_addresses" | "unix_socket_directories") {
            continue;
        }
        let target = if CLUSTER_WIDE.contains(&k.as_str()) {
            &mut shared
        } else {
            &mut local
        };
        target.insert(k, Value::String(v));
    }
    shared.insert("wal_log_hints".into(), json!("on"));
    local.insert(
        "unix_socket_directories".into(),
        json!(lab.socket_dir().display().to_string()),
    );
    local.insert("password_encryption".into(), json!("scram-sha-256"));
    let mut dcs = dcs_settings(state);
    dcs.insert(
        "postgresql".into(),
        json!({"use_pg_rewind": true, "use_slots": true, "parameters": shared}),
    );
    let rest = rest_port(state, name);
    let etcd = state
        .ha
        .as_ref()
        .map(|h| h.service_port)
        .unwrap_or_default();
    json!({
        "scope": "pgbench-repl",
        "namespace": "/service/",
        "name": name,
        "log": {"level": "INFO"},
        "restapi": {
            "listen": format!("127.0.0.1:{rest}"),
            "connect_address": format!("127.0.0.1:{rest}"),
            "authentication": {"username": REST_USER, "password": password},
        },
        "etcd3": {"hosts": format!("127.0.0.1:{etcd}")},
        "bootstrap": {
            "dcs": dcs,
            "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "data-checksums",
                       {"auth-host": "scram-sha-256"}, {"auth-local": "scram-sha-256"}],
        },
        "postgresql": {
            "listen": format!("127.0.0.1:{}", n.port),
            "connect_address": format!("127.0.0.1:{}", n.port),
            "data_dir": lab.data_dir(name).display().to_string(),
            "bin_dir": state.bindir.display().to_string(),
            "pgpass": config_dir(lab).join(format!("{name}.pgpass")).display().to_string(),
            "authentication": {
                "superuser": {"username": state.user, "password": password},
                "replication": {"username": "replicator", "password": password},
                "rewind": {"username": "rewinder", "password": password},
            },
            "parameters": local,
            "pg_hba": [
                "local all all scram-sha-256",
                "local replication all scram-sha-256",
                "host replication replicator 127.0.0.1/32 scram-sha-256",
                "host all all 127.0.0.1/32 scram-sha-256",
            ],
        },
    })
}

fn write_config(lab: &Lab, state: &LabState, name: &str, user: Option<&OsUser>) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let password = lab.password()?;
    let text = serde_json::to_string_pretty(&node_config(lab, state, name, &password))?;
    let path = config_file(lab, name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    osuser::chown(&path, user)
}

fn run_agent(lab: &Lab, state: &LabState, name: &str) -> Result<()> {
    let user = node::os_user(state)?;
    let program = super::which("patroni").unwrap_or_else(|| "patroni".into());
    let mut env = procs::base_env(lab, &state.bindir);
    env.push(("TZ".into(), "UTC".into()));
    procs::spawn(
        lab,
        user.as_ref(),
        &Agent {
            name,
            program: &program,
            args: vec![config_file(lab, name).display().to_string()],
            env,
        },
    )?;
    Ok(())
}

/// etcd, then the first node alone (it bootstraps and takes the leader key), then the
/// others (each a base backup of the leader), then HAProxy.
pub async fn create(lab: &Lab, state: &mut LabState, user: Option<&OsUser>) -> Result<()> {
    crate::cluster::ha::make_dirs(lab, user, &["run", "home"], &["sock", "patroni"])?;
    for n in &state.nodes {
        write_config(lab, state, &n.name, user)?;
    }
    etcd::start(lab, state).await?;
    let first = state.nodes[0].name.clone();
    run_agent(lab, state, &first)?;
    let log = procs::log_file(lab, &first);
    procs::wait_until(
        "the first Patroni node did not become the leader",
        &log,
        Duration::from_secs(120),
        || async { writer(lab, state).await.as_deref() == Some(first.as_str()) },
    )
    .await?;
    for n in &state.nodes[1..] {
        run_agent(lab, state, &n.name)?;
    }
    haproxy::start(lab, state).await?;
    wait_formed(lab, state, Duration::from_secs(180)).await
}

/// A leader that takes writes, and every node whose Patroni runs streaming from it.
async fn wait_formed(lab: &Lab, state: &LabState, limit: Duration) -> Result<()> {
    let log = procs::log_file(lab, "etcd");
    let want: Vec<String> = state
        .nodes
        .iter()
        .filter(|n| agent_running(lab, &n.name))
        .map(|n| n.name.clone())
        .collect();
    let result = procs::wait_until(
        "the Patroni cluster did not settle",
        &log,
        limit,
        || async {
            let Some(leader) = writer(lab, state).await else {
                return false;
            };
            let streaming = streaming_from(state, &leader).await;
            want.iter().all(|w| *w == leader || streaming.contains(w))
        },
    )
    .await;
    if result.is_err() {
        let seen = view(lab, state).await.seen();
        return result.with_context(|| seen);
    }
    Ok(())
}

pub async fn start_all(lab: &Lab, state: &mut LabState) -> Result<()> {
    etcd::start(lab, state).await?;
    let mut order: Vec<String> = state.nodes.iter().map(|n| n.name.clone()).collect();
    order.sort_by_key(|n| *n != state.primary().name);
    for name in order {
        start_node(lab, state, &name).await?;
    }
    haproxy::start(lab, state).await?;
    wait_formed(lab, state, Duration::from_secs(120)).await?;
    apply_settings(lab, state).await
}

pub async fn stop_all(lab: &Lab, state: &LabState) -> Result<()> {
    let mut failures = Vec::new();
    if let Err(e) = haproxy::stop(lab).await {
        failures.push(format!("haproxy: {e:#}"));
    }
    for n in &state.nodes {
        if let Err(e) = stop_node(lab, state, &n.name).await {
            failures.push(format!("{}: {e:#}", n.name));
        }
    }
    if let Err(e) = etcd::stop(lab).await {
        failures.push(format!("etcd: {e:#}"));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(
            "some processes did not stop:\n{}",
            failures.join("\n")
        ))
    }
}

pub fn agent_running(lab: &Lab, name: &str) -> bool {
    procs::running(lab, name, "patroni").is_some()
}

pub async fn start_node(lab: &Lab, state: &LabState, name: &str) -> Result<()> {
    if !agent_running(lab, name) {
        let user = node::os_user(state)?;
        write_config(lab, state, name, user.as_ref())?;
        run_agent(lab, state, name)?;
    }
    Ok(())
}

/// SIGTERM to Patroni: it stops its PostgreSQL and releases the leader key.
pub async fn stop_node(lab: &Lab, _state: &LabState, name: &str) -> Result<()> {
    procs::stop(
        lab,
        name,
        "patroni",
        nix::sys::signal::Signal::SIGTERM,
        Duration::from_secs(90),
    )
    .await?;
    if let Some(pid) = node::running_pid(&lab.data_dir(name)) {
        kill_postmaster(pid);
    }
    Ok(())
}

/// The postmaster is not Patroni's child (it runs in a session of its own): both die.
pub async fn kill_node(lab: &Lab, _state: &LabState, name: &str) -> Result<()> {
    procs::kill_group(lab, name, "patroni").await;
    if let Some(pid) = node::running_pid(&lab.data_dir(name)) {
        kill_postmaster(pid);
        procs::wait_group_gone(pid, Duration::from_secs(10)).await;
    }
    Ok(())
}

/// SIGKILL a postmaster and its backends (its process group when it leads one).
fn kill_postmaster(pid: i32) {
    use nix::sys::signal::{kill, killpg, Signal};
    use nix::unistd::{getpgid, Pid};
    let p = Pid::from_raw(pid);
    if getpgid(Some(p)).ok() == Some(p) {
        let _ = killpg(p, Signal::SIGKILL);
    } else {
        let _ = kill(p, Signal::SIGKILL);
    }
}

/// The writes go to HAProxy's write port, the reads to its read port.
pub fn access(lab: &Lab, state: &LabState) -> Result<(Option<Endpoint>, Option<Endpoint>)> {
    let ha = state
        .ha
        .as_ref()
        .ok_or_else(|| anyhow!("not a Patroni lab"))?;
    let endpoint = |name: &str, port: Option<u16>| -> Result<Option<Endpoint>> {
        Ok(match port {
            Some(p) => Some(Endpoint {
                name: name.into(),
                config: lab.conn(state, p)?.config(Duration::from_secs(2)),
            }),
            None => None,
        })
    };
    Ok((
        endpoint("HAProxy writes", ha.write_port)?,
        endpoint("HAProxy reads", ha.read_port)?,
    ))
}
