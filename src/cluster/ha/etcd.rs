//! etcd for a Patroni lab: one member on 127.0.0.1 (client and peer ports from the lab's
//! block), its data under the lab, run as the lab's OS user. Patroni speaks its v3 API.

use super::procs::{self, Agent};
use crate::cluster::osuser;
use crate::cluster::state::LabState;
use crate::cluster::{node, Lab};
use anyhow::Result;
use std::time::Duration;

const NAME: &str = "etcd";

pub fn running(lab: &Lab) -> bool {
    procs::running(lab, NAME, "etcd").is_some()
}

/// Start etcd unless it runs; return once it says it is healthy.
pub async fn start(lab: &Lab, state: &LabState) -> Result<()> {
    let ha = state.ha.as_ref().expect("a Patroni lab");
    let (client, peer) = (ha.service_port, ha.peer_port.unwrap_or(ha.service_port + 1));
    if !running(lab) {
        let user = node::os_user(state)?;
        let data = lab.dir.join("etcd");
        if !data.exists() {
            std::fs::create_dir_all(&data)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))?;
            osuser::chown(&data, user.as_ref())?;
        }
        let program = super::which("etcd").unwrap_or_else(|| "etcd".into());
        let url = |p: u16| format!("http://127.0.0.1:{p}");
        let args = vec![
            "--name".into(),
            "lab".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--listen-client-urls".into(),
            url(client),
            "--advertise-client-urls".into(),
            url(client),
            "--listen-peer-urls".into(),
            url(peer),
            "--initial-advertise-peer-urls".into(),
            url(peer),
            "--initial-cluster".into(),
            format!("lab={}", url(peer)),
            "--initial-cluster-state".into(),
            "new".into(),
        ];
        procs::spawn(
            lab,
            user.as_ref(),
            &Agent {
                name: NAME,
                program: &program,
                args,
                env: procs::base_env(lab, &state.bindir),
            },
        )?;
    }
    let log = procs::log_file(lab, NAME);
    procs::wait_until(
        "etcd did not become healthy",
        &log,
        Duration::from_secs(60),
        || async {
            super::http::get(client, "/health")
                .await
                .is_ok_and(|r| r.status == 200 && r.body.contains("true"))
        },
    )
    .await
}

pub async fn stop(lab: &Lab) -> Result<()> {
    procs::stop(
        lab,
        NAME,
        "etcd",
        nix::sys::signal::Signal::SIGTERM,
        Duration::from_secs(30),
    )
    .await
}
