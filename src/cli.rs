//! The command line: one clap struct per subcommand; doc comments are the help text.

use crate::cluster::ha::HaKind;
use crate::pg::SyncMode;
use crate::units::{parse_duration, parse_rate};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Measure what streaming replication costs: WAL volume, standby lag in bytes and seconds,
/// synchronous commit latency, catch-up after an outage, and failover time and data loss.
#[derive(Debug, Parser)]
#[command(name = "pgbench-repl", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workload (on the lab unless it has a [cluster]) and write its results.
    Run(RunArgs),
    /// Redraw the charts and report.md of a result directory from its files alone.
    Report {
        /// A result directory (results/<workload>/<time>/)
        dir: PathBuf,
    },
    /// Line up two or more runs in one table and overlaid charts; say which differences
    /// exceed the run-to-run noise.
    Compare {
        /// Result directories (two or more)
        #[arg(required = true, num_args = 2..)]
        dirs: Vec<PathBuf>,
        /// Where to write compare.md, compare.json and the charts [default: results/compare/<time>]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Merge the results of a run's shards (`run --shard`) into one: counts added, the HDR
    /// histograms of each second added, so every percentile is that of all the shards'
    /// transactions together.
    Merge {
        /// The shards' result directories, or a directory holding them (shard-0, shard-1, ...)
        #[arg(required = true, num_args = 1..)]
        dirs: Vec<PathBuf>,
        /// Where to write the merged result [default: merged/ beside the shards' directories]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Wait up to this long for every shard to finish (its summary.json final), e.g. 30m;
        /// then merge what is there [default: merge at once]
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        wait: Option<Duration>,
    },
    /// Watch replication with no load: serve /health/db, Prometheus /metrics and a live status
    /// page until Ctrl-C or SIGTERM.
    Monitor(MonitorArgs),
    /// Start, inspect and break the lab: a primary and hot standbys on this machine.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Shape the network link between each standby and the primary.
    #[command(subcommand)]
    Link(LinkCommand),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workload file (see docs/workload-format.md)
    pub workload: PathBuf,
    /// Override a key of the file, e.g. --set load.shoppers.clients=16 (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Override run.duration, e.g. 30s
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Result directory [default: results/<workload>/<YYYYMMDD-HHMMSS>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No progress display on stderr
    #[arg(long, short)]
    pub quiet: bool,
    /// Serve /health/db, Prometheus /metrics and a live status page during the run, e.g.
    /// 127.0.0.1:9898
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<String>,
    /// A standby whose time lag crosses this is a `lag_alert` event (and /health/db answers
    /// 503), e.g. 1s
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub lag_alert: Option<Duration>,
    /// Run shard I of N (from 0): its share of every group's clients and rate. auto/N takes I
    /// from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job). The shards meet in the database
    /// and start together; `merge` adds up their results (docs/scale-out.md).
    #[arg(long, value_name = "I/N", help_heading = "Scale-out")]
    pub shard: Option<String>,
    /// What the shards of one run share [default: the workload's name]
    #[arg(
        long,
        env = "PGBENCH_REPL_RUN_ID",
        value_name = "ID",
        help_heading = "Scale-out"
    )]
    pub run_id: Option<String>,
    /// How long a shard waits for the others to register and get ready
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "5m", help_heading = "Scale-out")]
    pub shard_wait: Duration,
    #[command(flatten)]
    pub lab: LabDir,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// A workload file whose [cluster] to watch (and its run.sample_every) instead of the lab
    pub workload: Option<PathBuf>,
    /// Where to serve /health/db, /metrics and the status page
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9898")]
    pub listen: String,
    /// A standby whose time lag crosses this is a `lag_alert` warning, and /health/db answers
    /// 503 while it lasts, e.g. 1s
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub lag_alert: Option<Duration>,
    /// How often to sample [default: the workload's run.sample_every, else 500ms]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub every: Option<Duration>,
    #[command(flatten)]
    pub lab: LabDir,
}

/// Where the lab lives.
#[derive(Debug, Args, Clone)]
pub struct LabDir {
    /// Lab directory [default: $PGBENCH_REPL_LAB, else ./.pgbench-repl/lab]
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Create the lab if needed and start every node and the link shaper (idempotent).
    Up(UpArgs),
    /// Every node: role, state, sync_state, LSNs, lag, slot retention.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        lab: LabDir,
    },
    /// Print shell exports (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSFILE) for a node:
    /// eval "$(pgbench-repl cluster env primary)"; psql
    Env {
        /// The node [default: the current primary]
        node: Option<String>,
        #[command(flatten)]
        lab: LabDir,
    },
    /// Stop every process of the lab, the link shaper included.
    Down {
        #[command(flatten)]
        lab: LabDir,
    },
    /// Stop the lab and remove its directory.
    Destroy {
        #[command(flatten)]
        lab: LabDir,
    },
    /// Stop a node at once, as a crash (pg_ctl stop -m immediate; in an orchestrated lab,
    /// SIGKILL to the node's agent and its PostgreSQL: nothing restarts it in place).
    Kill {
        node: String,
        #[command(flatten)]
        lab: LabDir,
    },
    /// Promote a standby; the other standbys follow it through their links.
    Promote {
        node: String,
        /// Promote even though the old primary still runs (two primaries: split brain).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        lab: LabDir,
    },
    /// Rewind a former primary with pg_rewind and start it as a standby of the current primary.
    Rejoin {
        node: String,
        #[command(flatten)]
        lab: LabDir,
    },
    /// Start a node that was stopped or killed (in an orchestrated lab, its agent: the
    /// orchestrator rejoins it).
    Start {
        node: String,
        /// Start a former primary that was not rejoined: it comes up as a second primary
        /// (split brain), for drills.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        lab: LabDir,
    },
    /// Ask the orchestrator of an orchestrated lab for a planned switchover, to NODE if named
    /// (pg_autoctl perform switchover / promotion; Patroni's POST /switchover).
    Switchover {
        /// The standby to make the primary [default: the orchestrator's choice]
        node: Option<String>,
        #[command(flatten)]
        lab: LabDir,
    },
    /// Replace a standby with a fresh base backup of the current primary (and a new slot):
    /// for a standby whose slot was lost, or a former primary pg_rewind cannot bring back.
    Rebuild {
        node: String,
        #[command(flatten)]
        lab: LabDir,
    },
    /// Check that every node holds the same data: once every standby has replayed the
    /// primary's position, compare each user table's row count and content hash (in
    /// primary-key order) on every node. Exit 3 when nodes differ.
    Verify {
        /// A workload file whose [cluster] to check instead of the lab
        workload: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        lab: LabDir,
    },
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Number of hot standbys [default: 2]
    #[arg(long, value_name = "N")]
    pub standbys: Option<u32>,
    /// Synchronous replication: async, first:N (FIRST N (...)) or any:N (quorum) [default: async]
    #[arg(long, value_name = "MODE", value_parser = SyncMode::parse)]
    pub sync: Option<SyncMode>,
    /// One-way delay on every standby's link, e.g. 20ms (round trip = 2 x delay)
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub link_delay: Option<Duration>,
    /// Bandwidth of every standby's link, e.g. 10MB or 100mbit (per second); 0 = unlimited
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub link_rate: Option<u64>,
    /// Port of the primary; standbys take the next ones, links 10 above [default: 55432]
    #[arg(long, value_name = "P")]
    pub port: Option<u16>,
    /// When run as root: the OS user that runs the servers [default: postgres]
    #[arg(long, value_name = "USER")]
    pub os_user: Option<String>,
    /// The directory of the PostgreSQL binaries a new lab is made with (initdb, pg_ctl,
    /// postgres, pg_basebackup, pg_rewind), e.g. the one scripts/fetch-postgres.sh prints
    /// [default: PGBENCH_REPL_PG_BINDIR, else what is installed]
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<std::path::PathBuf>,
    /// The PostgreSQL major a new lab runs (14 to 18): /usr/lib/postgresql/N/bin, PATH,
    /// pg_config, then scripts/fetch-postgres.sh's cache
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(10..=99))]
    pub pg_version: Option<u32>,
    /// An orchestrator runs the nodes and decides failovers: pg_auto_failover (a monitor and
    /// pg_autoctl on every node) or patroni (etcd, Patroni on every node, HAProxy in front)
    #[arg(long, value_name = "KIND", value_parser = HaKind::parse, help_heading = "Orchestrator")]
    pub ha: Option<HaKind>,
    /// One of the orchestrator's timeouts, e.g. node_considered_unhealthy_timeout=5s
    /// (pg_auto_failover) or ttl=10s (patroni); repeatable; on a running lab, applied to it
    #[arg(
        long = "ha-setting",
        value_name = "NAME=VALUE",
        help_heading = "Orchestrator"
    )]
    pub ha_settings: Vec<String>,
    #[command(flatten)]
    pub lab: LabDir,
}

#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Every link: delay, rate, paused, cut, connections, bytes.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        lab: LabDir,
    },
    /// Change a link's delay and/or rate.
    Set {
        node: String,
        /// One-way delay, applied in both directions (RTT = 2 x delay)
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        delay: Option<Duration>,
        /// Bytes per second in each direction, e.g. 1MB or 8mbit; 0 = unlimited
        #[arg(long, value_name = "RATE", value_parser = parse_rate)]
        rate: Option<u64>,
        #[command(flatten)]
        lab: LabDir,
    },
    /// Stop forwarding but keep the connections open: a silent network stall.
    Pause {
        node: String,
        #[command(flatten)]
        lab: LabDir,
    },
    /// Forward again after a pause.
    Resume {
        node: String,
        #[command(flatten)]
        lab: LabDir,
    },
    /// Reset the link's connections and refuse new ones: a partition.
    Cut {
        node: String,
        #[command(flatten)]
        lab: LabDir,
    },
    /// Undo a cut (and a pause).
    Heal {
        node: String,
        #[command(flatten)]
        lab: LabDir,
    },
    /// Run the shaper in the foreground (the lab starts it in the background).
    #[command(hide = true)]
    Serve {
        #[command(flatten)]
        lab: LabDir,
    },
}
