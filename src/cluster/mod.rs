//! The lab (DESIGN section 2): a real primary and hot standbys started on this machine from the
//! installed PostgreSQL binaries, each standby streaming through the link shaper.

mod binaries;
pub mod conn;
mod failover;
pub mod ha;
mod lifecycle;
mod node;
pub mod osuser;
mod serverconf;
mod shaper_proc;
pub mod state;
pub mod status;

pub use binaries::find_bindir;
pub use binaries::BinChoice;
pub use failover::{
    kill, most_advanced_standby, promote, rebuild, rejoin, restart_node, set_sync, start_node,
    stop_node, switchover, wait_following,
};
pub use lifecycle::{destroy, down, free_port_base, up, UpOptions};
pub use osuser::run as run_command;
pub use shaper_proc::shaper_config;
pub use state::{LabState, NodeState, Role, SyncMode};

use crate::error::usage;
use crate::link::LinkClient;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// The lab directory and the paths inside it.
#[derive(Debug, Clone)]
pub struct Lab {
    pub dir: PathBuf,
}

impl Lab {
    /// The lab at `dir`, else `$PGBENCH_REPL_LAB`, else `./.pgbench-repl/lab` (made absolute).
    pub fn locate(dir: Option<&Path>) -> Lab {
        let dir = dir
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("PGBENCH_REPL_LAB").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(".pgbench-repl/lab"));
        let dir = if dir.is_absolute() {
            dir
        } else {
            std::env::current_dir().unwrap_or_default().join(dir)
        };
        Lab { dir }
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn data_dir(&self, node: &str) -> PathBuf {
        self.dir.join("data").join(node)
    }
    pub fn log_file(&self, node: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{node}.log"))
    }
    pub fn credentials_dir(&self) -> PathBuf {
        self.dir.join("credentials")
    }
    pub fn password_file(&self) -> PathBuf {
        self.credentials_dir().join("password")
    }
    pub fn pgpass_file(&self) -> PathBuf {
        self.credentials_dir().join("pgpass")
    }
    /// Where an orchestrated lab's nodes put their unix sockets.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("sock")
    }
    pub fn shaper_socket(&self) -> PathBuf {
        self.dir.join("shaper.sock")
    }
    pub fn shaper_pid_file(&self) -> PathBuf {
        self.dir.join("shaper.pid")
    }
    pub fn link_settings_file(&self) -> PathBuf {
        self.dir.join("links.json")
    }

    pub fn exists(&self) -> bool {
        self.state_file().is_file()
    }

    /// The saved state; a clear error (exit 2) when there is no lab here.
    pub fn state(&self) -> Result<LabState> {
        if !self.exists() {
            return Err(usage(format!(
                "no lab at {}: start one with `pgbench-repl cluster up`",
                self.dir.display()
            )));
        }
        LabState::load(&self.state_file())
    }

    pub fn save(&self, state: &LabState) -> Result<()> {
        state.save(&self.state_file())
    }

    /// The lab's generated password (never printed, never logged).
    pub fn password(&self) -> Result<String> {
        let text = std::fs::read_to_string(self.password_file()).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the lab's password file {}: {e}",
                self.password_file().display()
            )
        })?;
        Ok(text.trim().to_string())
    }

    pub fn links(&self) -> LinkClient {
        LinkClient::new(&self.shaper_socket())
    }

    /// Connection settings for a node of this lab.
    pub fn conn(&self, state: &LabState, port: u16) -> Result<conn::ConnSpec> {
        Ok(conn::ConnSpec {
            host: "127.0.0.1".into(),
            port,
            user: state.user.clone(),
            password: Some(self.password()?),
            dbname: state.database.clone(),
        })
    }
}

/// A link request: to the shaper in a plain lab; in an orchestrated lab, whose standbys
/// stream directly, `pause` and `resume` stop and continue the standby's WAL receiver and the
/// rest is refused.
pub async fn link(lab: &Lab, req: &crate::link::protocol::Request) -> Result<()> {
    use crate::link::protocol::Request;
    let state = lab.state()?;
    if state.ha.is_none() {
        return lab.links().send(req).await.map(drop);
    }
    match req {
        Request::Pause { node } => ha::stall::pause(lab, &state, node).await,
        Request::Resume { node } | Request::Heal { node } => {
            require_node(&state, node)?;
            ha::stall::resume(lab, node).await
        }
        _ => Err(usage(
            "an orchestrated lab's standbys stream directly (the orchestrator writes their \
             primary_conninfo), not through the link shaper: only pause and resume (which stop \
             and continue a standby's WAL receiver) apply",
        )),
    }
}

/// True when the node's postmaster runs.
pub fn node_running(lab: &Lab, name: &str) -> bool {
    node::running_pid(&lab.data_dir(name)).is_some()
}

/// A node name that must exist in the lab.
pub fn require_node<'a>(state: &'a LabState, name: &str) -> Result<&'a NodeState> {
    state.node(name).ok_or_else(|| {
        let names: Vec<&str> = state.nodes.iter().map(|n| n.name.as_str()).collect();
        usage(format!(
            "no node '{name}' in the lab (nodes: {})",
            names.join(", ")
        ))
    })
}
