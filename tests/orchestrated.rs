//! Orchestrated labs (DESIGN section 15): pg_auto_failover and Patroni decide the failover,
//! the run watches for the node that takes writes and measures what the orchestrator did.
//! Real orchestrators (Debian's pg-auto-failover-cli, patroni, etcd-server, haproxy), real
//! PostgreSQL, and what landed in it checked independently of the tool's own counts.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// Orders at 100/s (one row each in `table`), reads on the standbys, and `events`.
fn orders(name: &str, table: &str, duration: &str, extra_run: &str, events: &str) -> String {
    format!(
        r#"
name = "{name}"
[run]
duration = "{duration}"
sample_every = "100ms"
{extra_run}
[setup]
sql = """
CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, customer_id int NOT NULL);
TRUNCATE {table};
CREATE TABLE IF NOT EXISTS products (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO products SELECT g, 'p' || g FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING;
"""
[[load]]
name = "orders"
clients = 4
rate = 100
mix = {{ place_order = 1 }}
[[load]]
name = "browsers"
clients = 2
rate = 50
mix = {{ browse = 1 }}
[[transaction]]
name = "place_order"
sql = "INSERT INTO {table} (customer_id) VALUES ($client_id)"
[[transaction]]
name = "browse"
target = "standby"
params = {{ product = "uniform(1, 1000)" }}
sql = "SELECT name FROM products WHERE id = $product"
{events}
"#
    )
}

/// The orchestrator's view from `cluster status --json`.
fn orchestrator(lab: &TestLab) -> Value {
    let status: Value = serde_json::from_str(&lab.ok(&["cluster", "status", "--json"])).unwrap();
    status["orchestrator"].clone()
}

fn primary_now(lab: &TestLab) -> String {
    orchestrator(lab)["primary"]
        .as_str()
        .expect("the orchestrator names a primary")
        .to_string()
}

/// Every node's agent runs and the orchestrator has settled (pg_auto_failover: reported =
/// assigned, primary or secondary; Patroni: a leader and replicas that stream).
fn settled(lab: &TestLab) -> bool {
    let o = orchestrator(lab);
    let nodes = o["nodes"].as_array().cloned().unwrap_or_default();
    o["primary"].is_string()
        && nodes.len() == 3
        && nodes.iter().all(|n| {
            n["agent_running"] == true
                && match o["kind"].as_str() {
                    Some("pg_auto_failover") => {
                        n["role"] == n["state"]
                            && (n["role"] == "primary" || n["role"] == "secondary")
                    }
                    _ => n["state"] == "running" || n["state"] == "streaming",
                }
        })
}

/// Rows in `table` on `node`, counted by the test itself.
async fn rows(lab: &TestLab, node: &str, table: &str) -> i64 {
    lab.connect(node)
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// The runbook's steps of a run, in order.
fn steps(s: &Value) -> Vec<String> {
    s["drills"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["what"].as_str().unwrap().to_string())
        .collect()
}

/// `obj[key]` as a number, or a panic that shows the whole object.
fn num(obj: &Value, key: &str) -> f64 {
    obj[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {obj}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_auto_failover_decides_the_failover_rejoins_switches_over_and_refuses_without_a_candidate(
) {
    let lab = TestLab::up(&[
        "--ha",
        "pg_auto_failover",
        "--ha-setting",
        "node_considered_unhealthy_timeout=5s",
        "--ha-setting",
        "primary_demote_timeout=5s",
        "--ha-setting",
        "health_check_period=1s",
        "--ha-setting",
        "health_check_timeout=1s",
        "--ha-setting",
        "health_check_max_retries=1",
        "--ha-setting",
        "health_check_retry_delay=500ms",
    ]);
    let o = orchestrator(&lab);
    assert_eq!(o["kind"], "pg_auto_failover");
    assert_eq!(o["settings"]["node_considered_unhealthy_timeout"], "5s");
    assert_eq!(o["primary"], "primary");
    // Listening on 127.0.0.1 only, SCRAM everywhere: no password, no connection.
    let mut nopw = tokio_postgres::Config::new();
    nopw.host("127.0.0.1")
        .port(lab.port)
        .user("postgres")
        .dbname("postgres");
    assert!(nopw.connect(tokio_postgres::NoTls).await.is_err());
    let hba: String = lab
        .connect("primary")
        .await
        .query_one(
            "SELECT string_agg(DISTINCT auth_method, ',') FROM pg_hba_file_rules",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(hba, "scram-sha-256");

    // The orchestrator decides: a workload's own promote is refused.
    let promote = workload_file(
        lab.tmp.path(),
        "promote",
        &orders(
            "promote",
            "o_promote",
            "5s",
            "",
            "[[event]]\nat = \"1s\"\naction = \"promote\"\n",
        ),
    );
    let (out, _) = lab.run(promote.to_str().unwrap(), "promote", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("run by pg_auto_failover"),
        "{}",
        stderr(&out)
    );

    // 1. Kill the primary under orders; start it again 22 s later.
    let text = orders(
        "paf-failover",
        "o_failover",
        "36s",
        "verify = true",
        "[[event]]\nat = \"4s\"\naction = \"kill\"\ntarget = \"primary\"\nfor = \"22s\"\n",
    );
    let w = workload_file(lab.tmp.path(), "failover", &text);
    let (s, dir) = lab.run_ok(w.to_str().unwrap(), "failover", &[]);
    let f = &s["drills"]["failover"];
    assert_eq!(f["decided_by"], "pg_auto_failover", "{f}");
    let promoted = f["promoted"]
        .as_str()
        .expect("a standby was promoted")
        .to_string();
    assert!(promoted.starts_with("standby"), "{promoted}");
    let (rto, detection) = (num(f, "rto_s"), num(f, "detection_s"));
    assert_eq!(f["detection_setting"], "node_considered_unhealthy_timeout");
    assert!(
        (5.0..=5.0 + 15.0).contains(&rto),
        "rto_s {rto} against a 5 s detection timeout"
    );
    assert!(
        detection > 0.0 && detection < rto,
        "detection {detection}, rto {rto}"
    );
    assert!(
        f["promotion_s"].is_number() && f["reconnect_s"].is_number(),
        "{f}"
    );
    assert_eq!(
        f["lost"], 0,
        "synchronous by default: nothing acknowledged is lost"
    );
    let acknowledged = f["acknowledged"].as_i64().unwrap();
    assert!(acknowledged > 1000, "{f}");
    // The tool's count against the table itself, on the new primary.
    let on_new = rows(&lab, &promoted, "o_failover").await;
    assert_eq!(
        on_new,
        acknowledged + f["unknown_committed"].as_i64().unwrap(),
        "every acknowledged order (and the unknown ones that committed) is on {promoted}"
    );
    let steps = steps(&s);
    assert!(
        steps.iter().any(|s| s == "rejoin"),
        "the old primary rejoined: {steps:?}"
    );
    assert_eq!(s["verify"]["consistent"], true, "{}", s["verify"]);
    assert_eq!(s["cluster"]["ha"]["kind"], "pg_auto_failover");
    assert!(s["cluster"]["writes_via"].as_str().unwrap().contains(','));
    let events = std::fs::read_to_string(dir.join("events.csv")).unwrap();
    assert!(events.contains("decided by pg_auto_failover"), "{events}");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("node_considered_unhealthy_timeout"),
        "{report}"
    );
    assert!(
        wait_until(Duration::from_secs(60), || settled(&lab)),
        "{}",
        orchestrator(&lab)
    );
    // And `cluster verify` agrees, asked on its own.
    let verify = lab.cli(&["cluster", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));

    // 2. A planned switchover loses nothing.
    let before = primary_now(&lab);
    let w = workload_file(
        lab.tmp.path(),
        "switchover",
        &orders(
            "paf-switchover",
            "o_switch",
            "14s",
            "",
            "[[event]]\nat = \"3s\"\naction = \"switchover\"\n",
        ),
    );
    let (s, _) = lab.run_ok(w.to_str().unwrap(), "switchover", &[]);
    let sw = &s["drills"]["switchover"];
    assert_eq!(sw["from"], before.as_str(), "{sw}");
    assert_ne!(sw["to"], before.as_str(), "{sw}");
    assert_eq!(sw["lost"], 0, "{sw}");
    let gap = num(sw, "write_gap_s");
    assert!(gap > 0.0 && gap < 20.0, "{sw}");
    assert_eq!(primary_now(&lab), sw["to"].as_str().unwrap());
    assert!(wait_until(Duration::from_secs(60), || settled(&lab)));

    // 3. The same lab as "any cluster": the multi-host string, a kill by command, the
    // failover only observed.
    let primary = primary_now(&lab);
    let state = lab.state();
    let nodes = state["nodes"].as_array().unwrap();
    let all_hosts: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n["port"]))
        .collect();
    let standbys: Vec<String> = nodes
        .iter()
        .filter(|n| n["name"] != primary.as_str())
        .map(|n| format!("\"postgres://postgres@127.0.0.1:{}/postgres\"", n["port"]))
        .collect();
    let cluster = format!(
        "[cluster]\nprimary = \"postgres://postgres@{}/postgres?target_session_attrs=read-write&connect_timeout=2\"\nstandbys = [{}]\n",
        all_hosts.join(","),
        standbys.join(", ")
    );
    let events = format!(
        "[[event]]\nat = \"4s\"\naction = \"kill\"\ntarget = \"primary\"\ncommand = \"{BIN} cluster kill {primary} --dir {dir}\"\nundo = \"{BIN} cluster start {primary} --dir {dir}\"\nfor = \"20s\"\n",
        dir = lab.dir_arg()
    );
    let text = orders("observed", "o_observed", "30s", "", &events) + &cluster;
    let w = workload_file(lab.tmp.path(), "observed", &text);
    let out_dir = lab.tmp.path().join("results/observed");
    let out = Command::new(BIN)
        .args([
            "run",
            w.to_str().unwrap(),
            "--quiet",
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .env("PGPASSFILE", lab.dir.join("credentials/pgpass"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let s = summary(&out_dir);
    let f = &s["drills"]["failover"];
    assert_eq!(f["decided_by"], "observed", "{f}");
    assert!(
        f["promoted"]
            .as_str()
            .is_some_and(|p| p.starts_with("standby")),
        "{f}"
    );
    assert!(
        f["detection_s"].is_null(),
        "no record of when the promotion began: {f}"
    );
    let rto = num(f, "rto_s");
    assert!((5.0..=25.0).contains(&rto), "{f}");
    assert_eq!(f["lost"], 0, "{f}");
    assert!(
        wait_until(Duration::from_secs(90), || settled(&lab)),
        "{}",
        orchestrator(&lab)
    );

    // 4. Both standbys stalled, then the primary killed: no candidate, no promotion, and the
    // run says why.
    let primary = primary_now(&lab);
    let others: Vec<String> = ["primary", "standby1", "standby2"]
        .iter()
        .filter(|n| **n != primary)
        .map(|n| n.to_string())
        .collect();
    let mut events = String::new();
    for s in &others {
        events += &format!(
            "[[event]]\nat = \"2s\"\naction = \"pause_link\"\ntarget = \"{s}\"\nfor = \"60s\"\n"
        );
    }
    events += &format!("[[event]]\nat = \"4s\"\naction = \"kill\"\ntarget = \"{primary}\"\n");
    let w = workload_file(
        lab.tmp.path(),
        "stalled",
        &orders("paf-stalled", "o_stalled", "22s", "", &events),
    );
    let (out, dir) = lab.run(w.to_str().unwrap(), "stalled", &[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    let s = summary(&dir);
    let f = &s["drills"]["failover"];
    let events = std::fs::read_to_string(dir.join("events.csv")).unwrap();
    assert!(f["promoted"].is_null(), "{f}\n{events}");
    assert!(f["waited_s"].is_number(), "{f}\n{events}\n{log}");
    assert!(f["rto_s"].is_null(), "no RTO the run did not see: {f}");
    assert!(num(f, "waited_s") >= 15.0, "{f}");
    // Every write that failed after the kill counts, though the kill's own event reached the
    // recorder after them.
    let t = &s["transactions"]["place_order"];
    assert_eq!(
        f["writes_failed_during_outage"].as_u64(),
        Some(t["failed"].as_u64().unwrap() + t["unknown"].as_u64().unwrap()),
        "{f}\n{t}"
    );
    assert!(f["writes_failed_during_outage"].as_u64() > Some(0), "{f}");
    let why = f["no_promotion_reason"].as_str().unwrap();
    assert!(why.contains("promoted no standby"), "{why}");
    assert!(others.iter().all(|o| why.contains(o.as_str())), "{why}");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("No standby was promoted"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patroni_fails_over_through_haproxy_and_switches_over() {
    let lab = TestLab::up(&[
        "--ha",
        "patroni",
        "--ha-setting",
        "ttl=10s",
        "--ha-setting",
        "loop_wait=2s",
        "--ha-setting",
        "retry_timeout=4s",
    ]);
    let o = orchestrator(&lab);
    assert_eq!(o["kind"], "patroni");
    assert_eq!(o["settings"]["ttl"], "10s");
    let write_port = lab.port + 12;
    // HAProxy's write port leads to the leader.
    let via_proxy = connect(write_port, &lab.password()).await;
    let in_recovery: bool = via_proxy
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!in_recovery);
    drop(via_proxy);

    let text = orders(
        "patroni-failover",
        "o_failover",
        "28s",
        "verify = true",
        "[[event]]\nat = \"4s\"\naction = \"kill\"\ntarget = \"primary\"\nfor = \"16s\"\n",
    );
    let w = workload_file(lab.tmp.path(), "failover", &text);
    let (s, _) = lab.run_ok(w.to_str().unwrap(), "failover", &[]);
    let f = &s["drills"]["failover"];
    assert_eq!(f["decided_by"], "patroni", "{f}");
    assert_eq!(f["detection_setting"], "ttl");
    let promoted = f["promoted"]
        .as_str()
        .expect("a replica was promoted")
        .to_string();
    for part in ["detection_s", "promotion_s", "reconnect_s"] {
        assert!(f[part].as_f64().is_some_and(|v| v >= 0.0), "{part}: {f}");
    }
    let rto = num(f, "rto_s");
    assert!(rto > 2.0 && rto <= 10.0 + 15.0, "rto_s {rto} with ttl 10 s");
    assert!(
        s["cluster"]["writes_via"]
            .as_str()
            .unwrap()
            .contains(&format!(":{write_port}")),
        "writes go through HAProxy: {}",
        s["cluster"]
    );
    // Asynchronous: what was lost is what the new primary lacks, counted by the test.
    let acknowledged = f["acknowledged"].as_i64().unwrap();
    let lost = f["lost"].as_i64().expect("the keys were read");
    let on_new = rows(&lab, &promoted, "o_failover").await;
    assert_eq!(
        acknowledged - lost + f["unknown_committed"].as_i64().unwrap(),
        on_new,
        "{f}"
    );
    let steps = steps(&s);
    assert!(steps.iter().any(|s| s == "rejoin"), "{steps:?}");
    assert_eq!(s["verify"]["consistent"], true, "{}", s["verify"]);
    assert!(
        wait_until(Duration::from_secs(60), || settled(&lab)),
        "{}",
        orchestrator(&lab)
    );

    // A switchover to the original primary, named.
    let w = workload_file(
        lab.tmp.path(),
        "switchover",
        &orders(
            "patroni-switchover",
            "o_switch",
            "14s",
            "",
            "[[event]]\nat = \"3s\"\naction = \"switchover\"\ntarget = \"primary\"\n",
        ),
    );
    let (s, _) = lab.run_ok(w.to_str().unwrap(), "switchover", &[]);
    let sw = &s["drills"]["switchover"];
    assert_eq!(sw["from"], promoted.as_str(), "{sw}");
    assert_eq!(sw["to"], "primary", "{sw}");
    assert_eq!(sw["lost"], 0, "{sw}");
    assert!(num(sw, "write_gap_s") > 0.0, "{sw}");
    assert_eq!(primary_now(&lab), "primary");
}
