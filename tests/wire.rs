//! The load's own protocol client (`pg::wire`) against a real server: every way of signing in
//! the lab can be set up for, binding and its refusals, a pipeline, COPY, and a session the
//! server ends.

mod common;

use common::*;
use pgbench_repl::pg::wire::{WireConn, WireError};
use tokio_postgres::types::Type;

async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

fn config(lab: &TestLab, user: &str, password: &str) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    c.host("127.0.0.1")
        .port(lab.port)
        .user(user)
        .password(password)
        .dbname("postgres");
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn signs_in_binds_pipelines_copies_and_notices_a_terminated_session() {
    let lab = TestLab::up(&["--standbys", "0"]);
    let admin = lab.connect("primary").await;

    // SCRAM (the lab's only method), then MD5 and cleartext for roles allowed so in pg_hba.
    let data = lab.dir.join("data/primary");
    let hba = std::fs::read_to_string(data.join("pg_hba.conf")).unwrap();
    std::fs::write(
        data.join("pg_hba.conf"),
        format!(
            "host all md5_user 127.0.0.1/32 md5\nhost all clear_user 127.0.0.1/32 password\n{hba}"
        ),
    )
    .unwrap();
    admin
        .batch_execute(
            "SET password_encryption = 'md5'; CREATE ROLE md5_user LOGIN PASSWORD 'md5-secret';
             RESET password_encryption; CREATE ROLE clear_user LOGIN PASSWORD 'clear-secret';
             SELECT pg_reload_conf()",
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut conn = WireConn::connect(&config(&lab, "postgres", &lab.password()))
        .await
        .unwrap();
    for (user, pw) in [("md5_user", "md5-secret"), ("clear_user", "clear-secret")] {
        let mut c = WireConn::connect(&config(&lab, user, pw))
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        assert_eq!(
            c.simple("SELECT current_user").await.unwrap().as_deref(),
            Some(user)
        );
    }
    // A wrong password: the server's refusal, with its SQLSTATE, and never the password.
    match WireConn::connect(&config(&lab, "postgres", "not-the-password-42")).await {
        Err(e @ WireError::Db(_)) => {
            assert_eq!(e.code(), Some("28P01"), "{e}");
            assert!(!e.to_string().contains("not-the-password-42"));
        }
        Err(e) => panic!("expected the server's refusal, got {e}"),
        Ok(_) => panic!("a wrong password signed in"),
    }

    // Binding: a value out of its parameter's range is refused before anything is sent, and
    // the session goes on.
    conn.simple("CREATE TABLE w (id int4, note text)")
        .await
        .unwrap();
    let ins = conn
        .statement(0, 0, "INSERT INTO w (id, note) VALUES ($1, $2)")
        .await
        .unwrap();
    assert_eq!(ins.params, vec![Type::INT4, Type::TEXT]);
    let big: i64 = 3_000_000_000;
    let refused = conn
        .execute(
            &ins,
            &[&pgbench_repl::workload::value::Value::Int(big), &"x"],
            None,
        )
        .await;
    assert!(matches!(refused, Err(WireError::Client(_))), "{refused:?}");
    let wrong_count = conn.execute(&ins, &[&1i32], None).await;
    assert!(
        matches!(wrong_count, Err(WireError::Client(_))),
        "{wrong_count:?}"
    );
    assert_eq!(conn.execute(&ins, &[&1i32, &"one"], None).await.unwrap(), 1);
    assert_eq!(count(&admin, "SELECT count(*) FROM w").await, 1);

    // A server error keeps the session; its SQLSTATE is the server's.
    let e = conn.simple("SELECT 1/0").await.unwrap_err();
    assert_eq!(e.code(), Some("22012"));
    assert!(!conn.is_closed());

    // The first row's columns, raw, to a callback; a NULL is None.
    let sel = conn
        .statement(0, 1, "SELECT id, note, NULL::int8 AS nothing FROM w")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let rows = conn
        .execute(
            &sel,
            &[],
            Some(
                &mut |c: &pgbench_repl::pg::wire::Column, raw: Option<&[u8]>| {
                    seen.push((c.name.clone(), raw.map(<[u8]>::to_vec)))
                },
            ),
        )
        .await
        .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(
        seen[0],
        ("id".to_string(), Some(1i32.to_be_bytes().to_vec()))
    );
    assert_eq!(seen[1], ("note".to_string(), Some(b"one".to_vec())));
    assert_eq!(seen[2], ("nothing".to_string(), None));

    // A pipeline: three statements with one write, their replies in order; the failing one in
    // the middle does not stop the others (each has its own Sync).
    let div = conn.statement(0, 2, "SELECT 10 / $1::int4").await.unwrap();
    conn.bind(&ins, &[&2i32, &"two"]).unwrap();
    conn.bind(&div, &[&0i32]).unwrap();
    conn.bind(&ins, &[&3i32, &"three"]).unwrap();
    conn.send().await.unwrap();
    assert_eq!(conn.reply(&ins, None).await.unwrap(), 1);
    assert_eq!(
        conn.reply(&div, None).await.unwrap_err().code(),
        Some("22012")
    );
    assert_eq!(conn.reply(&ins, None).await.unwrap(), 1);
    assert_eq!(count(&admin, "SELECT count(*) FROM w").await, 3);

    // A transaction pipelined with one Sync: BEGIN, insert, a failing statement, insert,
    // COMMIT. The failure is the third answer; the server skips the rest up to the Sync and
    // reports the transaction failed ('E'), so nothing of it lands once it is rolled back.
    let begin = conn.statement(9, 0, "BEGIN").await.unwrap();
    let commit = conn.statement(9, 1, "COMMIT").await.unwrap();
    conn.queue(&begin, &[]).unwrap();
    conn.queue(&ins, &[&4i32, &"four"]).unwrap();
    conn.queue(&div, &[&0i32]).unwrap();
    conn.queue(&ins, &[&5i32, &"five"]).unwrap();
    conn.queue(&commit, &[]).unwrap();
    conn.sync();
    conn.send().await.unwrap();
    assert_eq!(conn.result(&begin, None).await.unwrap(), 0);
    assert_eq!(conn.result(&ins, None).await.unwrap(), 1);
    assert_eq!(
        conn.result(&div, None).await.unwrap_err().code(),
        Some("22012")
    );
    assert_eq!(conn.ready().await.unwrap(), b'E');
    conn.simple("ROLLBACK").await.unwrap();
    assert_eq!(count(&admin, "SELECT count(*) FROM w").await, 3);
    // ... and the same without the failure commits both rows with one round trip.
    conn.queue(&begin, &[]).unwrap();
    conn.queue(&ins, &[&4i32, &"four"]).unwrap();
    conn.queue(&ins, &[&5i32, &"five"]).unwrap();
    conn.queue(&commit, &[]).unwrap();
    conn.sync();
    conn.send().await.unwrap();
    for st in [&begin, &ins, &ins, &commit] {
        conn.result(st, None).await.unwrap();
    }
    assert_eq!(conn.ready().await.unwrap(), b'I');
    assert_eq!(count(&admin, "SELECT count(*) FROM w").await, 5);

    // COPY in binary, in several chunks: what the server counts is what landed.
    let types = conn
        .copy_types(1, "w", &["id".into(), "note".into()])
        .await
        .unwrap();
    conn.copy_in("COPY w (id, note) FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    use pgbench_repl::workload::value::Value;
    for i in 0..20_000i64 {
        let note = if i % 2 == 0 {
            Value::Text(format!("row {i} {}", "x".repeat(40)))
        } else {
            Value::Null
        };
        conn.copy_row(&types, &[Value::Int(i), note]).await.unwrap();
    }
    assert_eq!(conn.copy_finish().await.unwrap(), 20_000);
    assert_eq!(
        count(&admin, "SELECT count(*) FROM w WHERE note IS NULL").await,
        10_000
    );
    // A value COPY cannot encode fails the COPY, and nothing of it stays.
    conn.copy_in("COPY w (id, note) FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    conn.copy_row(&types, &[Value::Int(7), Value::Null])
        .await
        .unwrap();
    let bad = conn.copy_row(&types, &[Value::Int(big), Value::Null]).await;
    assert!(matches!(bad, Err(WireError::Client(_))), "{bad:?}");
    assert_eq!(count(&admin, "SELECT count(*) FROM w").await, 20_005);
    assert!(!conn.is_closed());

    // The server ends the session: the next request sees it, and the connection says closed.
    let pid = conn
        .simple("SELECT pg_backend_pid()")
        .await
        .unwrap()
        .unwrap();
    admin
        .batch_execute(&format!("SELECT pg_terminate_backend({pid})"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let gone = conn
        .execute(&ins, &[&4i32, &"four"], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&gone, WireError::Lost(_)) || gone.code() == Some("57P01"),
        "{gone}"
    );
    assert!(conn.is_closed());
}
