//! `run` on real labs: counts equal what PostgreSQL holds, rates, routing, faults, Ctrl-C.

mod common;

use common::*;
use std::time::{Duration, Instant};

async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn counts_in_summary_equal_rows_in_postgres() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let w = workload_file(
        lab.tmp.path(),
        "counts",
        r#"
name = "counts"
[run]
duration = "3s"
[setup]
sql = "CREATE TABLE items (id bigserial PRIMARY KEY, client int, note text); CREATE TABLE pairs (id bigint PRIMARY KEY, twin bigint)"
[[load]]
name = "w"
clients = 4
mix = { single = 3, pair = 1, dup = 1 }
[[transaction]]
name = "single"
params = { note = "text(20)" }
sql = "INSERT INTO items (client, note) VALUES ($client_id, $note)"
[[transaction]]
name = "pair"
params = { id = "seq(1000000)" }
sql = ["INSERT INTO pairs (id) VALUES ($id) RETURNING id AS first", "INSERT INTO pairs (id, twin) VALUES ($first + 5000000, $first)"]
[[transaction]]
name = "dup"
sql = "INSERT INTO pairs (id) VALUES (1)"
"#,
    );
    let (s, dir) = lab.run_ok(w.to_str().unwrap(), "counts", &[]);
    let primary = lab.connect("primary").await;
    let t = &s["transactions"];
    assert_eq!(
        t["single"]["ok"].as_i64().unwrap(),
        count(&primary, "SELECT count(*) FROM items").await
    );
    let pairs = count(
        &primary,
        "SELECT count(*) FROM pairs WHERE twin IS NOT NULL",
    )
    .await;
    assert_eq!(t["pair"]["ok"].as_i64().unwrap(), pairs);
    assert!(pairs > 0);
    // The captured $first made it into the second statement.
    assert_eq!(
        count(
            &primary,
            "SELECT count(*) FROM pairs WHERE twin IS NOT NULL AND id <> twin + 5000000"
        )
        .await,
        0
    );
    // "dup" succeeds once, then fails with unique_violation every time: counted by SQLSTATE.
    assert_eq!(t["dup"]["ok"], 1);
    assert!(t["dup"]["failed"].as_i64().unwrap() > 0);
    assert_eq!(t["dup"]["failed"], t["dup"]["failed_by_sqlstate"]["23505"]);
    assert_eq!(s["interrupted"], false);
    assert_eq!(
        s["total"]["ok"].as_i64().unwrap(),
        ["single", "pair", "dup"]
            .iter()
            .map(|n| t[*n]["ok"].as_i64().unwrap())
            .sum::<i64>()
    );
    assert!(s["wal"]["bytes"].as_i64().unwrap() > 0);

    // intervals.csv: one row a second, counts adding up to the summary.
    let rows = interval_column(&dir, "single.ok");
    assert!(!interval_column(&dir, "wal_bytes_per_s").is_empty());
    assert!(
        (3..=5).contains(&rows.len()),
        "{} interval rows",
        rows.len()
    );
    let sum: i64 = rows.iter().map(|r| r.1 as i64).sum();
    assert_eq!(sum, t["single"]["ok"].as_i64().unwrap());

    // latency.hlog decodes with HdrHistogram's own reader; its counts add up too.
    let log = std::fs::read(dir.join("latency.hlog")).unwrap();
    let mut deser = hdrhistogram::serialization::Deserializer::new();
    let mut total = 0u64;
    for item in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&log) {
        if let hdrhistogram::serialization::interval_log::LogEntry::Interval(i) =
            item.expect("hlog parses")
        {
            if i.tag().map(|t| t.as_str()) == Some("single") {
                let bytes = base64_decode(i.encoded_histogram());
                let h: hdrhistogram::Histogram<u64> =
                    deser.deserialize(&mut bytes.as_slice()).unwrap();
                total += h.len();
            }
        }
    }
    assert_eq!(total as i64, t["single"]["ok"].as_i64().unwrap());
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        buf = (buf << 6) | ALPHABET.iter().position(|a| *a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn heavy_write_copies_1m_unique_rows_to_every_node() {
    let lab = TestLab::up(&[]);
    let (s, _) = lab.run_ok(
        &repo_file("workloads/heavy-write.toml"),
        "heavy",
        &["--set", "load.stream.stop_after=200"],
    );
    assert_eq!(s["transactions"]["bulk_copy"]["rows"], 1_000_000);
    assert_eq!(s["transactions"]["bulk_copy"]["ok"], 100);
    assert_eq!(s["transactions"]["insert_event"]["ok"], 200);
    lab.wait_caught_up().await;
    for node in ["primary", "standby1", "standby2"] {
        let c = lab.connect(node).await;
        let row = c
            .query_one(
                "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM bulk_rows",
                &[],
            )
            .await
            .unwrap();
        let (n, distinct, lo, hi): (i64, i64, i64, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!(
            (n, distinct, lo, hi),
            (1_000_000, 1_000_000, 1, 1_000_000),
            "on {node}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipelined_transaction_that_fails_leaves_nothing_and_its_session_goes_on() {
    let lab = TestLab::up(&["--standbys", "0"]);
    // Three inserts sent with one Sync; the middle one fails once its key was used, after the
    // first has run: the whole transaction must be rolled back, and the session reused.
    let w = workload_file(
        lab.tmp.path(),
        "pipefail",
        r#"
name = "pipefail"
[run]
duration = "2s"
sample_every = "off"
[setup]
sql = "CREATE TABLE a (k int); CREATE TABLE u (k int PRIMARY KEY); CREATE TABLE b (k int)"
[[load]]
name = "w"
clients = 2
mix = { p = 1 }
[[transaction]]
name = "p"
pipeline = true
params = { k = "uniform(1, 40)" }
sql = ["INSERT INTO a (k) VALUES ($k)", "INSERT INTO u (k) VALUES ($k)", "INSERT INTO b (k) VALUES ($k)"]
"#,
    );
    let (s, _) = lab.run_ok(w.to_str().unwrap(), "pipefail", &[]);
    let primary = lab.connect("primary").await;
    let t = &s["transactions"]["p"];
    let ok = t["ok"].as_i64().unwrap() + s["warmup"]["ok"].as_i64().unwrap();
    let in_u = count(&primary, "SELECT count(*) FROM u").await;
    assert_eq!(ok, in_u, "{s}");
    assert_eq!(count(&primary, "SELECT count(*) FROM a").await, in_u);
    assert_eq!(count(&primary, "SELECT count(*) FROM b").await, in_u);
    assert!(in_u > 0 && in_u <= 40);
    let failed = t["failed"].as_u64().unwrap();
    assert!(
        failed > 100,
        "the connections kept running after failures: {s}"
    );
    assert_eq!(
        t["failed_by_sqlstate"]["23505"].as_u64(),
        Some(failed),
        "{s}"
    );
    assert_eq!(t["unknown"], 0);
    assert_eq!(s["connections"]["reconnects"].as_u64(), Some(0), "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tpcb_money_invariant_holds_on_every_node() {
    let lab = TestLab::up(&[]);
    // Once as pgbench runs it, once pipelined (every statement sent before any reply).
    let mut history_expected = 0;
    for pipeline in ["false", "true"] {
        let set = format!("transaction.tpcb_like.pipeline={pipeline}");
        let (s, _) = lab.run_ok(
            &repo_file("workloads/tpcb-like.toml"),
            &format!("tpcb-{pipeline}"),
            &[
                "--duration",
                "3s",
                "--set",
                "load.clients.clients=4",
                "--set",
                &set,
            ],
        );
        let ok = s["transactions"]["tpcb_like"]["ok"].as_i64().unwrap();
        assert!(ok > 0);
        assert_eq!(
            s["transactions"]["tpcb_like"]["failed"], 0,
            "{pipeline}: {s}"
        );
        history_expected += ok + s["warmup"]["ok"].as_i64().unwrap();
        lab.wait_caught_up().await;
        for node in ["primary", "standby1", "standby2"] {
            let c = lab.connect(node).await;
            let row = c
                .query_one(
                    "SELECT (SELECT sum(abalance) FROM pgbench_accounts)::int8, (SELECT sum(tbalance) FROM pgbench_tellers)::int8, \
                            (SELECT sum(bbalance) FROM pgbench_branches)::int8, (SELECT coalesce(sum(delta), 0) FROM pgbench_history)::int8, \
                            (SELECT count(*) FROM pgbench_history)",
                    &[],
                )
                .await
                .unwrap();
            let sums: Vec<i64> = (0..4).map(|i| row.get(i)).collect();
            assert!(
                sums.iter().all(|v| *v == sums[0]),
                "money appeared or vanished on {node} (pipeline {pipeline}): {sums:?}"
            );
            let history: i64 = row.get(4);
            assert_eq!(
                history, history_expected,
                "history rows on {node} (pipeline {pipeline})"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_400_for_5s_gives_2000_transactions() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let w = workload_file(
        lab.tmp.path(),
        "rate",
        r#"
name = "rate"
[run]
duration = "5s"
warmup = "1s"
[setup]
sql = "CREATE TABLE r (id bigserial, at timestamptz)"
[[load]]
name = "paced"
clients = 4
rate = 400
mix = { tick = 1 }
[[transaction]]
name = "tick"
params = { now = "now()" }
sql = "INSERT INTO r (at) VALUES ($now)"
"#,
    );
    let (s, _) = lab.run_ok(w.to_str().unwrap(), "rate", &[]);
    // started_at and ended_at bound the load, warmup included.
    let at = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(s[k].as_str().unwrap())
            .unwrap()
            .timestamp_millis() as f64
            / 1000.0
    };
    let span = at("ended_at") - at("started_at");
    assert!(
        (span - 6.0).abs() < 0.25,
        "ended_at - started_at = {span} s, the load ran 1 + 5 s"
    );
    let done = s["transactions"]["tick"]["ok"].as_f64().unwrap()
        + s["transactions"]["tick"]["failed"].as_f64().unwrap();
    assert!(
        (1900.0..=2100.0).contains(&done),
        "{done} transactions at 400/s for 5 s"
    );
    assert_eq!(s["groups"]["paced"]["rate_intended"], 400.0);
    assert!(s["groups"]["paced"]["schedule_lag_ms"]["p50"].is_number());
    let primary = lab.connect("primary").await;
    assert_eq!(
        count(&primary, "SELECT count(*) FROM r").await as f64,
        s["transactions"]["tick"]["ok"].as_f64().unwrap() + s["warmup"]["ok"].as_f64().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_land_on_the_standbys() {
    let lab = TestLab::up(&[]);
    let commits = |c: tokio_postgres::Client| async move {
        c.query_one(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
    };
    let before1 = commits(lab.connect("standby1").await).await;
    let before2 = commits(lab.connect("standby2").await).await;
    let (s, _) = lab.run_ok(
        &repo_file("workloads/read-distribution.toml"),
        "reads",
        &["--duration", "2s"],
    );
    let reads = s["transactions"]["read_standby"]["ok"].as_i64().unwrap();
    assert!(reads > 100);
    tokio::time::sleep(Duration::from_millis(700)).await; // stats are flushed at most every 500 ms
    let d1 = commits(lab.connect("standby1").await).await - before1;
    let d2 = commits(lab.connect("standby2").await).await - before2;
    // Round-robin: each standby served about half the standby reads.
    for d in [d1, d2] {
        assert!(
            d as f64 > reads as f64 * 0.35,
            "standby transactions {d1} and {d2} for {reads} reads"
        );
    }
}

fn ryw_workload(mode: &str) -> String {
    format!(
        r#"
name = "ryw-{mode}"
[run]
duration = "3s"
[setup]
sql = "CREATE TABLE IF NOT EXISTS ryw (id bigserial, client int); TRUNCATE ryw"
[[load]]
name = "c"
clients = 4
mix = {{ write = 1, read = 1 }}
read_your_writes = "{mode}"
[[transaction]]
name = "write"
sql = "INSERT INTO ryw (client) VALUES ($client_id)"
[[transaction]]
name = "read"
target = "standby"
# Fails with division_by_zero (22012) when the client does not see all its own writes.
sql = "SELECT 1 / (CASE WHEN count(*) >= $client_writes THEN 1 ELSE 0 END) FROM ryw WHERE client = $client_id"
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn read_your_writes_gives_no_stale_reads_under_induced_lag() {
    let lab = TestLab::up(&["--standbys", "1", "--link-delay", "30ms"]);
    let off = workload_file(lab.tmp.path(), "ryw-off", &ryw_workload("off"));
    let lsn = workload_file(lab.tmp.path(), "ryw-lsn", &ryw_workload("lsn"));
    // Without read_your_writes the lag shows: some reads miss the client's own writes.
    let (s, _) = lab.run_ok(off.to_str().unwrap(), "off", &[]);
    assert!(
        s["transactions"]["read"]["failed_by_sqlstate"]["22012"]
            .as_i64()
            .unwrap_or(0)
            > 0,
        "the check never caught a stale read: {}",
        s["transactions"]["read"]
    );
    // With it, none do, and the tool says how many would have been stale.
    let (s, _) = lab.run_ok(lsn.to_str().unwrap(), "lsn", &[]);
    let read = &s["transactions"]["read"];
    assert_eq!(
        read["failed"], 0,
        "stale reads with read_your_writes = lsn: {read}"
    );
    assert!(read["ok"].as_i64().unwrap() > 0);
    assert!(
        s["read_your_writes"]["would_have_been_stale"]
            .as_i64()
            .unwrap()
            > 0,
        "{}",
        s["read_your_writes"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_killed_mid_run_does_not_stop_the_run() {
    let lab = TestLab::up(&[]);
    let w = workload_file(
        lab.tmp.path(),
        "kill",
        r#"
name = "kill"
[run]
duration = "4s"
[setup]
sql = "CREATE TABLE IF NOT EXISTS k (id bigserial, v int)"
[[load]]
name = "mixed"
clients = 4
mix = { write = 1, read = 2 }
[[transaction]]
name = "write"
sql = "INSERT INTO k (v) VALUES (1)"
[[transaction]]
name = "read"
target = "standby"
sql = "SELECT count(*) FROM k"
[[event]]
at = "1s"
action = "kill"
target = "standby1"
"#,
    );
    let (s, dir) = lab.run_ok(w.to_str().unwrap(), "kill", &[]);
    let events = std::fs::read_to_string(dir.join("events.csv")).unwrap();
    assert!(events.contains("kill,standby1"), "{events}");
    assert!(events.contains("node_down,standby1"), "{events}");
    // Reads went on (to standby2) after the kill: more reads than one second's worth before it.
    let rows = interval_column(&dir, "read.ok");
    let last = rows[rows.len() - 2].1;
    assert!(last > 0.0, "no reads in the last full second: {rows:?}");
    assert!(s["transactions"]["write"]["ok"].as_i64().unwrap() > 0);
    let primary = lab.connect("primary").await;
    assert_eq!(
        count(&primary, "SELECT count(*) FROM k").await,
        s["transactions"]["write"]["ok"].as_i64().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_leaves_a_complete_readable_result_directory() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let out_dir = lab.tmp.path().join("sigint");
    let child = std::process::Command::new(BIN)
        .args([
            "run",
            &repo_file("workloads/insert-only.toml"),
            "--quiet",
            "--duration",
            "60s",
            "--set",
            "load.clients.clients=2",
        ])
        .args(["--out", out_dir.to_str().unwrap(), "--dir", lab.dir_arg()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let started = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let s = summary(&out_dir);
    assert_eq!(s["interrupted"], true);
    let ok = s["transactions"]["insert_only"]["ok"].as_i64().unwrap();
    assert!(ok > 0);
    assert!(s["ended_at"].is_string());
    let intervals = std::fs::read_to_string(out_dir.join("intervals.csv")).unwrap();
    assert!(intervals.lines().count() >= 4, "{intervals}");
    assert!(std::fs::read_to_string(out_dir.join("latency.hlog"))
        .unwrap()
        .contains("Tag=insert_only"));
    assert!(!out_dir.join("summary.tmp").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_follow_a_promotion_during_the_run() {
    let lab = TestLab::up(&[]);
    let w = workload_file(
        lab.tmp.path(),
        "follow",
        r#"
name = "follow"
[run]
duration = "7s"
[setup]
sql = "CREATE TABLE IF NOT EXISTS fo (id bigint PRIMARY KEY)"
[[load]]
name = "w"
clients = 2
rate = 100
mix = { write = 1 }
[[transaction]]
name = "write"
params = { id = "seq()" }
sql = "INSERT INTO fo (id) VALUES ($id)"
[[event]]
at = "1s"
action = "kill"
target = "primary"
[[event]]
at = "1.5s"
action = "promote"
"#,
    );
    let (s, dir) = lab.run_ok(w.to_str().unwrap(), "follow", &[]);
    let events = std::fs::read_to_string(dir.join("events.csv")).unwrap();
    assert!(events.contains("writes go to standby"), "{events}");
    // The most advanced standby was promoted; the load wrote to it after.
    let promoted = if events.contains("writes go to standby1") {
        "standby1"
    } else {
        "standby2"
    };
    let after: i64 = interval_column(&dir, "write.ok")
        .into_iter()
        .filter(|(t, _)| *t >= 4.0)
        .map(|(_, ok)| ok as i64)
        .sum();
    assert!(
        after > 150,
        "only {after} writes committed after the promotion"
    );
    let new_primary = lab.connect(promoted).await;
    let rows = count(&new_primary, "SELECT count(*) FROM fo").await;
    assert!(
        rows >= after,
        "{rows} rows on {promoted}, {after} writes acknowledged after the promotion"
    );
    assert!(
        rows <= s["transactions"]["write"]["ok"].as_i64().unwrap()
            + s["transactions"]["write"]["unknown"].as_i64().unwrap()
    );
}
