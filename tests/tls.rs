//! `[cluster]` connection strings with sslmode: TLS when asked for, plain when disabled.

mod common;

use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

#[tokio::test(flavor = "multi_thread")]
async fn sslmode_require_connects_with_tls_and_disable_without() {
    let lab = TestLab::up(&["--standbys", "1"]);
    // Give the primary a self-signed certificate and turn ssl on.
    let data = lab.dir.join("data/primary");
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-new",
            "-x509",
            "-days",
            "2",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(data.join("server.key"))
        .arg("-out")
        .arg(data.join("server.crt"))
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", stderr(&out));
    let owner = std::fs::metadata(&data).unwrap();
    for f in ["server.key", "server.crt"] {
        let p = data.join(f);
        nix::unistd::chown(&p, Some(owner.uid().into()), Some(owner.gid().into())).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let primary = lab.connect("primary").await;
    for sql in [
        "ALTER SYSTEM SET ssl = on",
        "SELECT pg_reload_conf()",
        "CREATE TABLE tls_seen (ssl bool)",
    ] {
        primary.batch_execute(sql).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let workload = |mode: &str| {
        format!(
            r#"
name = "tls-{mode}"
[run]
duration = "1s"
[cluster]
primary = "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode={mode}"
[[load]]
name = "c"
clients = 2
mix = {{ seen = 1 }}
[[transaction]]
name = "seen"
sql = "INSERT INTO tls_seen (ssl) SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
"#,
            lab.port
        )
    };
    let run = |mode: &str| {
        let w = workload_file(lab.tmp.path(), &format!("tls-{mode}"), &workload(mode));
        let out = std::process::Command::new(BIN)
            .args(["run", w.to_str().unwrap(), "--quiet", "--out"])
            .arg(lab.tmp.path().join(format!("out-{mode}")))
            .env("PGPASSWORD", lab.password())
            .output()
            .unwrap();
        assert!(out.status.success(), "sslmode={mode}: {}", stderr(&out));
        assert!(!String::from_utf8_lossy(&out.stderr).contains(&lab.password()));
    };
    run("require");
    let (tls, plain) = seen(&primary).await;
    assert!(
        tls > 0 && plain == 0,
        "sslmode=require: {tls} over TLS, {plain} without"
    );
    primary.batch_execute("TRUNCATE tls_seen").await.unwrap();
    run("disable");
    let (tls, plain) = seen(&primary).await;
    assert!(
        tls == 0 && plain > 0,
        "sslmode=disable: {tls} over TLS, {plain} without"
    );
}

/// Rows written over TLS and without, as the server saw the sessions.
async fn seen(c: &tokio_postgres::Client) -> (i64, i64) {
    let row = c
        .query_one(
            "SELECT count(*) FILTER (WHERE ssl), count(*) FILTER (WHERE NOT ssl) FROM tls_seen",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}
