//! pgbench-repl as a library: the binary is a thin shell over these modules.

/// `print!`, `println!`, `eprint!` and `eprintln!` that never panic: when the reader of
/// stdout or stderr has gone (`| head`, a closed terminal), what it did not read is its
/// choice, and the run goes on to put the lab back and finish its files.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

/// `println!` that never panics (see `out!`).
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `eprint!` that never panics (see `out!`).
#[macro_export]
macro_rules! err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($t)*);
    }};
}

/// `eprintln!` that never panics (see `out!`).
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

pub mod cli;
pub mod clock;
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
