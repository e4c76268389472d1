//! Talking to a running shaper over its control socket.

use super::protocol::{LinkStatus, Reply, Request};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// A handle on the shaper's control socket.
#[derive(Debug, Clone)]
pub struct LinkClient {
    socket: PathBuf,
}

impl LinkClient {
    pub fn new(socket: &Path) -> Self {
        LinkClient {
            socket: socket.to_path_buf(),
        }
    }

    /// Send one request; the links as they are after it.
    pub async fn send(&self, req: &Request) -> Result<Vec<LinkStatus>> {
        let stream = UnixStream::connect(&self.socket).await.with_context(|| {
            format!(
                "the link shaper is not running (no answer on {}): start the lab with `pgbench-repl cluster up`",
                self.socket.display()
            )
        })?;
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_string(req)?;
        line.push('\n');
        write.write_all(line.as_bytes()).await?;
        let mut lines = BufReader::new(read).lines();
        let answer = lines
            .next_line()
            .await?
            .context("the link shaper closed the control socket without answering")?;
        let reply: Reply = serde_json::from_str(&answer)?;
        if !reply.ok {
            bail!(crate::error::UsageError(reply.error.unwrap_or_default()));
        }
        Ok(reply.links)
    }

    pub async fn status(&self) -> Result<Vec<LinkStatus>> {
        self.send(&Request::Status).await
    }

    /// True when a shaper answers.
    pub async fn is_up(&self) -> bool {
        self.status().await.is_ok()
    }
}
