//! `pgbench-repl monitor`: the session's monitor does the work.

use crate::cli::MonitorArgs;
use crate::session::monitor::{monitor as run_monitor, MonitorRequest};
use anyhow::Result;

pub async fn monitor(args: MonitorArgs) -> Result<()> {
    run_monitor(MonitorRequest {
        workload: args.workload,
        lab_dir: args.lab.dir,
        listen: args.listen,
        lag_alert: args.lag_alert,
        every: args.every,
    })
    .await
}
