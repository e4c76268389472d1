//! Scale-out on a real lab: shard processes of one workload meet in the database, start
//! together, and `merge` makes one result whose counts are PostgreSQL's rows and whose
//! percentiles are those of every shard's transactions together.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const WORKLOAD: &str = r#"
name = "orders-sharded"
[run]
duration = "4s"
warmup = "0s"
[setup]
sql = "CREATE TABLE orders (id bigint PRIMARY KEY, note text, created_at timestamptz NOT NULL DEFAULT clock_timestamp())"
# 5 clients and 300 tx/s over 3 shards: 2 + 2 + 1 clients, 120 + 120 + 60 tx/s.
[[load]]
name = "shop"
clients = 5
rate = 300
mix = { order = 1 }
[[transaction]]
name = "order"
params = { id = "seq(1)", note = "text(12)" }
sql = "INSERT INTO orders (id, note) VALUES ($id, $note)"
[expect]
"total.failed" = "== 0"
"total.ok" = "> 900"
"#;

fn shard(lab: &TestLab, workload: &Path, spec: &str, run_id: &str, out: &Path) -> Child {
    Command::new(BIN)
        .args([
            "run",
            workload.to_str().unwrap(),
            "--quiet",
            "--shard",
            spec,
        ])
        .args(["--run-id", run_id, "--shard-wait", "60s"])
        .args(["--out", out.to_str().unwrap(), "--dir", lab.dir_arg()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start a shard")
}

fn finished(child: Child, what: &str) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}",
        out.status.code(),
        stderr(&out)
    );
    out
}

fn hlog_union(tag: &str, files: &[PathBuf]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(repo_file("tests/py/hlog_union.py"))
        .arg(tag)
        .args(files)
        .output()
        .expect("python3");
    assert!(out.status.success(), "hlog_union.py: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_shards_start_together_and_merge_into_the_whole_run() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let w = workload_file(lab.tmp.path(), "orders-sharded", WORKLOAD);
    let results = lab.tmp.path().join("results");
    let dirs: Vec<PathBuf> = (0..3).map(|i| results.join(format!("shard-{i}"))).collect();
    // Launched 1.2 s apart, the last first: shard 0 (which runs [setup]) comes last.
    let mut children = Vec::new();
    for i in [2usize, 1, 0] {
        children.push((i, shard(&lab, &w, &format!("{i}/3"), "t1", &dirs[i])));
        std::thread::sleep(Duration::from_millis(1200));
    }
    for (i, c) in children {
        finished(c, &format!("shard {i}"));
    }
    // The directory that holds the shards' directories, as the Kubernetes merge step gives it.
    let merged = results.join("merged");
    let out = cli(&[
        "merge",
        results.to_str().unwrap(),
        "--wait",
        "60s",
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "merge failed:\n{}", stderr(&out));
    let s = summary(&merged);
    let shards: Vec<serde_json::Value> = dirs.iter().map(|d| summary(d)).collect();

    // The shares add up: 2 + 2 + 1 clients, rates in proportion.
    let clients: Vec<u64> = shards
        .iter()
        .map(|x| x["groups"]["shop"]["clients"].as_u64().unwrap())
        .collect();
    assert_eq!(clients, vec![2, 2, 1]);
    assert_eq!(s["groups"]["shop"]["clients"], 5);
    assert_eq!(s["groups"]["shop"]["rate_intended"].as_f64(), Some(300.0));

    // Counts equal the rows in PostgreSQL, in the whole and per shard; no seq() collided.
    let primary = lab.connect("primary").await;
    let rows = count(&primary, "SELECT count(*) FROM orders").await;
    assert_eq!(s["total"]["ok"].as_i64(), Some(rows), "{s}");
    assert_eq!(
        s["total"]["failed"], 0,
        "a seq() collision fails on the key"
    );
    assert_eq!(
        count(&primary, "SELECT count(DISTINCT id) FROM orders").await,
        rows
    );
    for (i, x) in shards.iter().enumerate() {
        // Shard i's seq(1) runs 1 + i, 4 + i, ...: the residue (1 + i) mod 3.
        let mine = count(
            &primary,
            &format!("SELECT count(*) FROM orders WHERE id % 3 = {}", (1 + i) % 3),
        )
        .await;
        assert_eq!(x["total"]["ok"].as_i64(), Some(mine), "shard {i}");
        assert_eq!(x["shard"]["index"], i as u64);
    }
    let per_shard: i64 = shards
        .iter()
        .map(|x| x["total"]["ok"].as_i64().unwrap())
        .sum();
    assert_eq!(per_shard, rows);

    // The merged rate is the workload's (the open model: 300 tx/s for 4 s).
    let tps = s["total"]["tps"].as_f64().unwrap();
    assert!((tps - 300.0).abs() < 300.0 * 0.05, "merged tps {tps}");

    // Every second's counts add up to the whole.
    let mut r = csv::Reader::from_path(merged.join("intervals.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let ok_col = h.iter().position(|c| c == "order.ok").unwrap();
    let by_second: i64 = r
        .records()
        .map(|rec| rec.unwrap()[ok_col].parse::<i64>().unwrap())
        .sum();
    assert_eq!(by_second, rows);

    // The merged p99 is that of the union of the shards' histograms, read by another
    // implementation (HdrHistogram_py) from the shards' own logs; so is every second's.
    let totals: Vec<PathBuf> = dirs.iter().map(|d| d.join("totals.hlog")).collect();
    let union = hlog_union("order", &totals);
    assert_eq!(union["count"].as_i64(), Some(rows));
    let p99 = s["transactions"]["order"]["latency_ms"]["p99"]
        .as_f64()
        .unwrap();
    let union_p99 = union["p99_us"].as_f64().unwrap() / 1000.0;
    assert!((p99 - union_p99).abs() < 0.0005, "{p99} vs {union_p99}");
    let seconds = hlog_union("order", &[merged.join("latency.hlog")]);
    assert_eq!(seconds["count"].as_i64(), Some(rows));
    assert_eq!(seconds["p99_us"], union["p99_us"]);

    // Launched 2.4 s apart, they started within half a second: by the tool's account and by
    // the database's clock (each shard's first insert).
    let spread = s["shards"]["start_spread_s"].as_f64().unwrap();
    assert!(spread < 0.5, "start spread {spread}");
    let firsts: f64 = primary
        .query_one(
            "SELECT extract(epoch FROM max(f) - min(f))::float8 FROM \
             (SELECT min(created_at) AS f FROM orders GROUP BY id % 3) x",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(firsts < 0.5, "first inserts {firsts} s apart");
    assert_eq!(s["shards"]["missing"], serde_json::json!([]));
    assert_eq!(s["interrupted"], false);
    // [expect] is judged on the whole (over 900 ok: no single shard had that many).
    assert!(shards.iter().all(|x| x["expect"] == serde_json::json!([])));
    assert_eq!(s["expect"][1]["passed"], true, "{}", s["expect"]);
    let report = std::fs::read_to_string(merged.join("report.md")).unwrap();
    assert!(report.contains("## Shards"), "{report}");
    assert!(merged.join("charts/throughput.png").is_file());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shard_that_dies_does_not_stop_the_others_and_the_merge_says_so() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let w = workload_file(lab.tmp.path(), "orders-sharded", WORKLOAD);
    let results = lab.tmp.path().join("results");
    let dirs: Vec<PathBuf> = (0..3).map(|i| results.join(format!("shard-{i}"))).collect();
    let mut children: Vec<Child> = (0..3)
        .map(|i| shard(&lab, &w, &format!("{i}/3"), "t2", &dirs[i]))
        .collect();
    // Shard 1 is killed 2 s into its load.
    let started = eventually(Duration::from_secs(60), || async {
        std::fs::read_to_string(dirs[1].join("intervals.csv"))
            .ok()
            .filter(|t| t.lines().count() >= 3)
    })
    .await;
    assert!(started.is_some(), "shard 1 never measured two seconds");
    children[1].kill().unwrap();
    let killed = children.remove(1).wait_with_output().unwrap();
    assert!(!killed.status.success());
    for (i, c) in children.into_iter().enumerate() {
        finished(c, &format!("shard {}", if i == 0 { 0 } else { 2 }));
    }
    // Two of the three: shard 1 is named as stopped early, and the merge exits 3.
    let merged = results.join("merged");
    let mut args = vec!["merge"];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap()));
    args.extend(["--out", merged.to_str().unwrap()]);
    let out = cli(&args);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("[1]"), "{}", stderr(&out));
    let s = summary(&merged);
    assert_eq!(s["shards"]["incomplete"], serde_json::json!([1]));
    assert_eq!(s["interrupted"], true);
    // Without its directory, shard 1 is missing.
    let partial = results.join("partial");
    let out = cli(&[
        "merge",
        dirs[0].to_str().unwrap(),
        dirs[2].to_str().unwrap(),
        "--out",
        partial.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let s = summary(&partial);
    assert_eq!(s["shards"]["missing"], serde_json::json!([1]));
    let report = std::fs::read_to_string(partial.join("report.md")).unwrap();
    assert!(report.contains("**missing**"), "{report}");
}

#[test]
fn a_shard_alone_gives_up_naming_the_shards_that_never_came() {
    let lab = TestLab::up(&["--standbys", "0"]);
    let w = workload_file(lab.tmp.path(), "orders-sharded", WORKLOAD);
    // Shard 0 alone: the others never register.
    let out = lab.cli(&[
        "run",
        w.to_str().unwrap(),
        "--quiet",
        "--shard",
        "0/3",
        "--run-id",
        "lonely",
        "--shard-wait",
        "2s",
        "--out",
        lab.tmp.path().join("r").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("never registered: 1, 2"), "{err}");
    assert!(!err.contains(&lab.password()), "{err}");
    // A workload that cannot be split that way is refused before anything runs.
    let out = lab.cli(&["run", w.to_str().unwrap(), "--shard", "5/6"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no clients"), "{}", stderr(&out));
    let out = lab.cli(&["run", w.to_str().unwrap(), "--shard", "3/3"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
