//! pgbench-repl as a library: the binary is a thin shell over these modules.

pub mod cli;
pub mod config;
pub mod workload;
pub mod cluster;
pub mod commands;
pub mod error;
pub mod link;
pub mod units;
