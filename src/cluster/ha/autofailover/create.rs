//! Building a pg_auto_failover lab: the monitor on an instance the tool made, then the first
//! node (`single`, then the primary), then the standbys (pg_autoctl base-backs them up).

use super::{
    apply_settings, autoctl, monitor_client, monitor_data, monitor_uri, quote_literal, run_agent,
    start_monitor, wait_formed, MONITOR,
};
use crate::cluster::ha::procs;
use crate::cluster::osuser::OsUser;
use crate::cluster::serverconf::prepare_orchestrated_datadir;
use crate::cluster::state::LabState;
use crate::cluster::Lab;
use anyhow::{Context, Result};
use std::time::Duration;

/// Monitor, then the first node (it becomes `single`, then the primary), then each standby
/// (pg_autoctl base-backs it up from the primary); return once all are in their states.
pub async fn create(lab: &Lab, state: &mut LabState, user: Option<&OsUser>) -> Result<()> {
    crate::cluster::ha::make_dirs(
        lab,
        user,
        &["xdg", "xdg/config", "xdg/data", "run", "home"],
        &["xdg/run", "sock"],
    )?;
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
