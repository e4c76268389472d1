//! `pgbench-repl run WORKLOAD.toml`: the session does the work.

use crate::cli::RunArgs;
use crate::session::{run_workload, RunRequest};
use anyhow::Result;

pub async fn run(args: RunArgs) -> Result<()> {
    run_workload(RunRequest {
        workload: args.workload,
        sets: args.sets,
        duration: args.duration,
        out: args.out,
        quiet: args.quiet,
        lab_dir: args.lab.dir,
        serve: args.serve,
        lag_alert: args.lag_alert,
    })
    .await
}
