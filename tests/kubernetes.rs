//! deploy/kubernetes: the manifests validate against Kubernetes' own schemas (the
//! `kubernetes-validate` package), keep the promises docs/scale-out.md makes, and their
//! commands, run as the pods would run them (the index and run id from the environment, the
//! connection from the Secret's variables), give one merged result on a real lab.

mod common;

use common::*;
use serde_yaml::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn manifest_dir() -> PathBuf {
    PathBuf::from(repo_file("deploy/kubernetes"))
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifest_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(manifest_dir().join(name)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn validate(files: &[PathBuf], version: &str) -> std::process::Output {
    Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict", "-k", version])
        .args(files)
        .output()
        .expect("python3")
}

#[test]
fn manifests_validate_against_kubernetes_schemas() {
    let files = manifests();
    assert!(files.len() >= 4, "{files:?}");
    // backoffLimitPerIndex is beta from 1.29 (on by default) and GA in 1.33.
    for version in ["1.29.0", "1.33.0", "1.37.0"] {
        let out = validate(&files, version);
        assert!(
            out.status.success(),
            "kubernetes-validate {version}:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    // The validator does refuse what Kubernetes would: a misspelt key in the Job.
    let tmp = temp_dir();
    let bad = tmp.path().join("shards.yaml");
    let text = std::fs::read_to_string(manifest_dir().join("shards.yaml")).unwrap();
    std::fs::write(&bad, text.replace("parallelism:", "paralellism:")).unwrap();
    let out = validate(&[bad], "1.33.0");
    assert!(!out.status.success(), "a misspelt key passed");
}

/// The shard count of `--shard auto/N` in the shards' arguments.
fn shard_count(job: &Value) -> u64 {
    let args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap();
    let i = args.iter().position(|a| a == "--shard").unwrap();
    let spec = args[i + 1].as_str().unwrap();
    spec.strip_prefix("auto/").unwrap().parse().unwrap()
}

#[test]
fn the_shards_job_counts_every_shard_once_and_keeps_the_password_out() {
    let job = load("shards.yaml");
    let spec = &job["spec"];
    let n = shard_count(&job);
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"].as_u64(), Some(n));
    assert_eq!(spec["parallelism"].as_u64(), Some(n));
    // Never retried (a retry would count a share twice); one failure does not end the others.
    assert_eq!(spec["backoffLimitPerIndex"].as_u64(), Some(0));
    assert_eq!(spec["maxFailedIndexes"].as_u64(), Some(n));
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    let merge = load("merge.yaml");
    assert_eq!(merge["spec"]["backoffLimit"].as_u64(), Some(0));
    assert_eq!(merge["spec"]["template"]["spec"]["restartPolicy"], "Never");
    // The connection comes from the Secret; no manifest holds a password.
    let container = &spec["template"]["spec"]["containers"][0];
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        "pgbench-repl-cluster"
    );
    for file in manifests() {
        let text = std::fs::read_to_string(&file).unwrap().to_lowercase();
        assert!(
            !text.contains("password=") && !text.contains("password:") && !text.contains(":pass"),
            "{} mentions a password",
            file.display()
        );
        assert!(!text.contains("kind: secret"), "{}", file.display());
    }
    // The workload in the ConfigMap is one this version reads, and splits N ways.
    let cm = load("workload.yaml");
    let tmp = temp_dir();
    let w = tmp.path().join("workload.toml");
    std::fs::write(&w, cm["data"]["workload.toml"].as_str().unwrap()).unwrap();
    let plan = pgbench_repl::config::load_workload(&w, &[]).unwrap();
    for index in 0..n as u32 {
        let spec = pgbench_repl::shard::ShardSpec {
            index,
            count: n as u32,
        };
        pgbench_repl::shard::split_plan(&plan, spec).unwrap();
    }
}

/// `$(NAME)` in a container's arguments, as Kubernetes expands them from its env.
fn expand(arg: &str, env: &[(String, String)]) -> String {
    let mut out = arg.to_string();
    for (k, v) in env {
        out = out.replace(&format!("$({k})"), v);
    }
    out
}

fn args_of(job: &Value) -> Vec<String> {
    job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pods_commands_give_one_merged_result() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let cm = load("workload.yaml");
    let run_id = cm["data"]["run-id"].as_str().unwrap().to_string();
    // The pods' file system: the ConfigMap's workload at its mount, the volume at /data. The
    // cluster's standbys are the lab's (the manifest names a Kubernetes service).
    let root = lab.tmp.path().join("pod");
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let standby = lab.node_port("standby1");
    let workload = cm["data"]["workload.toml"]
        .as_str()
        .unwrap()
        .lines()
        // A latency SLO is no test of the wiring on a busy 2-core machine.
        .filter(|l| !l.contains("latency_ms.p99"))
        .map(|l| {
            if l.starts_with("standbys =") {
                format!("standbys = [\"port={standby}\"]")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let workload_path = root.join("workload.toml");
    std::fs::write(&workload_path, workload).unwrap();
    // The Secret's variables.
    let secret = [
        ("PGHOST", "127.0.0.1".to_string()),
        ("PGPORT", lab.port.to_string()),
        ("PGUSER", "postgres".to_string()),
        ("PGPASSWORD", lab.password()),
        ("PGDATABASE", "postgres".to_string()),
    ];
    let job = load("shards.yaml");
    let n = shard_count(&job);
    let mut children = Vec::new();
    for index in 0..n {
        let env = vec![
            ("JOB_COMPLETION_INDEX".to_string(), index.to_string()),
            ("PGBENCH_REPL_RUN_ID".to_string(), run_id.clone()),
        ];
        let mut args: Vec<String> = args_of(&job)
            .iter()
            .map(|a| expand(a, &env))
            .map(|a| {
                if a == "/etc/pgbench-repl/workload.toml" {
                    workload_path.to_str().unwrap().to_string()
                } else {
                    a
                }
            })
            .collect();
        // Shortened and lightened for a 2-core test machine: the wiring is what is tested.
        args.extend(
            [
                "--duration",
                "3s",
                "--set",
                "run.warmup=0s",
                "--set",
                "load.shoppers.clients=8",
                "--set",
                "load.shoppers.rate=200",
            ]
            .map(String::from),
        );
        let child = Command::new(BIN)
            .args(&args)
            .current_dir(&data)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(secret.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove("PGBENCH_REPL_LAB")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
    }
    // The merge step, started with the shards: it waits for them.
    let merge = load("merge.yaml");
    let env = vec![("PGBENCH_REPL_RUN_ID".to_string(), run_id.clone())];
    let merge_args: Vec<String> = args_of(&merge)
        .iter()
        .map(|a| expand(a, &env))
        .map(|a| a.replace("/data", data.to_str().unwrap()))
        .collect();
    let merger = Command::new(BIN)
        .args(&merge_args)
        .current_dir(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(out.status.success(), "shard {i}:\n{err}");
        assert!(!err.contains(&lab.password()));
    }
    let out = merger.wait_with_output().unwrap();
    assert!(out.status.success(), "merge:\n{}", stderr(&out));
    let run_dir = data.join("results/orders").join(&run_id);
    let merged = summary(&run_dir.join("merged"));
    assert_eq!(
        merged["shards"]["merged"].as_array().unwrap().len() as u64,
        n
    );
    let primary = lab.connect("primary").await;
    let rows: i64 = primary
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        merged["transactions"]["place_order"]["ok"].as_i64(),
        Some(rows)
    );
    assert_eq!(merged["groups"]["shoppers"]["clients"], 8);
    assert!(!walk_contains(&run_dir, &lab.password()));
}

/// Whether any file under `dir` contains `needle`.
fn walk_contains(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            walk_contains(&p, needle)
        } else {
            std::fs::read(&p)
                .map(|b| String::from_utf8_lossy(&b).contains(needle))
                .unwrap_or(false)
        }
    })
}
