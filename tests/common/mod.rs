//! Test support: a real lab per test, on a free block of ports in its own temporary directory,
//! started and destroyed through the pgbench-repl binary itself.

#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

pub const BIN: &str = env!("CARGO_BIN_EXE_pgbench-repl");

/// Run the binary; returns its output.
pub fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("cannot run pgbench-repl")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A temporary directory that the server's OS user (postgres, when tests run as root) can enter.
pub fn temp_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("pgbench-repl-test-")
        .tempdir()
        .expect("cannot make a temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

static NEXT_BLOCK: AtomicU16 = AtomicU16::new(0);

/// A base port whose block is free now: the nodes at base.., their links (or an
/// orchestrator's services) at base+10.., an orchestrator's REST APIs at base+20...
pub fn free_port_block() -> u16 {
    let seed = (std::process::id() as u16).wrapping_mul(7919) % 1000;
    loop {
        let n = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed);
        let base = 20000 + ((seed + n * 37) % 1000) * 40;
        if (base..base + 30).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
}

/// A running lab; destroyed when dropped.
pub struct TestLab {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub port: u16,
}

impl TestLab {
    /// `cluster up` with these extra arguments; panics with the tool's stderr if it fails.
    pub fn up(extra: &[&str]) -> TestLab {
        let tmp = temp_dir();
        let dir = tmp.path().join("lab");
        for _ in 0..3 {
            let port = free_port_block();
            let port_s = port.to_string();
            let mut args = vec![
                "cluster",
                "up",
                "--dir",
                dir.to_str().unwrap(),
                "--port",
                &port_s,
            ];
            args.extend_from_slice(extra);
            let out = cli(&args);
            if out.status.success() {
                return TestLab { tmp, dir, port };
            }
            let err = stderr(&out);
            if !err.contains("busy") {
                let _ = cli(&["cluster", "destroy", "--dir", dir.to_str().unwrap()]);
                panic!("cluster up failed:\n{err}");
            }
        }
        panic!("no free port block found");
    }

    pub fn dir_arg(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// Run `pgbench-repl <args> --dir <lab>`.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--dir", self.dir_arg()]);
        cli(&all)
    }

    /// Like `cli`, panicking with stderr when it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "pgbench-repl {args:?} failed:\n{}",
            stderr(&out)
        );
        stdout(&out)
    }

    pub fn password(&self) -> String {
        std::fs::read_to_string(self.dir.join("credentials/password"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// The lab's state.json.
    pub fn state(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("state.json")).unwrap())
            .unwrap()
    }

    pub fn node_port(&self, node: &str) -> u16 {
        self.state()["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == node)
            .unwrap_or_else(|| panic!("no node {node}"))["port"]
            .as_u64()
            .unwrap() as u16
    }

    /// Connect to a node as the lab's superuser.
    pub async fn connect(&self, node: &str) -> Client {
        connect(self.node_port(node), &self.password()).await
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = cli(&["cluster", "destroy", "--dir", self.dir.to_str().unwrap()]);
    }
}

pub async fn connect(port: u16, password: &str) -> Client {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .password(password)
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(5));
    let (client, conn) = config.connect(NoTls).await.expect("cannot connect");
    tokio::spawn(conn);
    client
}

/// Poll `check` until it returns Some or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// PIDs of processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &Path) -> Vec<u32> {
    let needle = needle.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .map(|s| s.trim_start().starts_with('Z'))
                .unwrap_or(true);
            !zombie
                && String::from_utf8_lossy(&cmd)
                    .replace('\0', " ")
                    .contains(&needle)
        })
        .collect()
}

/// Write `text` as a workload file in `dir`; returns its path.
pub fn workload_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The repository's own file (workloads/...).
pub fn repo_file(rel: &str) -> String {
    format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))
}

impl TestLab {
    /// `run WORKLOAD --out <tmp>/<name> --quiet ...` against this lab: (output, result dir).
    pub fn run(&self, workload: &str, name: &str, extra: &[&str]) -> (Output, PathBuf) {
        let out_dir = self.tmp.path().join("results").join(name);
        let mut args = vec![
            "run",
            workload,
            "--quiet",
            "--out",
            out_dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        (self.cli(&args), out_dir)
    }

    /// Like `run`, panicking unless it exits 0; returns summary.json and the result dir.
    pub fn run_ok(
        &self,
        workload: &str,
        name: &str,
        extra: &[&str],
    ) -> (serde_json::Value, PathBuf) {
        let (out, dir) = self.run(workload, name, extra);
        assert!(
            out.status.success(),
            "run {workload} failed ({:?}):\n{}",
            out.status.code(),
            stderr(&out)
        );
        (summary(&dir), dir)
    }

    /// Wait until every standby has replayed the primary's current position.
    pub async fn wait_caught_up(&self) {
        let primary = self.connect("primary").await;
        let target: String = primary
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
            .unwrap()
            .get(0);
        for s in self.standby_names() {
            let c = self.connect(&s).await;
            let ok = eventually(Duration::from_secs(60), || async {
                let r = c
                    .query_one(
                        "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                        &[&target],
                    )
                    .await
                    .ok()?;
                r.get::<_, bool>(0).then_some(())
            })
            .await;
            assert!(ok.is_some(), "{s} did not catch up");
        }
    }

    pub fn standby_names(&self) -> Vec<String> {
        self.state()["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["role"] == "standby")
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect()
    }
}

pub fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json"))
        .unwrap_or_else(|e| panic!("no summary.json in {}: {e}", dir.display()));
    serde_json::from_str(&text).expect("summary.json is not JSON")
}

/// One column of a result's intervals.csv as (t_s, value) pairs, in row order.
pub fn interval_column(dir: &Path, column: &str) -> Vec<(f64, f64)> {
    let mut rdr = csv::Reader::from_path(dir.join("intervals.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let col = headers
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column} in intervals.csv: {headers:?}"));
    rdr.records()
        .map(|r| r.unwrap())
        .map(|r| (r[0].parse().unwrap(), r[col].parse().unwrap_or(f64::NAN)))
        .collect()
}

/// A TCP port on 127.0.0.1 that is free now.
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET a URL on 127.0.0.1: (status, body); (0, "") when nothing listens. A plain HTTP/1.1
/// client, so tests need no crate.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            unchunk(body)
        } else {
            body.to_string()
        },
    )
}

fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n.min(rest.len())]);
        body = rest.get(n + 2..).unwrap_or("");
    }
    out
}

/// Poll until `f` holds (every 100 ms, up to `limit`).
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
