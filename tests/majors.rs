//! PostgreSQL majors (DESIGN section 17): the version-sensitive paths on 14 and 18, with official
//! builds fetched by scripts/fetch-postgres.sh (the system's 15 runs every other test file):
//! the lab and `cluster status`, the sampler's WAL, FPI and lag figures and the heartbeat,
//! reads on standbys, a network interruption, a failover with its RPO checked in the database,
//! the pg_rewind rejoin, `cluster verify`, and the monitor's /metrics.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The bin directory of `major`, fetched (once, then cached) by the project's own script.
/// No major is skipped: a fetch that fails fails the test with the script's message.
fn bindir(major: u32) -> String {
    let out = Command::new("bash")
        .arg(repo_file("scripts/fetch-postgres.sh"))
        .arg(major.to_string())
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "scripts/fetch-postgres.sh {major} failed:\n{}",
        stderr(&out)
    );
    let dir = stdout(&out).lines().last().unwrap_or_default().to_string();
    assert!(
        std::path::Path::new(&dir).join("postgres").is_file(),
        "{dir}"
    );
    dir
}

struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Orders written with keyed ids, reads on the standbys, standby1's link paused for 2 s, then
/// the primary killed, the most advanced standby promoted (a named one may be behind the other,
/// which then cannot follow it without a rewind) and the old primary rewound and rejoined.
fn drill(name: &str) -> String {
    format!(
        r#"name = "{name}"
[run]
duration = "14s"
warmup = "1s"
sample_every = "100ms"
verify = true
[setup]
sql = "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (id bigint PRIMARY KEY, payload text)"
[[load]]
name = "w"
clients = 4
rate = 300
mix = {{ ins = 1 }}
[[load]]
name = "r"
clients = 2
rate = 100
mix = {{ look = 1 }}
[[transaction]]
name = "ins"
params = {{ id = "seq()", payload = "text(200)" }}
sql = "INSERT INTO {name} (id, payload) VALUES ($id, $payload)"
[[transaction]]
name = "look"
target = "standby"
params = {{ id = "uniform(1, 1000)" }}
sql = "SELECT payload FROM {name} WHERE id = $id"
[[event]]
at = "1s"
action = "pause_link"
target = "standby1"
for = "2s"
[[event]]
at = "6s"
action = "kill"
target = "primary"
[[event]]
at = "6.5s"
action = "promote"
[[event]]
at = "8s"
action = "rejoin"
target = "primary"
"#
    )
}

async fn a_major_works(major: u32) {
    let bin = bindir(major);
    let lab = TestLab::up(&["--pg-bin", &bin]);
    let want = format!("{major}.");

    // cluster status and the lab's state name the major on every node.
    let status: Value = serde_json::from_str(&lab.ok(&["cluster", "status", "--json"])).unwrap();
    for n in status["nodes"].as_array().unwrap() {
        let v = n["version"].as_str().unwrap_or_default();
        assert!(v.starts_with(&want), "{} runs {v:?}: {n}", n["name"]);
    }
    assert!(
        lab.state()["server_version"]
            .as_str()
            .unwrap()
            .contains(&format!("(PostgreSQL) {major}.")),
        "{}",
        lab.state()
    );
    let text = lab.ok(&["cluster", "status"]);
    assert!(text.contains("version"), "{text}");

    // The monitor reads every node of this major.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _mon = Bg(Command::new(env!("CARGO_BIN_EXE_pgbench-repl"))
        .args(["monitor", "--dir", lab.dir_arg(), "--listen", &listen])
        .args(["--every", "200ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    assert!(wait_until(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    let (code, body) = http_get(port, "/metrics");
    assert_eq!(code, 200, "{body}");
    for node in ["primary", "standby1", "standby2"] {
        let role = if node == "primary" {
            "primary"
        } else {
            "standby"
        };
        let line = format!("pgbench_repl_node_up{{node=\"{node}\",role=\"{role}\"}} 1");
        assert!(body.contains(&line), "no `{line}` in:\n{body}");
    }
    assert!(
        body.contains("pgbench_repl_standby_lag_bytes{standby=\"standby1\""),
        "{body}"
    );
    let (code, health) = http_get(port, "/health/db");
    assert_eq!(code, 200, "{health}");
    drop(_mon);

    // The drill: sampler, heartbeat, reads on standbys, interruption, failover, rejoin, verify.
    let name = format!("pg{major}");
    let w = workload_file(lab.tmp.path(), &name, &drill(&name));
    let (s, dir) = lab.run_ok(w.to_str().unwrap(), &name, &[]);
    for (node, v) in s["server"]["nodes"].as_object().unwrap() {
        assert!(v.as_str().unwrap().starts_with(&want), "{node}: {v}");
    }
    assert!(
        s["server"]["nodes"].as_object().unwrap().len() == 3,
        "{}",
        s["server"]
    );
    let wal = &s["wal"];
    assert!(f(&wal["bytes_per_tx"]) > 200.0, "{wal}");
    assert!(f(&wal["records"]) > 1000.0, "{wal}");
    assert!(wal["fpi"].as_i64().is_some(), "{wal}");
    let share = f(&wal["fpi_share"]);
    assert!((0.0..=1.0).contains(&share), "{wal}");
    assert!(f(&wal["heartbeat_bytes"]) > 0.0, "{wal}");
    let ins = &s["transactions"]["ins"];
    let look = &s["transactions"]["look"];
    assert!(ins["ok"].as_u64().unwrap() > 1000, "{ins}");
    assert!(
        look["ok"].as_u64().unwrap() > 300,
        "reads on the standbys: {look}"
    );
    // The paused standby's lag: more than a second by both methods; the other's small.
    let sb1 = &s["standbys"]["standby1"];
    assert!(f(&sb1["lag_seconds"]["max"]) > 1.0, "{sb1}");
    assert!(f(&sb1["heartbeat_lag_ms"]["max"]) > 1000.0, "{sb1}");
    assert!(f(&sb1["lag_bytes"]["max"]) > 100_000.0, "{sb1}");
    let i = &s["drills"]["interruption"]["standby1"];
    assert!((f(&i["outage_s"]) - 2.0).abs() < 0.3, "{i}");
    assert!(f(&i["catch_up_s"]) >= 0.0, "{i}");
    assert!(f(&i["wal_accumulated_bytes"]) > 100_000.0, "{i}");
    // The failover: the RPO by keys agrees with what the new primary holds.
    let fo = &s["drills"]["failover"];
    let promoted_name = fo["promoted"].as_str().unwrap_or_default().to_string();
    assert!(promoted_name.starts_with("standby"), "{fo}");
    assert_eq!(fo["timeline"], 2, "{fo}");
    assert!(f(&fo["rto_s"]) < 5.0, "{fo}");
    let promoted = lab.connect(&promoted_name).await;
    let present: i64 = promoted
        .query_one("SELECT count(*) FROM pgbench_repl_keys", &[])
        .await
        .unwrap()
        .get(0);
    let acknowledged = fo["acknowledged"].as_u64().unwrap();
    let lost = fo["lost"].as_u64().unwrap();
    let unknown_committed = fo["unknown_committed"].as_u64().unwrap();
    assert_eq!(
        present as u64,
        acknowledged - lost + unknown_committed,
        "{fo}"
    );
    let steps: Vec<&str> = s["drills"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["what"].as_str().unwrap())
        .collect();
    assert!(steps.contains(&"rejoin"), "{steps:?}");
    assert_eq!(s["verify"]["consistent"], true, "{}", s["verify"]);
    // The rewound old primary streams from the new one; `cluster verify` agrees.
    let streaming: i64 = promoted
        .query_one(
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(streaming, 2);
    let out = lab.cli(&["cluster", "verify"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains(&format!("PostgreSQL {major}.")), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_14() {
    a_major_works(14).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_18() {
    a_major_works(18).await;
}

#[test]
fn a_bin_directory_that_lacks_a_binary_is_named_with_what_it_lacks() {
    let tmp = temp_dir();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for b in ["initdb", "pg_ctl", "postgres"] {
        std::fs::write(bin.join(b), "#!/bin/sh\n").unwrap();
    }
    let lab = tmp.path().join("lab");
    let out = cli(&[
        "cluster",
        "up",
        "--dir",
        lab.to_str().unwrap(),
        "--pg-bin",
        bin.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(bin.to_str().unwrap()) && err.contains("lacks pg_basebackup, pg_rewind"),
        "{err}"
    );
    assert!(!lab.join("state.json").exists());
    let out = cli(&[
        "cluster",
        "up",
        "--dir",
        lab.to_str().unwrap(),
        "--pg-version",
        "11",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no PostgreSQL 11 server binaries")
            && stderr(&out).contains("fetches 14 to 18"),
        "{}",
        stderr(&out)
    );
}
