//! The lab on real PostgreSQL: replication, sync modes, the link shaper, failover, shutdown.

mod common;

use common::*;
use std::time::{Duration, Instant};

async fn streaming(client: &tokio_postgres::Client) -> Vec<(String, String)> {
    client
        .query(
            "SELECT application_name, sync_state FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn lsn_bytes(client: &tokio_postgres::Client, expr: &str) -> i64 {
    client
        .query_one(&format!("SELECT ({expr} - '0/0'::pg_lsn)::int8"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn up_replicates_to_both_standbys_and_standbys_refuse_writes() {
    let lab = TestLab::up(&[]);
    let primary = lab.connect("primary").await;
    let names: Vec<String> = streaming(&primary).await.into_iter().map(|s| s.0).collect();
    assert_eq!(names, ["standby1", "standby2"]);

    primary
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t VALUES (1, 'written on the primary')")
        .await
        .unwrap();
    for standby in ["standby1", "standby2"] {
        let c = lab.connect(standby).await;
        let note = eventually(Duration::from_secs(10), || async {
            c.query_opt("SELECT note FROM t WHERE id = 1", &[])
                .await
                .ok()
                .flatten()
        })
        .await
        .unwrap_or_else(|| panic!("the row never reached {standby}"));
        assert_eq!(note.get::<_, String>(0), "written on the primary");
        let err = c
            .execute("INSERT INTO t VALUES (2, 'x')", &[])
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION),
            "{standby} accepted a write: {err}"
        );
    }

    // Each standby has its own slot, and application_name = node name.
    let slots: Vec<String> = primary
        .query(
            "SELECT slot_name::text FROM pg_replication_slots WHERE active ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(slots, ["standby1", "standby2"]);

    // Standbys stream through the shaper: the walreceiver's peer is the link port, not the primary.
    let s1 = lab.connect("standby1").await;
    let sender_port: i32 = s1
        .query_one("SELECT sender_port FROM pg_stat_wal_receiver", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sender_port as u16, lab.port + 11);

    // A second `up` is harmless.
    lab.ok(&["cluster", "up"]);
    assert_eq!(streaming(&lab.connect("primary").await).await.len(), 2);

    // status --json tells the same story.
    let status: serde_json::Value =
        serde_json::from_str(&lab.ok(&["cluster", "status", "--json"])).unwrap();
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for n in nodes {
        assert_eq!(n["running"], true, "{n}");
        assert_eq!(n["reachable"], true, "{n}");
    }
    assert_eq!(nodes[1]["state"], "streaming");
    assert_eq!(nodes[1]["in_recovery"], true);
    assert_eq!(nodes[0]["in_recovery"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn security_password_only_on_loopback_and_env_reaches_nodes() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let primary = lab.connect("primary").await;
    let listen: String = primary
        .query_one("SHOW listen_addresses", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(listen, "127.0.0.1");
    let hba = primary
        .query(
            "SELECT auth_method FROM pg_hba_file_rules WHERE auth_method IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    assert!(!hba.is_empty());
    for r in hba {
        assert_eq!(r.get::<_, String>(0), "scram-sha-256");
    }
    let mode = std::fs::metadata(lab.dir.join("credentials/password")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);

    // A wrong password is refused.
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(lab.port)
        .user("postgres")
        .password("wrong")
        .dbname("postgres");
    assert!(config.connect(tokio_postgres::NoTls).await.is_err());

    // `cluster env` exports reach a node with psql, and carry no password.
    let env = lab.ok(&["cluster", "env", "standby1"]);
    assert!(!env.contains(&lab.password()));
    let script =
        format!("eval \"{env}\"; psql -tAc 'SELECT pg_is_in_recovery()'").replace('$', "\\$");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out).trim(),
        "t",
        "psql via cluster env: {}",
        stderr(&out)
    );
    let status = lab.ok(&["cluster", "status", "--json"]);
    assert!(!status.contains(&lab.password()));
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_first_1_makes_standby1_sync() {
    let lab = TestLab::up(&["--sync", "first:1"]);
    let primary = lab.connect("primary").await;
    let states = streaming(&primary).await;
    assert_eq!(
        states,
        [
            ("standby1".to_string(), "sync".to_string()),
            ("standby2".to_string(), "potential".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn link_pause_grows_byte_lag_and_resume_catches_up() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let primary = lab.connect("primary").await;
    let standby = lab.connect("standby1").await;
    primary
        .batch_execute("CREATE TABLE w (id serial, pad text)")
        .await
        .unwrap();
    lab.ok(&["link", "pause", "standby1"]);
    let mut lags = Vec::new();
    for _ in 0..5 {
        primary
            .execute(
                "INSERT INTO w (pad) SELECT repeat('x', 200) FROM generate_series(1, 2000)",
                &[],
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let current = lsn_bytes(&primary, "pg_current_wal_lsn()").await;
        let replay = lsn_bytes(&standby, "pg_last_wal_replay_lsn()").await;
        lags.push(current - replay);
    }
    assert!(lags[0] > 0, "no lag while paused: {lags:?}");
    assert!(
        lags.windows(2).all(|w| w[1] > w[0]),
        "lag did not grow: {lags:?}"
    );
    // The connection stayed open: a pause is a stall, not a partition.
    let links: serde_json::Value =
        serde_json::from_str(&lab.ok(&["link", "status", "--json"])).unwrap();
    let s1 = links
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["node"] == "standby1")
        .unwrap();
    assert_eq!(s1["paused"], true);
    assert_eq!(s1["connections"], 1);

    lab.ok(&["link", "resume", "standby1"]);
    let caught_up = eventually(Duration::from_secs(20), || async {
        let current = lsn_bytes(&primary, "pg_current_wal_lsn()").await;
        let replay = lsn_bytes(&standby, "pg_last_wal_replay_lsn()").await;
        (current - replay == 0).then_some(())
    })
    .await;
    assert!(
        caught_up.is_some(),
        "standby1 did not catch up after resume"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn link_delay_50ms_makes_sync_commit_take_a_round_trip() {
    let lab = TestLab::up(&[
        "--standbys",
        "1",
        "--sync",
        "first:1",
        "--link-delay",
        "50ms",
    ]);
    let primary = lab.connect("primary").await;
    primary
        .batch_execute("CREATE TABLE c (id int)")
        .await
        .unwrap();
    let mut times = Vec::new();
    for i in 0..3 {
        let start = Instant::now();
        primary
            .execute("INSERT INTO c VALUES ($1)", &[&i])
            .await
            .unwrap();
        times.push(start.elapsed());
    }
    for t in &times {
        assert!(
            *t >= Duration::from_millis(100),
            "a sync commit took {t:?} over a 50 ms link: {times:?}"
        );
    }
    // With the delay removed, the same commit no longer waits a round trip.
    lab.ok(&["link", "set", "standby1", "--delay", "0ms"]);
    let start = Instant::now();
    primary
        .execute("INSERT INTO c VALUES (9)", &[])
        .await
        .unwrap();
    let fast = start.elapsed();
    assert!(
        fast < times.iter().copied().min().unwrap(),
        "{fast:?} vs {times:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_promote_rejoin() {
    let lab = TestLab::up(&[]);
    let primary = lab.connect("primary").await;
    primary
        .batch_execute("CREATE TABLE f (id int); INSERT INTO f VALUES (1)")
        .await
        .unwrap();
    drop(primary);
    lab.ok(&["cluster", "kill", "primary"]);
    let status: serde_json::Value =
        serde_json::from_str(&lab.ok(&["cluster", "status", "--json"])).unwrap();
    assert_eq!(
        status["nodes"][0]["running"], false,
        "status hides the killed primary"
    );

    lab.ok(&["cluster", "promote", "standby1"]);
    let new_primary = lab.connect("standby1").await;
    new_primary
        .execute("INSERT INTO f VALUES (2)", &[])
        .await
        .unwrap();
    let names: Vec<String> = streaming(&new_primary)
        .await
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(
        names,
        ["standby2"],
        "standby2 does not stream from the new primary"
    );
    let s2 = lab.connect("standby2").await;
    let seen = eventually(Duration::from_secs(10), || async {
        let n: i64 = s2
            .query_one("SELECT count(*) FROM f", &[])
            .await
            .ok()?
            .get(0);
        (n == 2).then_some(())
    })
    .await;
    assert!(
        seen.is_some(),
        "standby2 did not receive the new primary's write"
    );

    lab.ok(&["cluster", "rejoin", "primary"]);
    let names: Vec<String> = streaming(&new_primary)
        .await
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(names, ["primary", "standby2"]);
    new_primary
        .execute("INSERT INTO f VALUES (3)", &[])
        .await
        .unwrap();
    let old = lab.connect("primary").await;
    let seen = eventually(Duration::from_secs(10), || async {
        let n: i64 = old
            .query_one("SELECT count(*) FROM f", &[])
            .await
            .ok()?
            .get(0);
        (n == 3).then_some(())
    })
    .await;
    assert!(
        seen.is_some(),
        "the rejoined node does not follow the new primary"
    );
    let in_recovery: bool = old
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(in_recovery);
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_drops_the_gone_standby_from_synchronous_standby_names() {
    let lab = TestLab::up(&["--sync", "first:1"]);
    lab.ok(&["cluster", "kill", "primary"]);
    lab.ok(&["cluster", "promote", "standby1"]);
    let p = lab.connect("standby1").await;
    let names: String = p
        .query_one("SHOW synchronous_standby_names", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(names, "FIRST 1 (\"standby2\")");
    // A commit does not hang waiting for a standby that is gone.
    p.batch_execute("CREATE TABLE s (id int)").await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        p.execute("INSERT INTO s VALUES (1)", &[]),
    )
    .await
    .expect("a commit on the new primary hung")
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn down_leaves_no_process_and_destroy_removes_the_directory() {
    let lab = TestLab::up(&["--standbys", "1"]);
    assert!(!processes_mentioning(&lab.dir).is_empty());
    lab.ok(&["cluster", "down"]);
    let left = processes_mentioning(&lab.dir);
    assert!(left.is_empty(), "processes left after down: {left:?}");
    // up brings the same lab back.
    lab.ok(&["cluster", "up"]);
    assert_eq!(streaming(&lab.connect("primary").await).await.len(), 1);
    lab.ok(&["cluster", "destroy"]);
    assert!(!lab.dir.exists());
    assert!(processes_mentioning(&lab.dir).is_empty());
}

/// As a normal user the servers run as that user: here the tests run as root, so run the tool
/// itself as `postgres` (a copy of the binary in a directory that user owns).
#[tokio::test(flavor = "multi_thread")]
async fn works_as_a_normal_user_too() {
    if !nix::unistd::Uid::effective().is_root() {
        // Not root: every other test in this file already runs the lab as a normal user.
        let lab = TestLab::up(&["--standbys", "1"]);
        assert_eq!(streaming(&lab.connect("primary").await).await.len(), 1);
        return;
    }
    let user = nix::unistd::User::from_name("postgres")
        .unwrap()
        .expect("a postgres OS user");
    let tmp = temp_dir();
    nix::unistd::chown(tmp.path(), Some(user.uid), Some(user.gid)).unwrap();
    let bin = tmp.path().join("pgbench-repl");
    std::fs::copy(BIN, &bin).unwrap();
    let dir = tmp.path().join("lab");
    let port = free_port_block().to_string();
    let as_user = |args: &[&str]| {
        std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&bin)
            .args(args)
            .args(["--dir", dir.to_str().unwrap()])
            .current_dir(tmp.path())
            .output()
            .unwrap()
    };
    let out = as_user(&["cluster", "up", "--standbys", "1", "--port", &port]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value =
        serde_json::from_slice(&as_user(&["cluster", "status", "--json"]).stdout).unwrap();
    assert_eq!(status["nodes"][1]["state"], "streaming", "{status}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap()).unwrap();
    assert!(
        state["os_user"].is_null(),
        "a normal user runs the servers itself"
    );
    let out = as_user(&["cluster", "destroy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(processes_mentioning(&dir).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn link_cut_partitions_and_heal_restores() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let primary = lab.connect("primary").await;
    lab.ok(&["link", "cut", "standby1"]);
    // The connection is reset at once and new ones are refused: standby1 stays gone.
    let gone = eventually(Duration::from_secs(5), || async {
        streaming(&primary).await.is_empty().then_some(())
    })
    .await;
    assert!(gone.is_some(), "standby1 still streams through a cut link");
    tokio::time::sleep(Duration::from_secs(2)).await; // several reconnect attempts (every 500 ms)
    assert!(
        streaming(&primary).await.is_empty(),
        "standby1 reconnected through a cut link"
    );
    primary
        .batch_execute("CREATE TABLE cut (id int); INSERT INTO cut VALUES (1)")
        .await
        .unwrap();
    lab.ok(&["link", "heal", "standby1"]);
    let back = eventually(Duration::from_secs(10), || async {
        (streaming(&primary).await.len() == 1).then_some(())
    })
    .await;
    assert!(back.is_some(), "standby1 did not come back after heal");
    let s1 = lab.connect("standby1").await;
    let seen = eventually(Duration::from_secs(10), || async {
        s1.query_one("SELECT count(*) FROM cut", &[])
            .await
            .ok()
            .map(|r| r.get::<_, i64>(0))
            .filter(|n| *n == 1)
    })
    .await;
    assert!(
        seen.is_some(),
        "the write made during the partition never arrived"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn link_rate_limits_how_fast_a_standby_catches_up() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let primary = lab.connect("primary").await;
    let standby = lab.connect("standby1").await;
    primary
        .batch_execute("CREATE TABLE bulk (pad text)")
        .await
        .unwrap();
    lab.ok(&["link", "set", "standby1", "--rate", "500kB"]);
    let start_lsn = lsn_bytes(&primary, "pg_current_wal_lsn()").await;
    let started = Instant::now();
    primary
        .execute("INSERT INTO bulk SELECT md5(g::text) || md5((g + 1)::text) FROM generate_series(1, 15000) g", &[])
        .await
        .unwrap();
    let target = lsn_bytes(&primary, "pg_current_wal_lsn()").await;
    let wal = (target - start_lsn) as f64;
    assert!(wal > 1.0e6, "only {wal} bytes of WAL");
    let done = eventually(Duration::from_secs(60), || async {
        (lsn_bytes(&standby, "pg_last_wal_replay_lsn()").await >= target).then_some(())
    })
    .await;
    assert!(done.is_some(), "standby1 never caught up");
    let secs = started.elapsed().as_secs_f64();
    // At 500 kB/s the WAL cannot arrive faster than wal / 500 kB (a little burst allowed).
    assert!(
        secs >= 0.8 * wal / 500e3,
        "{wal} bytes arrived in {secs:.2} s over a 500 kB/s link"
    );
}
