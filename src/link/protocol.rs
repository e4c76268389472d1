//! What the control socket carries: one JSON request per line, one JSON reply per line.

use serde::{Deserialize, Serialize};

/// How one link behaves right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LinkSettings {
    /// One-way delay in microseconds, applied in each direction (RTT = 2 x delay).
    pub delay_us: u64,
    /// Bytes per second in each direction; 0 = unlimited.
    pub rate: u64,
    /// Stop forwarding but keep connections open (a silent stall).
    pub paused: bool,
    /// Reset connections and refuse new ones (a partition).
    pub cut: bool,
    /// The port it forwards to: the current primary.
    pub upstream_port: u16,
}

/// A link as `link status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkStatus {
    /// The node that streams through it.
    pub node: String,
    pub listen_port: u16,
    #[serde(flatten)]
    pub settings: LinkSettings,
    /// Open connections through the link.
    pub connections: u64,
    /// Bytes forwarded towards the primary and towards the node.
    pub bytes_to_upstream: u64,
    pub bytes_to_node: u64,
}

/// A request to the shaper.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Status,
    Set {
        node: String,
        delay_us: Option<u64>,
        rate: Option<u64>,
    },
    Pause {
        node: String,
    },
    Resume {
        node: String,
    },
    Cut {
        node: String,
    },
    Heal {
        node: String,
    },
    /// Point every link at a new primary (after a promotion).
    Upstream {
        port: u16,
    },
    Shutdown,
}

/// The shaper's answer: the links after the request, or why it was refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub links: Vec<LinkStatus>,
}
