//! What transactions bind and capture: values returned by one statement reach the next
//! unchanged, and serialization failures are retried as pgbench --max-tries does.

mod common;

use common::*;

async fn one(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn returned_values_of_every_type_reach_the_next_statement_unchanged() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let w = workload_file(
        lab.tmp.path(),
        "rt",
        r#"name = "rt"
[run]
duration = "2s"
[setup]
sql = """
DROP TABLE IF EXISTS rt_src, rt_dst, rt_txt;
CREATE TABLE rt_src (id bigserial PRIMARY KEY, u uuid DEFAULT gen_random_uuid(),
  n numeric DEFAULT (random() * 1e6)::numeric(20, 6), ts timestamptz DEFAULT clock_timestamp(),
  b bytea DEFAULT decode(md5(random()::text), 'hex'), j jsonb DEFAULT jsonb_build_object('r', random()),
  a int[] DEFAULT ARRAY[(random() * 100)::int, 7]);
CREATE TABLE rt_dst (LIKE rt_src);
CREATE TABLE rt_txt (id bigint, t text);
"""
[[load]]
name = "g"
clients = 2
mix = { copy_row = 1 }
[[transaction]]
name = "copy_row"
sql = [
  "INSERT INTO rt_src DEFAULT VALUES RETURNING id, u, n, ts, b, j, a",
  "INSERT INTO rt_dst VALUES ($id, $u, $n, $ts, $b, $j, $a)",
  "INSERT INTO rt_txt VALUES ($id, $u)",
]
"#,
    );
    let (s, _) = lab.run_ok(w.to_str().unwrap(), "rt", &[]);
    let ok = s["transactions"]["copy_row"]["ok"].as_i64().unwrap();
    assert!(ok > 50, "{ok}");
    assert_eq!(
        s["transactions"]["copy_row"]["failed"], 0,
        "{}",
        s["transactions"]
    );
    let c = lab.connect("primary").await;
    assert_eq!(one(&c, "SELECT count(*) FROM rt_src").await, ok);
    let same = one(
        &c,
        "SELECT count(*) FROM rt_src s JOIN rt_dst d ON s.id = d.id AND s.u = d.u AND s.n = d.n \
         AND s.ts = d.ts AND s.b = d.b AND s.j = d.j AND s.a = d.a",
    )
    .await;
    assert_eq!(same, ok, "every value came back unchanged");
    let text = one(
        &c,
        "SELECT count(*) FROM rt_src s JOIN rt_txt t ON s.id = t.id AND s.u::text = t.t",
    )
    .await;
    assert_eq!(text, ok, "a uuid bound to a text column is its text form");
}

#[tokio::test(flavor = "multi_thread")]
async fn serialization_failures_are_retried_up_to_max_tries() {
    let lab = TestLab::up(&["--standbys", "1"]);
    let text = |tries: u32| {
        format!(
            r#"name = "retry{tries}"
[run]
duration = "3s"
[setup]
sql = "DROP TABLE IF EXISTS counter{tries}; CREATE TABLE counter{tries} (id int PRIMARY KEY, v bigint); INSERT INTO counter{tries} VALUES (1, 0)"
[[load]]
name = "g"
clients = 4
mix = {{ bump = 1 }}
max_tries = {tries}
[[transaction]]
name = "bump"
sql = [
  "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
  "SELECT v FROM counter{tries} WHERE id = 1",
  "SELECT pg_sleep(0.004)",
  "UPDATE counter{tries} SET v = v + 1 WHERE id = 1",
]
"#
        )
    };
    let c = lab.connect("primary").await;
    // Four clients updating one row under REPEATABLE READ: 40001 without retries...
    let w = workload_file(lab.tmp.path(), "r1", &text(1));
    let (s1, _) = lab.run_ok(w.to_str().unwrap(), "r1", &[]);
    let b1 = &s1["transactions"]["bump"];
    assert!(
        b1["failed_by_sqlstate"]["40001"].as_u64().unwrap_or(0) > 0,
        "{b1}"
    );
    assert_eq!(b1["retries"], 0);
    assert_eq!(
        one(&c, "SELECT v FROM counter1").await,
        b1["ok"].as_i64().unwrap()
    );
    // ... and with max_tries the same load commits every transaction. Retries are immediate, as
    // pgbench's, so the client that just committed tends to win the next race too and a loser
    // can starve for dozens of tries (CI saw one give up after 100). With 1,000 tries of at
    // least 4 ms each, giving up takes longer than the 3 s run: once the others stop, it wins.
    let w = workload_file(lab.tmp.path(), "r1000", &text(1000));
    let (s, dir) = lab.run_ok(w.to_str().unwrap(), "r1000", &[]);
    let b = &s["transactions"]["bump"];
    let retries = b["retries"].as_u64().unwrap();
    assert!(retries > 0 && b["retried"].as_u64().unwrap() > 0, "{b}");
    assert_eq!(b["failed"], 0, "{b}");
    assert_eq!(
        one(&c, "SELECT v FROM counter1000").await,
        b["ok"].as_i64().unwrap(),
        "each committed transaction added exactly one"
    );
    let per_second: f64 = interval_column(&dir, "bump.retries")
        .iter()
        .map(|(_, r)| r)
        .sum();
    assert_eq!(
        per_second as u64, retries,
        "intervals.csv counts the retries too"
    );
    // Latency spans every try: the slowest retried transaction took at least two tries' time.
    assert!(b["latency_ms"]["max"].as_f64().unwrap() >= 8.0, "{b}");
}
