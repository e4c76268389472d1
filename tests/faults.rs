//! Faults during a run are measurements: SIGTERM and SIGKILL keep what was measured, a hung
//! shell command is ended at its timeout, Ctrl-C always ends the run, and a run that fails
//! part-way puts the lab back.

mod common;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pgbench_repl::record::summary::RunSummary;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn steady(name: &str, duration: &str, extra: &str) -> String {
    format!(
        r#"name = "{name}"
[run]
duration = "{duration}"
[setup]
sql = "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (id bigint PRIMARY KEY)"
[[load]]
name = "w"
clients = 4
rate = 200
mix = {{ ins = 1 }}
[[transaction]]
name = "ins"
params = {{ id = "seq()" }}
sql = "INSERT INTO {name} (id) VALUES ($id)"
{extra}"#
    )
}

/// Start `run` in the background against `lab`.
fn spawn_run(lab: &TestLab, workload: &str, out: &std::path::Path) -> Child {
    Command::new(BIN)
        .args(["run", workload, "--quiet", "--out"])
        .arg(out)
        .args(["--dir", lab.dir_arg()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait until `path` exists (the run has started measuring).
fn wait_for(path: &std::path::Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_summary(dir: &std::path::Path) -> RunSummary {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("summary.json: {e}\n{text}"))
}

async fn rows(lab: &TestLab, table: &str) -> u64 {
    let c = lab.connect("primary").await;
    let n: i64 = c
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0);
    n as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_and_sigkill_keep_what_was_measured() {
    let lab = TestLab::up(&["--standbys", "1"]);
    // SIGTERM: every file finished, exit 143, the counts are the rows.
    let w = workload_file(lab.tmp.path(), "term", &steady("term", "30s", ""));
    let dir = lab.tmp.path().join("term");
    let child = spawn_run(&lab, w.to_str().unwrap(), &dir);
    wait_for(&dir.join("intervals.csv"), Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    assert!(stderr(&out).contains("SIGTERM"), "{}", stderr(&out));
    let s = read_summary(&dir);
    assert!(s.interrupted);
    let ins = &s.transactions["ins"];
    let in_db = rows(&lab, "term").await;
    assert!(
        ins.ok <= in_db && in_db <= ins.ok + ins.unknown,
        "{} ok, {} unknown, {in_db} rows",
        ins.ok,
        ins.unknown
    );
    assert!(ins.ok > 300, "{} in about 3 s at 200/s", ins.ok);
    assert!(dir.join("report.md").is_file() && dir.join("charts/throughput.png").is_file());

    // SIGKILL: nothing runs after it, yet summary.json is whole and at most about a second
    // (plus the transactions in flight) behind the database.
    let w = workload_file(lab.tmp.path(), "killed", &steady("killed", "30s", ""));
    let dir = lab.tmp.path().join("killed");
    let child = spawn_run(&lab, w.to_str().unwrap(), &dir);
    wait_for(&dir.join("summary.json"), Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(2500));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), None, "killed by a signal");
    let s = read_summary(&dir);
    assert!(s.interrupted, "a checkpoint says the run did not finish");
    let in_db = rows(&lab, "killed").await;
    assert!(s.total.ok <= in_db, "{} counted, {in_db} rows", s.total.ok);
    assert!(
        in_db - s.total.ok <= 200 * 2,
        "summary.json is {} transactions behind the database (more than 2 s at 200/s)",
        in_db - s.total.ok
    );
    assert!(s.total.ok >= 200, "{} ok after 2.5 s", s.total.ok);
    let out = cli(&["report", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.join("report.md").is_file() && dir.join("charts/lag_seconds.png").is_file());

    // A reader that went away (`| head`): no panic, the run finishes and exits 0.
    let w = workload_file(lab.tmp.path(), "piped", &steady("piped", "1s", ""));
    let dir = lab.tmp.path().join("piped");
    let mut child = spawn_run(&lab, w.to_str().unwrap(), &dir);
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(dir.join("summary.json").is_file());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_exec_is_ended_at_its_timeout_and_ctrl_c_always_ends_the_run() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let marker = lab.tmp.path().join("hung-marker");
    let hung = format!(
        "[[event]]\nat = \"500ms\"\naction = \"exec\"\ncommand = \"sleep 300 # {}\"\ntimeout = \"1s\"\n",
        marker.display()
    );
    let w = workload_file(lab.tmp.path(), "hung", &steady("hung", "3s", &hung));
    let started = Instant::now();
    let (summary, dir) = lab.run_ok(w.to_str().unwrap(), "hung", &[]);
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    let events = std::fs::read_to_string(dir.join("events.csv")).unwrap();
    assert!(
        events.contains("exec") && events.contains("did not finish within 1s and was killed"),
        "{events}"
    );
    assert!(
        processes_mentioning(&marker).is_empty(),
        "the hung command still runs"
    );
    assert!(summary["transactions"]["ins"]["ok"].as_u64().unwrap() > 400);

    // A command with a long timeout, hung when Ctrl-C comes: the run still ends at once.
    let hung = format!(
        "[[event]]\nat = \"200ms\"\naction = \"exec\"\ncommand = \"sleep 300 # {}\"\ntimeout = \"10m\"\n",
        marker.display()
    );
    let w = workload_file(lab.tmp.path(), "hung2", &steady("hung2", "60s", &hung));
    let dir = lab.tmp.path().join("hung2");
    let child = spawn_run(&lab, w.to_str().unwrap(), &dir);
    wait_for(&dir.join("intervals.csv"), Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !processes_mentioning(&marker).is_empty(),
        "the command should be running"
    );
    let signalled = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        signalled.elapsed() < Duration::from_secs(20),
        "{:?}",
        signalled.elapsed()
    );
    let events = std::fs::read_to_string(dir.join("events.csv")).unwrap();
    assert!(events.contains("abandoned: the run stopped"), "{events}");
    assert!(
        processes_mentioning(&marker).is_empty(),
        "the hung command still runs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_matrix_variant_puts_the_lab_back() {
    let lab = TestLab::up(&["--standbys", "1", "--link-delay", "2ms"]);
    // The first combination's drill kills the primary, so the second cannot start.
    let text = steady(
        "mx",
        "2s",
        "[matrix]\nlink_delay = [\"20ms\", \"40ms\"]\nsync = [\"first:1\"]\n[[event]]\nat = \"1s\"\naction = \"kill\"\ntarget = \"primary\"\n",
    );
    let w = workload_file(lab.tmp.path(), "mx", &text);
    let (out, _) = lab.run(w.to_str().unwrap(), "mx", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let links: serde_json::Value =
        serde_json::from_str(&lab.ok(&["link", "status", "--json"])).unwrap();
    for l in links.as_array().unwrap() {
        if l["node"] == "primary" {
            continue; // carries nothing while its node is the primary
        }
        assert_eq!(l["delay_us"], 2000, "{l}");
        assert_eq!(l["paused"], false);
    }
    assert_eq!(lab.state()["sync"]["kind"], "async");
    // The sync mode is back in the server's configuration file too.
    let conf = std::fs::read_to_string(lab.dir.join("data/primary/pgbench-repl.conf")).unwrap();
    assert!(conf.contains("synchronous_standby_names = ''"), "{conf}");
}
