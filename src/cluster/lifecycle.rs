//! `cluster up`, `down` and `destroy`.

use super::node::{self, StopMode};
use super::osuser::{self, OsUser};
use super::serverconf::{prepare_fresh_datadir, write_node_conf};
use super::state::{LabState, NodeState, Role, SyncMode};
use super::{binaries, shaper_proc, status, Lab};
use crate::error::usage;
use crate::link::protocol::Request;
use anyhow::{bail, Context, Result};
use rand::distributions::{Alphanumeric, DistString};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// Port of the primary by default; standbys follow it, links sit 10 above.
pub const DEFAULT_PORT: u16 = 55432;
const LINK_OFFSET: u16 = 10;
const MAX_STANDBYS: u32 = 9;

/// What `cluster up` was asked for. `None`: keep what the lab has (or the default).
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub standbys: Option<u32>,
    pub sync: Option<SyncMode>,
    pub link_delay: Option<Duration>,
    pub link_rate: Option<u64>,
    pub port: Option<u16>,
    pub os_user: Option<String>,
    /// `--ha` and `--ha-setting`: an orchestrator runs the nodes.
    pub ha: Option<super::ha::HaRequest>,
    /// `--pg-bin` and `--pg-version`: which PostgreSQL a new lab is made with.
    pub bins: binaries::BinChoice,
}

/// Create the lab if there is none, start whatever is not running, apply the options given.
/// Running it twice is harmless, also at once: shards started together all bring the lab up,
/// one after another (the first starts it; the others find it running).
pub async fn up(lab: &Lab, opts: &UpOptions) -> Result<LabState> {
    let _lock = lock(lab).await?;
    up_locked(lab, opts).await
}

/// The file `up` locks: beside the lab's directory, which may not exist yet.
fn lock_path(lab: &Lab) -> std::path::PathBuf {
    let name = lab
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "lab".into());
    lab.dir.with_file_name(format!(".{name}.up.lock"))
}

async fn lock(lab: &Lab) -> Result<nix::fcntl::Flock<std::fs::File>> {
    use nix::fcntl::{Flock, FlockArg};
    let path = lock_path(lab);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the lab directory {}", lab.dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| {
            format!(
                "cannot create the lab directory {}: {} cannot be written",
                lab.dir.display(),
                path.display()
            )
        })?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => return Ok(held),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) if tokio::time::Instant::now() < deadline => {
                file = f;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err((_, e)) => bail!(
                "another pgbench-repl has been starting the lab at {} for 5 minutes ({e})",
                lab.dir.display()
            ),
        }
    }
}

async fn up_locked(lab: &Lab, opts: &UpOptions) -> Result<LabState> {
    let mut state = if lab.exists() {
        let state = lab.state()?;
        check_same_kind(lab, &state, opts)?;
        if let Some(n) = opts.standbys {
            let have = state.nodes.len() as u32 - 1;
            if n != have {
                crate::errln!(
                    "warning: the lab at {} has {have} standbys; --standbys {n} is ignored \
                     (`cluster destroy` first to change it)",
                    lab.dir.display()
                );
            }
        }
        state
    } else {
        create(lab, opts).await?
    };
    if state.ha.is_some() {
        return up_orchestrated(lab, state, opts).await;
    }
    shaper_proc::ensure_running(lab).await?;
    for n in state.nodes.clone() {
        if n.needs_rejoin {
            crate::errln!(
                "info: {} is not started: a standby was promoted over it; `cluster rejoin {}` makes it a standby",
                n.name, n.name
            );
            continue;
        }
        if node::running_pid(&lab.data_dir(&n.name)).is_none() {
            node::start(lab, &state, &n.name).await?;
        }
    }
    if let Some(sync) = opts.sync {
        if sync != state.sync {
            state.sync = sync;
            lab.save(&state)?;
            super::serverconf::apply_primary_conf(lab, &state).await?;
        }
    }
    apply_link_options(lab, &state, opts).await?;
    status::wait_streaming(lab, &state, Duration::from_secs(60)).await?;
    Ok(state)
}

/// An existing lab keeps what runs it: `--ha` on a plain lab (or another orchestrator) is
/// refused, and so are options an orchestrated lab does not take.
fn check_same_kind(lab: &Lab, state: &LabState, opts: &UpOptions) -> Result<()> {
    let have = state.ha.as_ref().map(|h| h.kind);
    if let Some(want) = opts.ha.as_ref().map(|h| h.kind) {
        if have != Some(want) {
            let is = have
                .map(|k| format!("run by {k}"))
                .unwrap_or_else(|| "a plain lab".into());
            return Err(usage(format!(
                "the lab at {} is {is}; `cluster destroy` it first, or use another --dir, to start one with --ha {want}",
                lab.dir.display()
            )));
        }
    }
    if have.is_some() {
        check_orchestrated_options(opts)?;
    }
    // The binaries are chosen when a lab is made; another choice needs another lab.
    if opts.bins != binaries::BinChoice::default() {
        let wanted = binaries::find_bindir(&opts.bins)?;
        let same = |a: &std::path::Path, b: &std::path::Path| {
            a == b || a.canonicalize().ok() == b.canonicalize().ok()
        };
        if !same(&wanted, &state.bindir) {
            return Err(usage(format!(
                "the lab at {} runs {} from {}; `cluster destroy` it first, or use another --dir, \
                 to start one from {}",
                lab.dir.display(),
                state.server_version,
                state.bindir.display(),
                wanted.display()
            )));
        }
    }
    Ok(())
}

/// Options that need the link shaper or the tool's own replication settings.
fn check_orchestrated_options(opts: &UpOptions) -> Result<()> {
    let refused = [
        (opts.sync.is_some(), "--sync (the orchestrator sets synchronous_standby_names; use --ha-setting)"),
        (opts.link_delay.is_some(), "--link-delay (an orchestrated lab's standbys stream directly, not through the link shaper)"),
        (opts.link_rate.is_some(), "--link-rate (an orchestrated lab's standbys stream directly, not through the link shaper)"),
    ];
    if let Some((_, what)) = refused.iter().find(|(given, _)| *given) {
        return Err(usage(format!("an orchestrated lab does not take {what}")));
    }
    Ok(())
}

/// Start what is not running, apply newly given settings, and refresh the roles from the
/// orchestrator.
async fn up_orchestrated(lab: &Lab, mut state: LabState, opts: &UpOptions) -> Result<LabState> {
    if let Some(req) = &opts.ha {
        super::ha::merge_settings(&mut state, &req.settings);
        lab.save(&state)?;
    }
    super::ha::start_all(lab, &mut state).await?;
    super::ha::refresh_roles(lab, &mut state).await?;
    Ok(state)
}

async fn apply_link_options(lab: &Lab, state: &LabState, opts: &UpOptions) -> Result<()> {
    if opts.link_delay.is_none() && opts.link_rate.is_none() {
        return Ok(());
    }
    for n in state.standbys() {
        lab.links()
            .send(&Request::Set {
                node: n.name.clone(),
                delay_us: opts.link_delay.map(|d| d.as_micros() as u64),
                rate: opts.link_rate,
            })
            .await?;
    }
    Ok(())
}

/// Build a new lab: initdb the primary, base-backup each standby, start everything.
async fn create(lab: &Lab, opts: &UpOptions) -> Result<LabState> {
    let standbys = opts.standbys.unwrap_or(2);
    if standbys > MAX_STANDBYS {
        return Err(usage(format!(
            "--standbys {standbys}: the lab holds at most {MAX_STANDBYS}"
        )));
    }
    let port = opts.port.unwrap_or(DEFAULT_PORT);
    let bindir = binaries::find_bindir(&opts.bins)?;
    let user = OsUser::for_servers(opts.os_user.as_deref())?;
    let nodes = plan_nodes(port, standbys)?;
    let ha = opts
        .ha
        .as_ref()
        .map(|h| super::ha::plan(h.kind, port, h.settings.clone()));
    if let Some(h) = &ha {
        check_orchestrated_options(opts)?;
        super::ha::check_installed(h.kind, &bindir)?;
    }
    let mut ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    match &ha {
        Some(h) => ports.extend(h.ports(nodes.len())),
        None => ports.extend(nodes.iter().map(|n| n.link_port)),
    }
    check_ports_free(&ports)?;
    make_dirs(lab, user.as_ref())?;
    let mut state = LabState {
        schema: 1,
        server_version: binaries::server_version(&bindir)?,
        bindir,
        os_user: user.as_ref().map(|u| u.name.clone()),
        sync: opts.sync.unwrap_or(SyncMode::Async),
        nodes,
        user: "postgres".into(),
        database: "postgres".into(),
        ha,
    };
    write_credentials(lab, user.as_ref())?;
    if state.ha.is_some() {
        lab.save(&state)?;
        super::ha::create(lab, &mut state, user.as_ref()).await?;
        return Ok(state);
    }
    initdb(lab, &state, user.as_ref()).await?;
    lab.save(&state)?;
    shaper_proc::ensure_running(lab).await?;
    node::start(lab, &state, "primary").await?;
    for n in state.standbys() {
        base_backup(lab, &state, n, user.as_ref()).await?;
        node::start(lab, &state, &n.name).await?;
    }
    super::serverconf::apply_primary_conf(lab, &state).await?;
    Ok(state)
}

fn plan_nodes(port: u16, standbys: u32) -> Result<Vec<NodeState>> {
    if u32::from(port) + u32::from(LINK_OFFSET) + standbys > 65535 || port < 1024 {
        return Err(usage(format!(
            "--port {port}: the lab needs ports {port}..{} and {}..{}, pick a port between 1024 and 65000",
            u32::from(port) + standbys,
            u32::from(port) + u32::from(LINK_OFFSET),
            u32::from(port) + u32::from(LINK_OFFSET) + standbys
        )));
    }
    Ok((0..=standbys as u16)
        .map(|i| NodeState {
            name: if i == 0 {
                "primary".into()
            } else {
                format!("standby{i}")
            },
            role: if i == 0 { Role::Primary } else { Role::Standby },
            port: port + i,
            link_port: port + LINK_OFFSET + i,
            needs_rejoin: false,
            repl_name: None,
        })
        .collect())
}

/// A base port above the default lab's whose nodes (base..) and links (base + 10..) are free
/// now, for a lab of `standbys` standbys the tool starts by itself (a pg_version matrix).
pub fn free_port_base(standbys: u32) -> Option<u16> {
    (0..200u16).map(|i| 56000 + i * 40).find(|base| {
        let ports = (0..=standbys as u16).flat_map(|i| [base + i, base + LINK_OFFSET + i]);
        ports
            .into_iter()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
    })
}

fn check_ports_free(ports: &[u16]) -> Result<()> {
    let busy: Vec<String> = ports
        .iter()
        .filter(|p| std::net::TcpListener::bind(("127.0.0.1", **p)).is_err())
        .map(|p| p.to_string())
        .collect();
    if !busy.is_empty() {
        return Err(usage(format!(
            "port(s) {} on 127.0.0.1 are busy: stop what uses them or move the lab with --port",
            busy.join(", ")
        )));
    }
    Ok(())
}

fn make_dirs(lab: &Lab, user: Option<&OsUser>) -> Result<()> {
    if lab.dir.exists() && std::fs::read_dir(&lab.dir)?.next().is_some() {
        return Err(usage(format!(
            "{} exists and is not a lab (no state.json): name an empty or new directory with --dir",
            lab.dir.display()
        )));
    }
    for sub in ["", "data", "logs", "credentials"] {
        let d = lab.dir.join(sub);
        std::fs::create_dir_all(&d)
            .with_context(|| format!("cannot create the lab directory {}", d.display()))?;
        osuser::chown(&d, user)?;
    }
    std::fs::set_permissions(
        lab.credentials_dir(),
        std::fs::Permissions::from_mode(0o700),
    )?;
    std::fs::set_permissions(lab.dir.join("data"), std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// A generated password, in a 0600 file and a pgpass file for libpq clients.
fn write_credentials(lab: &Lab, user: Option<&OsUser>) -> Result<()> {
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
    // Every role of the lab (the superuser, and an orchestrator's replication and monitor
    // roles) has this one password.
    let pgpass = format!(
        "127.0.0.1:*:*:*:{password}\nlocalhost:*:*:*:{password}\n{}:*:*:*:{password}\n",
        pgpass_escape(&lab.socket_dir().to_string_lossy())
    );
    for (path, text) in [
        (lab.password_file(), &password),
        (lab.pgpass_file(), &pgpass),
    ] {
        write_private(&path, text)?;
        osuser::chown(&path, user)?;
    }
    Ok(())
}

/// A field of a password file: `:` and `\` escaped.
fn pgpass_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace(':', "\\:")
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

async fn initdb(lab: &Lab, state: &LabState, user: Option<&OsUser>) -> Result<()> {
    let data = lab.data_dir("primary");
    initdb_at(lab, state, user, &data).await?;
    prepare_fresh_datadir(&data)?;
    write_node_conf(lab, state, state.primary())
}

/// A new data directory: SCRAM for the superuser with the lab's password, checksums on.
pub async fn initdb_at(
    lab: &Lab,
    state: &LabState,
    user: Option<&OsUser>,
    data: &Path,
) -> Result<()> {
    let mut cmd = osuser::command(&state.bindir.join("initdb"), user);
    cmd.arg("-D")
        .arg(data)
        .args(["-U", &state.user, "-A", "scram-sha-256", "-E", "UTF8"])
        .args(["--no-locale", "--data-checksums", "--no-sync"])
        .arg(format!("--pwfile={}", lab.password_file().display()));
    osuser::run(&mut cmd, "initdb", Duration::from_secs(300)).await?;
    Ok(())
}

/// A standby's data directory from a base backup of the primary, with its own new slot.
pub(super) async fn base_backup(
    lab: &Lab,
    state: &LabState,
    n: &NodeState,
    user: Option<&OsUser>,
) -> Result<()> {
    let data = lab.data_dir(&n.name);
    let mut cmd = osuser::command(&state.bindir.join("pg_basebackup"), user);
    cmd.args(["-h", "127.0.0.1", "-p", &state.primary().port.to_string()])
        .args(["-U", &state.user, "-X", "stream", "-c", "fast", "--no-sync"])
        .args(["-C", "-S", &n.name, "-D"])
        .arg(&data)
        .env("PGPASSFILE", lab.pgpass_file());
    osuser::run(
        &mut cmd,
        &format!("pg_basebackup for {}", n.name),
        Duration::from_secs(1800),
    )
    .await?;
    write_node_conf(lab, state, n)
}

/// Stop every process of the lab: the servers, then the shaper.
pub async fn down(lab: &Lab) -> Result<()> {
    let state = lab.state()?;
    if state.ha.is_some() {
        return super::ha::stop_all(lab, &state).await;
    }
    let mut failures = Vec::new();
    for n in &state.nodes {
        if let Err(e) = node::stop(lab, &state, &n.name, StopMode::Fast).await {
            failures.push(format!("{}: {e:#}", n.name));
        }
    }
    shaper_proc::stop(lab).await?;
    if !failures.is_empty() {
        bail!("some nodes did not stop:\n{}", failures.join("\n"));
    }
    Ok(())
}

/// `down`, then remove the lab directory.
pub async fn destroy(lab: &Lab) -> Result<()> {
    if !lab.exists() {
        if lab.dir.exists() {
            return Err(usage(format!(
                "{} is not a lab (no state.json): not removing it",
                lab.dir.display()
            )));
        }
        return Ok(());
    }
    down(lab).await?;
    let _ = std::fs::remove_file(lock_path(lab));
    std::fs::remove_dir_all(&lab.dir)
        .with_context(|| format!("cannot remove {}", lab.dir.display()))
}
