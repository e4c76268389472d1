//! The link shaper (DESIGN section 5): a userspace TCP proxy between each standby and the
//! primary, with per-link delay, rate, pause and cut, driven over a Unix control socket.

pub mod client;
mod pipe;
pub mod protocol;
pub mod server;

pub use client::LinkClient;
pub use protocol::{LinkSettings, LinkStatus};
