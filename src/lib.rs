//! pgbench-repl as a library: the binary is a thin shell over these modules.

pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod consistency;
pub mod error;
pub mod exec;
pub mod link;
pub mod merge;
pub mod messages;
pub mod monitor;
pub mod pg;
pub mod record;
pub mod report;
pub mod sampler;
pub mod session;
pub mod shard;
pub mod topology;
pub mod units;
pub mod workload;
