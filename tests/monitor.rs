//! The monitor (DESIGN section 12) on real labs: /health/db, /metrics read by the Prometheus
//! project's own parser and scraped by a real Prometheus server, agreement with
//! postgres_exporter, the status page in headless Chromium, and the compose alert rules.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A background process that is killed when dropped.
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn monitor(lab: &TestLab, port: u16, extra: &[&str]) -> Bg {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "monitor",
        "--dir",
        lab.dir_arg(),
        "--listen",
        &listen,
        "--every",
        "200ms",
    ];
    args.extend_from_slice(extra);
    let child = Command::new(BIN)
        .args(&args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "the monitor never listened"
    );
    Bg(child)
}

fn health(port: u16) -> (u16, Value) {
    let (code, body) = http_get(port, "/health/db");
    (
        code,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

/// /metrics through prometheus_client's OpenMetrics parser: (name, labels, value) samples.
fn metrics(port: u16) -> Vec<Value> {
    let (code, body) = http_get(port, "/metrics");
    assert_eq!(code, 200);
    let mut child = Command::new("python3")
        .arg(repo_file("tests/py/parse_metrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the exposition does not parse: {}\n{body}",
        stderr(&out)
    );
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .and_then(|s| s["value"].as_f64())
}

/// Insert about `kb` kB of WAL on the primary.
async fn write(lab: &TestLab, kb: usize) {
    let c = lab.connect("primary").await;
    c.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS mon (pad text); INSERT INTO mon SELECT repeat('x', 1000) FROM generate_series(1, {kb})"
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_metrics_follow_a_paused_and_a_killed_standby() {
    let lab = TestLab::up(&[]);
    let port = free_port();
    let mut mon = monitor(&lab, port, &["--lag-alert", "1s"]);
    // The very first answer, as soon as the port is open: a healthy lab, looked at before
    // anything is claimed about it (no 503 "down" with an empty primary).
    let first = health(port);
    assert_eq!(first.0, 200, "the first answer: {first:?}");
    let (_, h) = health(port);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["primary"]["node"], "primary");
    assert_eq!(h["primary"]["timeline"], 1);
    assert_eq!(h["replicas"].as_array().unwrap().len(), 2);
    assert_eq!(h["split_brain"], false);
    let m = metrics(port);
    assert_eq!(
        sample(
            &m,
            "pgbench_repl_node_up",
            &[("node", "standby1"), ("role", "standby")]
        ),
        Some(1.0)
    );

    // A paused link under writes: lag grows in /metrics; over the alert /health/db says 503.
    lab.ok(&["link", "pause", "standby1"]);
    let mut lags = Vec::new();
    for _ in 0..4 {
        write(&lab, 300).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let m = metrics(port);
        lags.push((
            sample(
                &m,
                "pgbench_repl_standby_lag_seconds",
                &[("standby", "standby1")],
            )
            .unwrap(),
            sample(
                &m,
                "pgbench_repl_standby_lag_bytes",
                &[("standby", "standby1"), ("position", "replay")],
            )
            .unwrap(),
        ));
    }
    assert!(
        lags.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 > w[0].1),
        "lag did not grow: {lags:?}"
    );
    let (code, h) = health(port);
    assert_eq!((code, h["status"].as_str()), (503, Some("degraded")), "{h}");
    assert!(h["lag_seconds"].as_f64().unwrap() > 1.0, "{h}");
    lab.ok(&["link", "resume", "standby1"]);
    assert!(
        wait_until(Duration::from_secs(15), || health(port).0 == 200),
        "{:?}",
        health(port)
    );
    let m = metrics(port);
    assert!(sample(&m, "pgbench_repl_wal_bytes_total", &[]).unwrap() > 1e6);
    assert!(sample(
        &m,
        "pgbench_repl_slot_retained_bytes",
        &[("slot", "standby1"), ("wal_status", "reserved")]
    )
    .is_some());

    // A standby that is down makes it degraded.
    lab.ok(&["cluster", "kill", "standby2"]);
    assert!(wait_until(Duration::from_secs(15), || health(port).1
        ["status"]
        == "degraded"));
    let (code, h) = health(port);
    assert_eq!(code, 503);
    let s2 = h["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["node"] == "standby2")
        .unwrap()
        .clone();
    assert_eq!(s2["ok"], false, "{h}");
    let m = metrics(port);
    assert_eq!(
        sample(&m, "pgbench_repl_node_up", &[("node", "standby2")]),
        Some(0.0)
    );
    // The alert and its end were warnings on stderr, naming the kind and the node.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(mon.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let out = std::mem::replace(&mut mon.0, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "monitor ends cleanly on SIGTERM"
    );
    let err = stderr(&out);
    assert!(
        err.contains("warning:") && err.contains("lag_alert standby1"),
        "{err}"
    );
    assert!(err.contains("lag_ok standby1"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_it_and_our_byte_lag_agrees_with_postgres_exporter() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let port = free_port();
    let _mon = monitor(&lab, port, &[]);
    // postgres_exporter against the same primary.
    let exporter_port = free_port();
    let dsn = format!(
        "postgresql://postgres:{}@127.0.0.1:{}/postgres?sslmode=disable",
        lab.password(),
        lab.node_port("primary")
    );
    let _exporter = Bg(Command::new("prometheus-postgres-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
        .env("DATA_SOURCE_NAME", dsn)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-postgres-exporter (apt-get install prometheus-postgres-exporter)"));
    // A real Prometheus server scraping both every second.
    let prom_port = free_port();
    let conf = lab.tmp.path().join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: pgbench-repl\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n  - job_name: postgres\n    static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n"
        ),
    )
    .unwrap();
    let _prom = Bg(Command::new("prometheus")
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            lab.tmp.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (apt-get install prometheus)"));
    lab.ok(&["link", "pause", "standby1"]);
    write(&lab, 2000).await;
    // The paused standby's lag, as Prometheus stored it.
    let query = "/api/v1/query?query=pgbench_repl_standby_lag_seconds";
    let mut got = Value::Null;
    assert!(
        wait_until(Duration::from_secs(30), || {
            let (code, body) = http_get(prom_port, query);
            got = serde_json::from_str(&body).unwrap_or(Value::Null);
            code == 200
                && got["data"]["result"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty())
        }),
        "Prometheus never stored the lag: {got}"
    );
    let r = &got["data"]["result"][0];
    assert_eq!(r["metric"]["standby"], "standby1", "{got}");
    assert!(
        r["value"][1].as_str().unwrap().parse::<f64>().unwrap() > 0.0,
        "{got}"
    );
    // Our byte lag and postgres_exporter's, read at the same moment: the link is paused and
    // nothing writes, so both are the same number (within one sample of WAL, which is none).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ours = sample(
        &metrics(port),
        "pgbench_repl_standby_lag_bytes",
        &[("standby", "standby1"), ("position", "replay")],
    )
    .unwrap();
    let (_, exp) = http_get(exporter_port, "/metrics");
    let theirs: f64 = exp
        .lines()
        .find(|l| {
            l.starts_with("pg_stat_replication_pg_wal_lsn_diff{")
                && l.contains("application_name=\"standby1\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no pg_wal_lsn_diff for standby1 in:\n{exp}"));
    assert!(ours > 1e6, "{ours}");
    // The exporter's diff uses the replay position the standby last reported to the primary;
    // ours asks the standby. Idle and paused, they differ by at most the WAL of the primary's
    // own background activity between the two reads (a few kB).
    assert!(
        (ours - theirs).abs() <= 64.0 * 1024.0,
        "ours {ours}, postgres_exporter {theirs}"
    );
    lab.ok(&["link", "resume", "standby1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_every_node_and_the_lag_moving_in_chromium() {
    let lab = TestLab::up(&[]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // Long enough to outlast a slow Chromium on a busy machine; the test ends it.
    let text = r#"name = "page"
[run]
duration = "60s"
[setup]
sql = "CREATE TABLE IF NOT EXISTS page (pad text)"
[[load]]
name = "w"
clients = 2
rate = 200
mix = { ins = 1 }
[[transaction]]
name = "ins"
params = { pad = "text(200)" }
sql = "INSERT INTO page (pad) VALUES ($pad)"
[[event]]
at = "3s"
action = "pause_link"
target = "standby1"
for = "50s"
"#;
    let w = workload_file(lab.tmp.path(), "page", text);
    let out_dir = lab.tmp.path().join("page-out");
    let run = Bg(Command::new(BIN)
        .args([
            "run",
            w.to_str().unwrap(),
            "--quiet",
            "--dir",
            lab.dir_arg(),
            "--serve",
            &listen,
            "--lag-alert",
            "2s",
            "--out",
        ])
        .arg(&out_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    assert!(wait_until(Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    std::thread::sleep(Duration::from_secs(4)); // into the pause
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status_page.png");
    let out = Command::new("python3")
        .arg(repo_file("tests/py/status_page.py"))
        .arg(format!("http://{listen}/"))
        .arg("primary,standby1,standby2")
        .arg("standby1")
        .arg(&shot)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let seen: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(seen["sparklines"].as_u64().unwrap() >= 2, "{seen}");
    assert!(
        seen["status"].as_str().unwrap().contains("degraded"),
        "over the 2 s alert: {seen}"
    );
    // During the run /metrics also has the run's own counters and latency, and the
    // heartbeat's lag: growing on the paused standby, small on the other.
    let m = metrics(port);
    let hb = |node: &str| {
        sample(
            &m,
            "pgbench_repl_standby_heartbeat_lag_seconds",
            &[("standby", node)],
        )
        .unwrap_or_else(|| panic!("no heartbeat lag for {node}"))
    };
    assert!(
        hb("standby1") > 0.5 && hb("standby2") < hb("standby1"),
        "heartbeat lag: standby1 {} s (paused), standby2 {} s",
        hb("standby1"),
        hb("standby2")
    );
    assert!(
        sample(
            &m,
            "pgbench_repl_transactions_total",
            &[("transaction", "ins"), ("outcome", "ok")]
        )
        .unwrap()
            > 100.0
    );
    assert!(
        sample(
            &m,
            "pgbench_repl_transaction_duration_seconds_count",
            &[("transaction", "ins")]
        )
        .unwrap()
            > 100.0
    );
    drop(run);
}

#[test]
fn the_compose_alert_rules_pass_promtool() {
    let out = Command::new("promtool")
        .args(["check", "rules", &repo_file("compose/prometheus-rules.yml")])
        .output()
        .expect("promtool (apt-get install prometheus)");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("SUCCESS: 3 rules found"),
        "{}",
        stdout(&out)
    );
    let out = Command::new("promtool")
        .args(["check", "config", &repo_file("compose/prometheus.yml")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}
