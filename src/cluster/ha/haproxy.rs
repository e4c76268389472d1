//! HAProxy in front of a Patroni lab, as applications are usually pointed at Patroni: a write
//! port whose servers pass Patroni's `/primary` check and a read port whose servers pass
//! `/replica`, both on 127.0.0.1; run as the lab's OS user.

use super::procs::{self, Agent};
use crate::cluster::state::LabState;
use crate::cluster::{node, Lab};
use anyhow::Result;
use std::time::Duration;

const NAME: &str = "haproxy";

fn config(state: &LabState) -> String {
    let ha = state.ha.as_ref().expect("a Patroni lab");
    let rest = ha.rest_port_base.unwrap_or_default();
    let servers: String = state
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "    server {} 127.0.0.1:{} check port {}\n",
                n.name,
                n.port,
                rest + i as u16
            )
        })
        .collect();
    let section = |name: &str, port: u16, check: &str| {
        format!(
            "listen {name}\n    bind 127.0.0.1:{port}\n    balance roundrobin\n    option httpchk\n    \
             http-check send meth GET uri {check}\n    http-check expect status 200\n    \
             default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions\n{servers}\n"
        )
    };
    format!(
        "# written by pgbench-repl\nglobal\n    maxconn 4000\n\ndefaults\n    mode tcp\n    timeout connect 2s\n    \
         timeout client 30m\n    timeout server 30m\n    timeout check 1s\n\n{}{}",
        section("writes", ha.write_port.unwrap_or_default(), "/primary"),
        section("reads", ha.read_port.unwrap_or_default(), "/replica"),
    )
}

pub fn running(lab: &Lab) -> bool {
    procs::running(lab, NAME, "haproxy").is_some()
}

/// Start HAProxy unless it runs; return once its write port accepts connections.
pub async fn start(lab: &Lab, state: &LabState) -> Result<()> {
    if !running(lab) {
        let path = lab.dir.join("haproxy.cfg");
        std::fs::write(&path, config(state))?;
        let user = node::os_user(state)?;
        let program = super::which("haproxy").unwrap_or_else(|| "haproxy".into());
        procs::spawn(
            lab,
            user.as_ref(),
            &Agent {
                name: NAME,
                program: &program,
                args: vec!["-db".into(), "-f".into(), path.display().to_string()],
                env: procs::base_env(lab, &state.bindir),
            },
        )?;
    }
    let port = state
        .ha
        .as_ref()
        .and_then(|h| h.write_port)
        .unwrap_or_default();
    let log = procs::log_file(lab, NAME);
    procs::wait_until(
        "HAProxy did not start",
        &log,
        Duration::from_secs(30),
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        },
    )
    .await
}

pub async fn stop(lab: &Lab) -> Result<()> {
    procs::stop(
        lab,
        NAME,
        "haproxy",
        nix::sys::signal::Signal::SIGTERM,
        Duration::from_secs(10),
    )
    .await
}
