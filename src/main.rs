//! pgbench-repl: parse, dispatch, print the error once, map it to the exit code.

use clap::Parser;
use pgbench_repl::cli::{Cli, Command};
use pgbench_repl::commands;
use pgbench_repl::error::exit_code;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The load runs on threads of its own (one per core, exec::workers); this runtime has the
    // recorder, the sampler, the drill timeline and the endpoints: one thread is plenty, and
    // leaves the cores to the load and the servers.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => commands::run::run(args).await,
            Command::Monitor(args) => commands::monitor::monitor(args).await,
            Command::Report { dir } => commands::report::report(&dir),
            Command::Compare { dirs, out } => commands::report::compare(&dirs, out.as_deref()),
            Command::Merge { dirs, out, wait } => {
                commands::merge::merge(&dirs, out.as_deref(), wait).await
            }
            Command::Cluster(cmd) => commands::cluster::run(cmd).await,
            Command::Link(cmd) => commands::link::run(cmd).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            pgbench_repl::errln!("error: {e:#}");
            ExitCode::from(exit_code(&e) as u8)
        }
    }
}
