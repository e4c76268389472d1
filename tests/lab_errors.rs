//! The lab's clear errors: what failed, what to do, and exit code 2 (bad input) or 1.

mod common;

use common::*;

#[test]
fn busy_port_is_named_and_exits_2() {
    let port = free_port_block();
    let _holder = std::net::TcpListener::bind(("127.0.0.1", port + 1)).unwrap();
    let tmp = temp_dir();
    let dir = tmp.path().join("lab");
    let out = cli(&[
        "cluster",
        "up",
        "--dir",
        dir.to_str().unwrap(),
        "--port",
        &port.to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{}", port + 1)),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--port"));
    assert!(!dir.join("state.json").exists());
}

#[test]
fn missing_server_binaries_say_what_to_install() {
    let tmp = temp_dir();
    let out = std::process::Command::new(BIN)
        .args(["cluster", "up", "--dir"])
        .arg(tmp.path().join("lab"))
        .env("PGBENCH_REPL_PG_BINDIR", tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("initdb") && err.contains("apt-get install postgresql"),
        "{err}"
    );
}

#[test]
fn unwritable_directory_is_named() {
    let out = cli(&[
        "cluster",
        "up",
        "--dir",
        "/proc/version/lab",
        "--port",
        &free_port_block().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/proc/version/lab"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_lab_is_exit_2() {
    let tmp = temp_dir();
    for args in [
        ["cluster", "status"],
        ["link", "status"],
        ["cluster", "down"],
    ] {
        let mut a = args.to_vec();
        let d = tmp.path().join("nothing");
        a.extend(["--dir", d.to_str().unwrap()]);
        let out = cli(&a);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("cluster up"), "{}", stderr(&out));
    }
}

#[test]
fn bad_values_are_usage_errors() {
    for (args, needle) in [
        (vec!["cluster", "up", "--sync", "sometimes"], "first:N"),
        (vec!["cluster", "up", "--link-delay", "fast"], "500ms"),
        (vec!["cluster", "up", "--link-rate", "lots"], "mbit"),
    ] {
        let out = cli(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_fails_to_start_shows_its_log() {
    let lab = TestLab::up(&["--standbys", "1"]);
    lab.ok(&["cluster", "down"]);
    let conf = lab.dir.join("data/primary/pgbench-repl.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("shared_buffers = 'plenty'\n");
    std::fs::write(&conf, text).unwrap();
    let out = lab.cli(&["cluster", "up"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("primary failed to start"), "{err}");
    assert!(
        err.contains("shared_buffers"),
        "the log tail is missing: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_node_is_exit_2() {
    let lab = TestLab::up(&["--standbys", "1"]);
    for args in [
        vec!["cluster", "kill", "standby7"],
        vec!["link", "pause", "standby7"],
        vec!["cluster", "env", "nope"],
    ] {
        let out = lab.cli(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("standby1"),
            "lists the nodes: {}",
            stderr(&out)
        );
    }
}

/// `cluster up` with these arguments in a fresh directory: exit 2, the message, and no lab.
fn refused_up(extra: &[&str], env_path: Option<&str>) -> String {
    let tmp = temp_dir();
    let dir = tmp.path().join("lab");
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["cluster", "up", "--dir", dir.to_str().unwrap()])
        .args(["--port", &free_port_block().to_string()])
        .args(extra);
    if let Some(p) = env_path {
        cmd.env("PATH", p);
    }
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
    assert!(!dir.exists(), "{extra:?} left {}", dir.display());
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn orchestrator_input_is_checked_before_the_lab_is_touched() {
    let err = refused_up(&["--ha", "repmgr"], None);
    assert!(
        err.contains("'repmgr'") && err.contains("pg_auto_failover") && err.contains("patroni"),
        "{err}"
    );
    let err = refused_up(
        &["--ha", "pg_auto_failover", "--ha-setting", "ttl=10s"],
        None,
    );
    assert!(
        err.contains("no such setting") && err.contains("node_considered_unhealthy_timeout"),
        "{err}"
    );
    let err = refused_up(&["--ha", "patroni", "--ha-setting", "ttl=ten"], None);
    assert!(err.contains("ttl=ten") && err.contains("expected"), "{err}");
    let err = refused_up(&["--ha", "patroni", "--ha-setting", "ttl=5s"], None);
    assert!(
        err.contains("loop_wait + 2 x retry_timeout <= ttl"),
        "{err}"
    );
    let err = refused_up(
        &["--ha", "patroni", "--ha-setting", "maximum_lag_on_failover"],
        None,
    );
    assert!(err.contains("NAME=VALUE"), "{err}");
    let err = refused_up(&["--ha-setting", "ttl=10s"], None);
    assert!(err.contains("needs --ha"), "{err}");
    let err = refused_up(&["--ha", "patroni", "--link-delay", "5ms"], None);
    assert!(err.contains("--link-delay"), "{err}");
}

#[test]
fn a_missing_orchestrator_package_is_named() {
    // A PATH without the orchestrators (the server binaries are found in their own
    // directory).
    let empty = temp_dir();
    let path = empty.path().to_str().unwrap();
    let err = refused_up(&["--ha", "pg_auto_failover"], Some(path));
    assert!(
        err.contains("apt-get install pg-auto-failover-cli"),
        "{err}"
    );
    let err = refused_up(&["--ha", "patroni"], Some(path));
    assert!(
        err.contains("apt-get install patroni") && err.contains("apt-get install etcd-server"),
        "{err}"
    );
}
