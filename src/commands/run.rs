//! `pgbench-repl run WORKLOAD.toml`: the session does the work.

use crate::cli::RunArgs;
use crate::error::usage;
use crate::session::{run_workload, RunRequest, ShardRequest};
use crate::shard::ShardSpec;
use anyhow::Result;

pub async fn run(args: RunArgs) -> Result<()> {
    let shard = match &args.shard {
        Some(text) => {
            let job_index = std::env::var("JOB_COMPLETION_INDEX").ok();
            let spec = ShardSpec::parse(text, job_index.as_deref()).map_err(usage)?;
            Some(ShardRequest {
                spec,
                run_id: args.run_id.clone().filter(|id| !id.trim().is_empty()),
                wait: args.shard_wait,
            })
        }
        None => None,
    };
    run_workload(RunRequest {
        workload: args.workload,
        sets: args.sets,
        duration: args.duration,
        out: args.out,
        quiet: args.quiet,
        lab_dir: args.lab.dir,
        serve: args.serve,
        lag_alert: args.lag_alert,
        shard,
    })
    .await
}
