//! Orchestrated labs (DESIGN section 15): the same nodes, run by pg_auto_failover (a monitor
//! and one `pg_autoctl` per node) or by Patroni (etcd, one Patroni per node, HAProxy in
//! front). The orchestrator owns the nodes' roles: it promotes, demotes and rejoins; the tool
//! starts and kills whole nodes, asks for switchovers, and reads what the orchestrator saw.
//! Each stack is a file of its own behind the functions here.

mod autofailover;
mod etcd;
mod haproxy;
mod http;
mod patroni;
pub mod procs;
pub mod settings;
pub mod stall;
pub mod watch;

use super::osuser::OsUser;
use super::state::LabState;
use super::Lab;
use crate::error::usage;
use anyhow::Result;
use indexmap::IndexMap;
use serde::Serialize;
use std::path::Path;

pub use super::state::{HaKind, HaState};

/// What `cluster up --ha` was asked for.
#[derive(Debug, Clone)]
pub struct HaRequest {
    pub kind: HaKind,
    pub settings: IndexMap<String, String>,
}

/// Check `--ha-setting`s against the stack; exit 2 naming what is wrong.
pub fn request(kind: HaKind, given: &[String]) -> Result<HaRequest> {
    let settings = settings::parse_all(kind, given).map_err(usage)?;
    Ok(HaRequest { kind, settings })
}

/// The programs a stack needs and the Debian package of each: a missing one is bad input
/// (exit 2) that names what to install, found before the lab directory is touched.
pub fn check_installed(kind: HaKind, bindir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let on_path = |p: &str| which(p).is_some();
    match kind {
        HaKind::PgAutoFailover => {
            if !on_path("pg_autoctl") {
                missing.push("pg_autoctl (apt-get install pg-auto-failover-cli)".to_string());
            }
            if let Some(major) = autofailover::extension_missing(bindir) {
                missing.push(format!(
                    "the pgautofailover extension for PostgreSQL {major} (apt-get install postgresql-{major}-auto-failover)"
                ));
            }
        }
        HaKind::Patroni => {
            for (program, package) in [
                ("patroni", "patroni"),
                ("etcd", "etcd-server"),
                ("haproxy", "haproxy"),
            ] {
                if !on_path(program) {
                    missing.push(format!("{program} (apt-get install {package})"));
                }
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(usage(format!(
        "--ha {kind} needs {}: install it, then run `cluster up --ha {kind}` again",
        missing.join(" and ")
    )))
}

/// A program on PATH (or in /usr/sbin, where Debian puts haproxy, not on a user's PATH).
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into()])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The ports an orchestrated lab takes beyond its nodes', from the lab's port block: the
/// monitor or etcd at +10, etcd's peers at +11, HAProxy at +12 (writes) and +13 (reads), and
/// the REST APIs from +20.
pub fn plan(kind: HaKind, base: u16, settings: IndexMap<String, String>) -> HaState {
    match kind {
        HaKind::PgAutoFailover => HaState {
            kind,
            settings,
            service_port: base + 10,
            peer_port: None,
            write_port: None,
            read_port: None,
            rest_port_base: None,
        },
        HaKind::Patroni => HaState {
            kind,
            settings,
            service_port: base + 10,
            peer_port: Some(base + 11),
            write_port: Some(base + 12),
            read_port: Some(base + 13),
            rest_port_base: Some(base + 20),
        },
    }
}

impl HaState {
    /// Every port the stack listens on (beside the nodes').
    pub fn ports(&self, nodes: usize) -> Vec<u16> {
        let mut p = vec![self.service_port];
        p.extend(self.peer_port);
        p.extend(self.write_port);
        p.extend(self.read_port);
        if let Some(b) = self.rest_port_base {
            p.extend((0..nodes as u16).map(|i| b + i));
        }
        p
    }
}

/// Build the stack over a new lab whose state, directories and credentials exist; return
/// once every node runs in its role.
pub async fn create(lab: &Lab, state: &mut LabState, user: Option<&OsUser>) -> Result<()> {
    match kind_of(state) {
        HaKind::PgAutoFailover => autofailover::create(lab, state, user).await,
        HaKind::Patroni => patroni::create(lab, state, user).await,
    }
}

/// Start whatever of the stack is not running (idempotent), then apply `settings` if given.
pub async fn start_all(lab: &Lab, state: &mut LabState) -> Result<()> {
    match kind_of(state) {
        HaKind::PgAutoFailover => autofailover::start_all(lab, state).await,
        HaKind::Patroni => patroni::start_all(lab, state).await,
    }
}

/// Stop every process of the stack (agents and their servers, then the services).
pub async fn stop_all(lab: &Lab, state: &LabState) -> Result<()> {
    match kind_of(state) {
        HaKind::PgAutoFailover => autofailover::stop_all(lab, state).await,
        HaKind::Patroni => patroni::stop_all(lab, state).await,
    }
}

/// Apply the lab's `--ha-setting`s to the running orchestrator.
pub async fn apply_settings(lab: &Lab, state: &LabState) -> Result<()> {
    match kind_of(state) {
        HaKind::PgAutoFailover => autofailover::apply_settings(lab, state).await,
        HaKind::Patroni => patroni::apply_settings(lab, state).await,
    }
}

/// The whole node dies at once: its agent and its PostgreSQL, SIGKILL to both, so nothing
/// restarts it in place.
pub async fn kill_node(lab: &Lab, state: &LabState, name: &str) -> Result<()> {
    match kind_of(state) {
        HaKind::PgAutoFailover => autofailover::kill_node(lab, state, name).await,
        HaKind::Patroni => patroni::kill_node(lab, state, name).await,
    }
}

/// Start a node's agent; the orchestrator decides what it becomes (a killed former primary
/// is rewound and rejoins as a standby).
pub async fn start_node(lab: &Lab, state: &LabState, name: &str) -> Result<()> {
    match kind_of(state) {
        HaKind::PgAutoFailover => autofailover::start_node(lab, state, name).await,
        HaKind::Patroni => patroni::start_node(lab, state, name).await,
    }
}

/// Stop a node cleanly through its agent.
pub async fn stop_node(lab: &Lab, state: &LabState, name: &str) -> Result<()> {
    match kind_of(state) {
        HaKind::PgAutoFailover => autofailover::stop_node(lab, state, name).await,
        HaKind::Patroni => patroni::stop_node(lab, state, name).await,
    }
}

/// The node's agent runs.
pub fn agent_running(lab: &Lab, state: &LabState, name: &str) -> bool {
    match kind_of(state) {
        HaKind::PgAutoFailover => autofailover::agent_running(lab, name),
        HaKind::Patroni => patroni::agent_running(lab, name),
    }
}

fn kind_of(state: &LabState) -> HaKind {
    state
        .ha
        .as_ref()
        .map(|h| h.kind)
        .expect("an orchestrated lab")
}

/// The orchestrator's view of each node, for `cluster status`.
#[derive(Debug, Clone, Serialize)]
pub struct OrchestratorView {
    pub kind: HaKind,
    /// The timeouts in force, read back from the orchestrator.
    pub settings: IndexMap<String, String>,
    /// The node it names as the primary (leader).
    pub primary: Option<String>,
    pub nodes: Vec<OrchestratedNode>,
    /// Where applications connect: a multi-host URI, or HAProxy's ports.
    pub connect: Vec<String>,
    /// What could not be read (the monitor or etcd down).
    pub error: Option<String>,
}

/// One node as the orchestrator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct OrchestratedNode {
    pub name: String,
    /// pg_auto_failover: reported state; Patroni: role.
    pub role: String,
    /// pg_auto_failover: assigned (goal) state; Patroni: state.
    pub state: String,
    pub healthy: Option<bool>,
    pub timeline: Option<i64>,
    pub lsn: Option<String>,
    pub agent_running: bool,
}

/// Ask the orchestrator: never fails; what could not be read is in `error`.
pub async fn view(lab: &Lab, state: &LabState) -> OrchestratorView {
    match kind_of(state) {
        HaKind::PgAutoFailover => autofailover::view(lab, state).await,
        HaKind::Patroni => patroni::view(lab, state).await,
    }
}

/// Ask for a planned switchover (to `target` when named); return the new primary once the
/// orchestrator says it is done.
pub async fn switchover(lab: &Lab, state: &LabState, target: Option<&str>) -> Result<String> {
    match kind_of(state) {
        HaKind::PgAutoFailover => autofailover::switchover(lab, state, target).await,
        HaKind::Patroni => patroni::switchover(lab, state, target).await,
    }
}

/// The directories an orchestrated lab adds (owned by the lab's OS user; `private` ones
/// 0700), once the lab's unix socket path is known to fit.
pub(crate) fn make_dirs(
    lab: &Lab,
    user: Option<&super::osuser::OsUser>,
    dirs: &[&str],
    private: &[&str],
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if lab.socket_dir().join(".s.PGSQL.65535").as_os_str().len() > 100 {
        return Err(usage(format!(
            "the lab directory {} is too deep for a unix socket path (at most about 100 \
             characters): choose a shorter --dir",
            lab.dir.display()
        )));
    }
    for d in dirs.iter().chain(private) {
        let dir = lab.dir.join(d);
        std::fs::create_dir_all(&dir)?;
        super::osuser::chown(&dir, user)?;
    }
    for d in private {
        std::fs::set_permissions(lab.dir.join(d), std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

impl OrchestratorView {
    /// Each node as the orchestrator sees it, in one line (for an error that says why the
    /// lab did not settle).
    pub fn seen(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{} {} / {}", n.name, n.role, n.state))
            .collect();
        format!("{} sees: {}", self.kind, nodes.join("; "))
    }
}

/// The state's roles made to agree with the orchestrator's (the primary it names), saved.
/// The orchestrator owns the roles; the state file only remembers the last answer.
pub async fn refresh_roles(lab: &Lab, state: &mut LabState) -> Result<()> {
    let primary = view(lab, state).await.primary;
    let Some(p) = primary.filter(|p| state.node(p).is_some()) else {
        return Ok(());
    };
    if state.primary().name == p {
        return Ok(());
    }
    for n in state.nodes.iter_mut() {
        n.role = if n.name == p {
            super::Role::Primary
        } else {
            super::Role::Standby
        };
        n.needs_rejoin = false;
    }
    lab.save(state)
}

/// How applications reach the lab's primary and standbys: the write and read endpoints the
/// load uses instead of the nodes' own addresses (None: the nodes themselves).
pub fn access(
    lab: &Lab,
    state: &LabState,
) -> Result<(Option<crate::pg::Endpoint>, Option<crate::pg::Endpoint>)> {
    match kind_of(state) {
        HaKind::PgAutoFailover => Ok((Some(autofailover::write_endpoint(lab, state)?), None)),
        HaKind::Patroni => patroni::access(lab, state),
    }
}

/// The name the primary knows a standby by (application_name and slot), when it is not the
/// node's own.
pub fn replication_name(state: &LabState, name: &str) -> String {
    state
        .node(name)
        .and_then(|n| n.repl_name.clone())
        .unwrap_or_else(|| name.to_string())
}

/// `--ha-setting`s given to `cluster up` of an existing lab: they join (and replace) the
/// ones it has, and are applied to the running orchestrator.
pub fn merge_settings(state: &mut LabState, given: &IndexMap<String, String>) {
    if let Some(ha) = state.ha.as_mut() {
        for (k, v) in given {
            ha.settings.insert(k.clone(), v.clone());
        }
    }
}
