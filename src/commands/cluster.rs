//! `pgbench-repl cluster ...`

use crate::cli::{ClusterCommand, UpArgs};
use crate::cluster::{self, require_node, status, Lab, UpOptions};
use anyhow::Result;

pub async fn run(cmd: ClusterCommand) -> Result<()> {
    match cmd {
        ClusterCommand::Up(args) => up(args).await,
        ClusterCommand::Status { json, lab } => {
            let lab = Lab::locate(lab.dir.as_deref());
            let mut state = lab.state()?;
            let orchestrator = match state.ha.is_some() {
                true => {
                    cluster::ha::refresh_roles(&lab, &mut state).await?;
                    Some(cluster::ha::view(&lab, &state).await)
                }
                false => None,
            };
            let rows = status::collect(&lab, &state).await?;
            let split = status::split_brain(&lab, &state, &rows).await;
            if json {
                let doc = serde_json::json!({
                    "dir": lab.dir,
                    "sync": state.sync.to_string(),
                    "server_version": state.server_version,
                    "split_brain": split.is_some(),
                    "split": split,
                    "nodes": rows,
                    "orchestrator": orchestrator,
                });
                crate::outln!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                crate::out!("{}", status::render_table(&rows));
                if let Some(v) = &orchestrator {
                    crate::out!("{}", status::render_orchestrator(v));
                }
                if let Some(sb) = &split {
                    crate::out!("{}", status::render_split_brain(sb));
                }
            }
            Ok(())
        }
        ClusterCommand::Env { node, lab } => {
            let lab = Lab::locate(lab.dir.as_deref());
            let mut state = lab.state()?;
            if state.ha.is_some() && node.is_none() {
                cluster::ha::refresh_roles(&lab, &mut state).await?;
            }
            let n = match node {
                Some(name) => require_node(&state, &name)?,
                None => state.primary(),
            };
            crate::outln!("export PGHOST=127.0.0.1");
            crate::outln!("export PGPORT={}", n.port);
            crate::outln!("export PGUSER={}", state.user);
            crate::outln!("export PGDATABASE={}", state.database);
            crate::outln!(
                "export PGPASSFILE={}",
                shell_quote(&lab.pgpass_file().to_string_lossy())
            );
            crate::outln!("unset PGPASSWORD");
            Ok(())
        }
        ClusterCommand::Down { lab } => cluster::down(&Lab::locate(lab.dir.as_deref())).await,
        ClusterCommand::Destroy { lab } => cluster::destroy(&Lab::locate(lab.dir.as_deref())).await,
        ClusterCommand::Kill { node, lab } => {
            cluster::kill(&Lab::locate(lab.dir.as_deref()), &node).await?;
            crate::errln!("info: {node} killed (immediate stop)");
            Ok(())
        }
        ClusterCommand::Promote { node, force, lab } => {
            let lab = Lab::locate(lab.dir.as_deref());
            cluster::promote(&lab, &node, force, true).await?;
            crate::errln!("info: {node} is the primary; the other running standbys stream from it");
            Ok(())
        }
        ClusterCommand::Start { node, force, lab } => {
            let lab = Lab::locate(lab.dir.as_deref());
            cluster::start_node(&lab, &node, force).await?;
            crate::errln!("info: {node} started");
            Ok(())
        }
        ClusterCommand::Rebuild { node, lab } => {
            let lab = Lab::locate(lab.dir.as_deref());
            let started = std::time::Instant::now();
            cluster::rebuild(&lab, &node).await?;
            crate::errln!(
                "info: {node} rebuilt from a fresh base backup in {:.1}s and streams",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        ClusterCommand::Verify {
            workload,
            json,
            lab,
        } => super::verify::verify(workload.as_deref(), lab.dir.as_deref(), json).await,
        ClusterCommand::Switchover { node, lab } => {
            let lab = Lab::locate(lab.dir.as_deref());
            let started = std::time::Instant::now();
            let primary = cluster::switchover(&lab, node.as_deref()).await?;
            crate::errln!(
                "info: switchover done in {:.1}s: {primary} is the primary",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        ClusterCommand::Rejoin { node, lab } => {
            let lab = Lab::locate(lab.dir.as_deref());
            let state = cluster::rejoin(&lab, &node).await?;
            crate::errln!("info: {node} streams from {}", state.primary().name);
            Ok(())
        }
    }
}

/// `--ha` and `--ha-setting`, checked against the stack named or the one the lab has.
fn ha_request(lab: &Lab, args: &UpArgs) -> Result<Option<cluster::ha::HaRequest>> {
    let existing = lab
        .exists()
        .then(|| lab.state().ok().and_then(|s| s.ha.map(|h| h.kind)))
        .flatten();
    match args.ha.or(existing) {
        Some(kind) => Ok(Some(cluster::ha::request(kind, &args.ha_settings)?)),
        None if !args.ha_settings.is_empty() => Err(crate::error::usage(
            "--ha-setting needs --ha pg_auto_failover or --ha patroni (or a lab that has one)",
        )),
        None => Ok(None),
    }
}

async fn up(args: UpArgs) -> Result<()> {
    let lab = Lab::locate(args.lab.dir.as_deref());
    let ha = ha_request(&lab, &args)?;
    let opts = UpOptions {
        standbys: args.standbys,
        sync: args.sync,
        link_delay: args.link_delay,
        link_rate: args.link_rate,
        port: args.port,
        os_user: args.os_user,
        ha,
        bins: cluster::BinChoice {
            dir: args.pg_bin,
            major: args.pg_version,
        },
    };
    let started = std::time::Instant::now();
    let state = cluster::up(&lab, &opts).await?;
    let run_by = match &state.ha {
        Some(h) => format!("run by {}, primary {}", h.kind, state.primary().name),
        None => format!("sync {}", state.sync),
    };
    crate::errln!(
        "info: lab up at {} in {:.1}s: {} ({}), {run_by}",
        lab.dir.display(),
        started.elapsed().as_secs_f64(),
        state
            .nodes
            .iter()
            .map(|n| format!("{} :{}", n.name, n.port))
            .collect::<Vec<_>>()
            .join(", "),
        state.server_version,
    );
    crate::errln!("info: connect with: eval \"$(pgbench-repl cluster env primary)\"; psql");
    Ok(())
}

/// Quote for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
