//! Server settings a run changes (`[run] server_settings`, `set_setting` and `set_sync`
//! events): applied with ALTER SYSTEM on every node that needs them, the lab's nodes restarted
//! when only a restart applies a setting, and every one put back after the run.

use crate::cluster::{self, Lab};
use crate::error::usage;
use crate::pg::settings::{
    alter_system, auto_value, describe_setting, undo, wait_reloaded, SettingChange,
};
use crate::pg::Endpoint;
use anyhow::{anyhow, Result};

/// Apply one setting on one node; restart it when the setting needs that (the lab only).
pub async fn apply_on(
    node: &Endpoint,
    lab: Option<&Lab>,
    name: &str,
    value: &str,
) -> Result<SettingChange> {
    let conn = node.connect(None).await?;
    let change = alter_system(&conn, name, value).await?;
    drop(conn);
    if change.needs_restart {
        let lab = lab.ok_or_else(|| {
            anyhow!(
                "{name} takes effect only after a restart, and pgbench-repl restarts only the \
                 lab's servers: set it on {} yourself",
                node.name
            )
        })?;
        cluster::restart_node(lab, &node.name).await?;
    } else {
        wait_reloaded(node, name, &change.previous).await?;
    }
    Ok(change)
}

/// Every setting a run may change, as it was on every node before the run.
pub struct SettingsSnapshot {
    /// (node, the change that would put it back), filled by `record`.
    taken: Vec<(Endpoint, SettingChange)>,
}

impl SettingsSnapshot {
    pub fn empty() -> Self {
        SettingsSnapshot { taken: Vec::new() }
    }

    /// `[run] server_settings`: on every node, standbys first (settings such as
    /// max_connections must not be lower on a standby than on its primary).
    pub async fn apply_run_settings(
        &mut self,
        nodes: &[Endpoint],
        lab: Option<&Lab>,
        settings: &[(String, String)],
        source: &str,
    ) -> Result<()> {
        if settings.is_empty() {
            return Ok(());
        }
        // Every name must exist, and a restart must be possible, before anything changes.
        let first = nodes[0].connect(None).await?;
        for (name, _) in settings {
            let (context, _) = describe_setting(&first, name)
                .await
                .map_err(|e| usage(format!("{source}: run.server_settings.{name}: {e}")))?;
            if context == "postmaster" && lab.is_none() {
                return Err(usage(format!(
                    "{source}: run.server_settings.{name}: it takes effect only after a restart, \
                     and pgbench-repl restarts only the lab's servers"
                )));
            }
        }
        drop(first);
        for node in nodes.iter().skip(1).chain(nodes.first()) {
            for (name, value) in settings {
                let change = apply_on(node, lab, name, value).await?;
                self.taken.push((node.clone(), change));
            }
        }
        Ok(())
    }

    /// Remember how `names` are on every node before the run changes them (its
    /// `set_setting` and `set_sync` events), so the run puts them back even without a `for`.
    pub async fn capture(&mut self, nodes: &[Endpoint], names: &[String]) -> Result<()> {
        for node in nodes {
            let Ok(conn) = node.connect(None).await else {
                continue; // a node that is down keeps what it has
            };
            for name in names {
                if self
                    .taken
                    .iter()
                    .any(|(n, c)| n.name == node.name && c.name == *name)
                {
                    continue;
                }
                let (context, previous) = describe_setting(&conn, name).await?;
                let previous_auto = auto_value(&conn, name).await?;
                self.taken.push((
                    node.clone(),
                    SettingChange {
                        name: name.clone(),
                        value: previous.clone(),
                        previous_auto,
                        previous,
                        needs_restart: context == "postmaster",
                    },
                ));
            }
        }
        Ok(())
    }

    /// Put every setting back, newest first; restart the lab's nodes that need it. Every
    /// step is tried; the first failure is returned.
    pub async fn restore(&mut self, lab: Option<&Lab>) -> Result<()> {
        let mut first_error = None;
        let mut restart: Vec<String> = Vec::new();
        for (node, change) in self.taken.drain(..).rev() {
            let r = async {
                let conn = node.connect(None).await?;
                if auto_value(&conn, &change.name).await? == change.previous_auto {
                    return Ok(false); // untouched
                }
                undo(&conn, &change).await?;
                anyhow::Ok(true)
            }
            .await;
            match r {
                Ok(true) if change.needs_restart && !restart.contains(&node.name) => {
                    restart.push(node.name.clone())
                }
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(lab) = lab {
            for name in restart {
                if cluster::node_running(lab, &name) {
                    if let Err(e) = cluster::restart_node(lab, &name).await {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
