//! Serving what the sampler sees (DESIGN section 12): `/health/db`, Prometheus `/metrics` and a
//! live status page, fed by the recorder through a `Sink`, for `monitor` (no load) and
//! `run --serve` (with the run's counters and latency).

mod health;
mod http;
pub mod latency;
pub mod metrics;
pub mod state;

pub use http::{serve, Server};
pub use state::{MonitorSink, MonitorState, Shared};
