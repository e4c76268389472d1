//! The shaper daemon: one listener per link, a control socket, settings kept in `links.json`.

use super::pipe::{forward, reset_on_close, Counters};
use super::protocol::{LinkSettings, LinkStatus, Reply, Request};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{watch, Notify};

/// What the daemon is started with: where each link listens and its first settings.
pub struct ShaperConfig {
    pub socket: PathBuf,
    pub settings_file: PathBuf,
    /// node name -> (listen port, settings)
    pub links: BTreeMap<String, (u16, LinkSettings)>,
}

struct Link {
    listen_port: u16,
    settings: watch::Sender<LinkSettings>,
    counters: Arc<Counters>,
}

struct Shaper {
    links: BTreeMap<String, Link>,
    settings_file: PathBuf,
    shutdown: Notify,
}

/// Run the shaper until a `shutdown` request or SIGTERM.
pub async fn serve(config: ShaperConfig) -> Result<()> {
    let mut links = BTreeMap::new();
    let mut listeners = Vec::new();
    for (node, (port, settings)) in config.links {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("link {node}: cannot listen on 127.0.0.1:{port}"))?;
        let (tx, _) = watch::channel(settings);
        links.insert(
            node.clone(),
            Link {
                listen_port: port,
                settings: tx,
                counters: Arc::default(),
            },
        );
        listeners.push((node, listener));
    }
    let _ = std::fs::remove_file(&config.socket);
    let control = UnixListener::bind(&config.socket).with_context(|| {
        format!(
            "cannot create the control socket {}",
            config.socket.display()
        )
    })?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config.socket, std::fs::Permissions::from_mode(0o600))?;
    }
    let shaper = Arc::new(Shaper {
        links,
        settings_file: config.settings_file,
        shutdown: Notify::new(),
    });
    shaper.persist();
    for (node, listener) in listeners {
        tokio::spawn(accept_loop(shaper.clone(), node, listener));
    }
    tokio::spawn(control_loop(shaper.clone(), control));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = shaper.shutdown.notified() => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let _ = std::fs::remove_file(&config.socket);
    Ok(())
}

async fn accept_loop(shaper: Arc<Shaper>, node: String, listener: TcpListener) {
    let link = &shaper.links[&node];
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let settings = link.settings.subscribe();
        if settings.borrow().cut {
            reset(client);
            continue;
        }
        let counters = link.counters.clone();
        tokio::spawn(async move {
            let port = settings.borrow().upstream_port;
            match TcpStream::connect(("127.0.0.1", port)).await {
                Ok(upstream) => {
                    counters.connections.fetch_add(1, Ordering::Relaxed);
                    forward(client, upstream, settings, &counters).await;
                    counters.connections.fetch_sub(1, Ordering::Relaxed);
                }
                Err(_) => reset(client),
            }
        });
    }
}

/// Close with RST, as a partitioned or dead peer would.
fn reset(stream: TcpStream) {
    reset_on_close(&stream);
    drop(stream);
}

async fn control_loop(shaper: Arc<Shaper>, listener: UnixListener) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(handle_control(shaper.clone(), stream));
    }
}

async fn handle_control(shaper: Arc<Shaper>, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(req) => shaper.apply(req),
            Err(e) => Reply {
                ok: false,
                error: Some(format!("bad request: {e}")),
                links: vec![],
            },
        };
        let mut text = serde_json::to_string(&reply).unwrap_or_default();
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

impl Shaper {
    fn apply(&self, req: Request) -> Reply {
        let result = match req {
            Request::Status => Ok(()),
            Request::Set {
                node,
                delay_us,
                rate,
            } => self.modify(&node, |s| {
                if let Some(d) = delay_us {
                    s.delay_us = d;
                }
                if let Some(r) = rate {
                    s.rate = r;
                }
            }),
            Request::Pause { node } => self.modify(&node, |s| s.paused = true),
            Request::Resume { node } => self.modify(&node, |s| s.paused = false),
            Request::Cut { node } => self.modify(&node, |s| s.cut = true),
            Request::Heal { node } => self.modify(&node, |s| {
                s.cut = false;
                s.paused = false;
            }),
            Request::Upstream { port } => {
                for link in self.links.values() {
                    link.settings.send_modify(|s| s.upstream_port = port);
                }
                Ok(())
            }
            Request::Shutdown => {
                self.shutdown.notify_one();
                Ok(())
            }
        };
        self.persist();
        Reply {
            ok: result.is_ok(),
            error: result.err(),
            links: self.status(),
        }
    }

    fn modify(&self, node: &str, f: impl FnOnce(&mut LinkSettings)) -> Result<(), String> {
        let link = self.links.get(node).ok_or_else(|| {
            let names: Vec<&str> = self.links.keys().map(String::as_str).collect();
            format!("no link for node '{node}' (links: {})", names.join(", "))
        })?;
        link.settings.send_modify(f);
        Ok(())
    }

    fn status(&self) -> Vec<LinkStatus> {
        self.links
            .iter()
            .map(|(node, l)| LinkStatus {
                node: node.clone(),
                listen_port: l.listen_port,
                settings: l.settings.borrow().clone(),
                connections: l.counters.connections.load(Ordering::Relaxed),
                bytes_to_upstream: l.counters.to_upstream.load(Ordering::Relaxed),
                bytes_to_node: l.counters.to_node.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Keep the settings on disk so a restarted shaper (after `cluster down` / `up`) has them.
    fn persist(&self) {
        let settings: BTreeMap<&String, LinkSettings> = self
            .links
            .iter()
            .map(|(n, l)| (n, l.settings.borrow().clone()))
            .collect();
        if let Ok(text) = serde_json::to_string_pretty(&settings) {
            let _ = write_atomic(&self.settings_file, &text);
        }
    }
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// Read the settings a previous shaper left (missing file: none).
pub fn load_settings(path: &Path) -> BTreeMap<String, LinkSettings> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}
