//! Bad input to `run`: exit code 2, a message naming the file, the line and the key, and no
//! result directory. An unreachable server: exit 1 within seconds, naming it, no password.

mod common;

use common::*;
use std::time::{Duration, Instant};

const GOOD: &str = r#"name = "t"
[run]
duration = "1s"
[[load]]
name = "g"
clients = 2
mix = { a = 1 }
[[transaction]]
name = "a"
params = { x = "uniform(1, 10)" }
sql = "SELECT $x::int"
"#;

/// Run `run` on a workload that must be refused before touching any server (no lab needed:
/// a cluster section that points nowhere proves nothing connects).
fn refused(text: &str) -> String {
    let tmp = temp_dir();
    let w = workload_file(tmp.path(), "bad", text);
    let out_dir = tmp.path().join("out");
    let out = cli(&[
        "run",
        w.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--dir",
        tmp.path().join("nolab").to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2 for:\n{text}\n{err}"
    );
    assert!(
        !out_dir.exists(),
        "a result directory was made for bad input"
    );
    assert!(err.contains("bad.toml"), "the file is not named: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn the_good_file_parses_so_each_case_below_tests_one_change() {
    let tmp = temp_dir();
    let w = workload_file(tmp.path(), "good", GOOD);
    let plan = pgbench_repl::config::load_workload(&w, &[]);
    assert!(plan.is_ok(), "{:?}", plan.err());
}

#[test]
fn toml_syntax_error_names_line_and_column() {
    let err = refused(&GOOD.replace("clients = 2", "clients = = 2"));
    assert!(err.contains("bad.toml:6:"), "{err}");
}

#[test]
fn unknown_key_names_the_nearest_valid_one() {
    let err = refused(&GOOD.replace("clients = 2", "clientz = 2"));
    assert!(
        err.contains("bad.toml:6:")
            && err.contains("clientz")
            && err.contains("did you mean `clients`"),
        "{err}"
    );
}

#[test]
fn wrong_type_is_named() {
    let err = refused(&GOOD.replace("clients = 2", "clients = \"many\""));
    assert!(
        err.contains("bad.toml:6:") && err.contains("integer"),
        "{err}"
    );
}

#[test]
fn unknown_generator() {
    let err = refused(&GOOD.replace("uniform(1, 10)", "normal(1, 10)"));
    assert!(
        err.contains(":10:")
            && err.contains("params.x")
            && err.contains("unknown generator 'normal'")
            && err.contains("zipf("),
        "{err}"
    );
}

#[test]
fn unknown_transaction_in_mix() {
    let err = refused(&GOOD.replace("mix = { a = 1 }", "mix = { b = 1 }"));
    assert!(
        err.contains(":7:")
            && err.contains("load 'g', mix")
            && err.contains("unknown transaction 'b'"),
        "{err}"
    );
}

#[test]
fn undefined_param() {
    let err = refused(&GOOD.replace("SELECT $x::int", "SELECT $y::int"));
    assert!(
        err.contains(":11:")
            && err.contains("transaction 'a', sql[0]")
            && err.contains("$y is not defined"),
        "{err}"
    );
}

#[test]
fn empty_and_zero_weight_mixes() {
    for mix in ["mix = {}", "mix = { a = 0 }"] {
        let err = refused(&GOOD.replace("mix = { a = 1 }", mix));
        assert!(
            err.contains(":7:") && err.contains("mix") && err.contains("weight above 0"),
            "{err}"
        );
    }
    let err = refused(&GOOD.replace("mix = { a = 1 }", "mix = { a = -1 }"));
    assert!(err.contains("negative"), "{err}");
}

#[test]
fn negative_counts() {
    let err = refused(&GOOD.replace("clients = 2", "clients = -3"));
    assert!(
        err.contains(":6:") && err.contains("clients") && err.contains("-3"),
        "{err}"
    );
    let err = refused(&GOOD.replace("clients = 2", "clients = 2\nstop_after = -5"));
    assert!(err.contains(":7:") && err.contains("stop_after"), "{err}");
}

#[test]
fn durations_that_do_not_parse() {
    let err = refused(&GOOD.replace("duration = \"1s\"", "duration = \"1 fortnight\""));
    assert!(
        err.contains(":3:") && err.contains("run.duration") && err.contains("unit"),
        "{err}"
    );
    let err = refused(&GOOD.replace("duration = \"1s\"", "duration = \"soon\""));
    assert!(err.contains("run.duration"), "{err}");
}

#[test]
fn unknown_event_action() {
    let err = refused(&format!(
        "{GOOD}\n[[event]]\nat = \"1s\"\naction = \"pause_lnk\"\ntarget = \"standby1\"\n"
    ));
    assert!(
        err.contains("event[0].action") && err.contains("did you mean pause_link"),
        "{err}"
    );
}

#[test]
fn bad_set_override_is_named() {
    let tmp = temp_dir();
    let w = workload_file(tmp.path(), "bad", GOOD);
    let out = cli(&[
        "run",
        w.to_str().unwrap(),
        "--set",
        "load.nope.clients=3",
        "--dir",
        tmp.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no [[load]] named 'nope'"),
        "{}",
        stderr(&out)
    );
    let out = cli(&[
        "run",
        w.to_str().unwrap(),
        "--set",
        "load.g.clients=0",
        "--dir",
        tmp.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--set load.g.clients=0"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_file() {
    let out = cli(&["run", "/nonexistent/w.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/w.toml"));
}

#[test]
fn unreachable_server_exits_1_quickly_naming_it_without_the_password() {
    let tmp = temp_dir();
    let port = free_port_block();
    let text =
        format!("{GOOD}\n[cluster]\nprimary = \"postgres://bench:s3cretpw@127.0.0.1:{port}/db\"\n");
    let w = workload_file(tmp.path(), "unreach", &text);
    let started = Instant::now();
    let out = cli(&[
        "run",
        w.to_str().unwrap(),
        "--out",
        tmp.path().join("o").to_str().unwrap(),
    ]);
    assert!(started.elapsed() < Duration::from_secs(10));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("s3cretpw"), "the password leaked: {err}");
    assert!(!tmp.path().join("o").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_rejected_at_prepare_names_transaction_and_statement() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let text = GOOD.replace(
        "sql = \"SELECT $x::int\"",
        "sql = [\"SELECT $x::int\", \"SELECT * FROM no_such_table WHERE id = $x\"]",
    );
    let w = workload_file(lab.tmp.path(), "bad", &text);
    let (out, dir) = lab.run(w.to_str().unwrap(), "bad", &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("transaction 'a', sql[1]")
            && err.contains("no_such_table")
            && err.contains("42P01"),
        "{err}"
    );
    assert!(!dir.exists());
    // Bad [setup] SQL too.
    let w = workload_file(
        lab.tmp.path(),
        "bad",
        &format!("{GOOD}\n[setup]\nsql = \"CREATE TABLEE x ()\"\n"),
    );
    let (out, _) = lab.run(w.to_str().unwrap(), "bad2", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("[setup] sql") && stderr(&out).contains("syntax error"),
        "{}",
        stderr(&out)
    );
    // A generator whose range cannot fit the parameter's type: found when the statement is
    // prepared, before the run (it used to run and count 29% of transactions as unknown).
    let text = GOOD
        .replace("uniform(1, 10)", "uniform(1, 3000000000)")
        .replace("SELECT $x::int", "SELECT $x::int4");
    let w = workload_file(lab.tmp.path(), "bad", &text);
    let (out, dir) = lab.run(w.to_str().unwrap(), "bad3", &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for part in [
        "transaction 'a'",
        "sql[0]",
        "parameter $x",
        "3000000000",
        "int4",
    ] {
        assert!(err.contains(part), "{part} missing: {err}");
    }
    assert!(!dir.exists());
    // Text into a number, in a COPY column.
    let copy = r#"name = "t"
[run]
duration = "1s"
[setup]
sql = "CREATE TABLE IF NOT EXISTS cn (n numeric)"
[[load]]
name = "g"
clients = 1
mix = { c = 1 }
[[transaction]]
name = "c"
copy = { table = "cn", rows_per_tx = 10, columns = { n = "text(5)" } }
"#;
    let w = workload_file(lab.tmp.path(), "bad", copy);
    let (out, _) = lab.run(w.to_str().unwrap(), "bad4", &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("copy column n") && err.contains("numeric"),
        "{err}"
    );
}

#[test]
fn numeric_extremes_are_bad_input_not_panics() {
    // Each was a panic (exit 101 with a backtrace) before the checks were bounded.
    let cases: &[(&str, &str, &str)] = &[
        (
            "duration = \"1s\"",
            "duration = \"100000000000000000000s\"",
            "run.duration",
        ),
        ("clients = 2", "clients = 2\nrate = 1e-30", "rate"),
        ("clients = 2", "clients = 2\nrate = 1e300", "rate"),
        ("clients = 2", "clients = 9223372036854775807", "clients"),
        ("mix = { a = 1 }", "mix = { a = 4294967297 }", "mix.a"),
        (
            "uniform(1, 10)",
            "zipf(-9223372036854775808, 9223372036854775807, 1.1)",
            "params.x",
        ),
        ("uniform(1, 10)", "zipf(1, 10, 1e400)", "params.x"),
        (
            "uniform(1, 10)",
            "uniform(1, 99999999999999999999)",
            "params.x",
        ),
        ("uniform(1, 10)", "text(18446744073709551615)", "params.x"),
    ];
    for (from, to, key) in cases {
        let err = refused(&GOOD.replace(from, to));
        assert!(err.contains(key), "{to}: {err}");
        assert!(err.contains("bad.toml:"), "{to}: no line: {err}");
    }
    let at = format!(
        "{GOOD}\n[[event]]\nat = \"99999999999999h\"\naction = \"exec\"\ncommand = \"true\"\n"
    );
    let err = refused(&at);
    assert!(err.contains("event[0].at") && err.contains(":14:"), "{err}");
    let err = refused(&format!(
        "{GOOD}\n[[event]]\nat = \"1s\"\naction = \"exec\"\ncommand = \"true\"\ntimeout = \"0s\"\n"
    ));
    assert!(err.contains("event[0].timeout"), "{err}");
    let out = cli(&["run", "x.toml", "--duration", "1e30h"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn max_tries_is_checked() {
    let err = refused(&GOOD.replace("clients = 2", "clients = 2\nmax_tries = 0"));
    assert!(
        err.contains("load 'g', max_tries") && err.contains(":7:"),
        "{err}"
    );
}

#[test]
fn a_pipeline_of_dependent_statements_is_refused() {
    let text = GOOD.replace(
        "sql = \"SELECT $x::int\"",
        "pipeline = true\nsql = [\"INSERT INTO t (x) VALUES ($x) RETURNING id AS new_id\", \"SELECT $new_id\"]",
    );
    let err = refused(&text);
    assert!(
        err.contains("transaction 'a', pipeline")
            && err.contains("$new_id")
            && err.contains("independent"),
        "{err}"
    );
}

#[test]
fn errors_found_once_the_nodes_are_known_name_the_file_the_line_and_the_key() {
    // A [cluster] that points nowhere: the event's node is checked before anything connects.
    let text = format!(
        "{GOOD}\n[[event]]\nat = \"1s\"\naction = \"kill\"\ntarget = \"standby9\"\ncommand = \"true\"\n\n\
         [cluster]\nprimary = \"host=127.0.0.1 port=1 user=x dbname=x\"\n"
    );
    let err = refused(&text);
    assert!(
        err.contains("bad.toml:15:") && err.contains("event[0].target") && err.contains("standby9"),
        "{err}"
    );
    // A kill against a [cluster] needs a command: the same place, its own key.
    let text = text
        .replace("command = \"true\"\n", "")
        .replace("standby9", "primary");
    let err = refused(&text);
    assert!(
        err.contains("bad.toml:15:") && err.contains("event[0].action"),
        "{err}"
    );
    // A [sweep]'s SLO is its own key, not [expect]'s.
    let sweep = GOOD.replace("clients = 2", "clients = 2\nrate = 10")
        + "\n[sweep]\ngroup = \"g\"\nrates = [10, 20]\nslo = { \"latency_ms.p99\" = \"about 5\" }\n";
    let err = refused(&sweep);
    assert!(err.contains("sweep.slo.\"latency_ms.p99\""), "{err}");
    assert!(!err.contains("expect."), "{err}");
}

#[test]
fn a_pg_version_matrix_is_checked() {
    let err = refused(&format!(
        "{GOOD}\n[matrix]\npg_version = [15, 18]\nlink_delay = [\"0ms\", \"5ms\"]\n"
    ));
    assert!(
        err.contains(":13:")
            && err.contains("matrix.pg_version")
            && err.contains("no other matrix key"),
        "{err}"
    );
    let err = refused(&format!("{GOOD}\n[matrix]\npg_version = [15, 15]\n"));
    assert!(
        err.contains("matrix.pg_version") && err.contains("15 is listed twice"),
        "{err}"
    );
    let err = refused(&format!("{GOOD}\n[matrix]\npg_version = [7]\n"));
    assert!(err.contains("7 is not a PostgreSQL major"), "{err}");
    let err = refused(&format!(
        "{GOOD}\n[matrix]\nlink_delay = [\"1ms\"]\nrounds = 2\n"
    ));
    assert!(
        err.contains("matrix.rounds") && err.contains("give pg_version too"),
        "{err}"
    );
    let err = refused(&format!(
        "{GOOD}\n[matrix]\npg_version = [15]\nrounds = 0\n"
    ));
    assert!(
        err.contains("matrix.rounds") && err.contains("1 to 10"),
        "{err}"
    );
    // A major this machine does not have: named, with how to get it, before anything starts.
    let err = refused(&format!("{GOOD}\n[matrix]\npg_version = [15, 12]\n"));
    assert!(
        err.contains("no PostgreSQL 12 server binaries") && err.contains("fetches 14 to 18"),
        "{err}"
    );
}
