//! The recorder on synthetic records, in paused time.

use super::*;
use crate::messages::{Counter, Outcome, ReplSample, StandbySample, TxSample};

fn tx(at: Instant, tx: u16, outcome: Outcome, latency_ms: u64, retries: u32) -> Record {
    Record::Tx(TxSample {
        tx,
        group: 0,
        outcome,
        sqlstate: (outcome != Outcome::Ok).then(|| "40001".to_string()),
        latency_us: latency_ms * 1000,
        schedule_lag_us: Some(100),
        started: at,
        rows: 1,
        retries,
        node: 0,
        client: 1,
        key: None,
    })
}

fn sample(at: Instant, primary: &str, insert: u64, standbys: Vec<StandbySample>) -> Record {
    Record::Sample(Box::new(ReplSample {
        at,
        primary: primary.into(),
        primary_up: true,
        timeline: Some(1),
        insert_lsn: Some(insert),
        current_lsn: Some(insert),
        wal_records: None,
        wal_fpi: None,
        pg_wal_bytes: None,
        standbys,
        timeline_changed: false,
    }))
}

fn standby(name: &str, lag_bytes: u64, lag_s: f64) -> StandbySample {
    StandbySample {
        node: name.into(),
        up: true,
        in_recovery: Some(true),
        lag_bytes: Some(lag_bytes),
        lag_s: Some(lag_s),
        ..Default::default()
    }
}

fn recorder(origin: Instant, warmup: Duration) -> Recorder {
    Recorder::new(RecorderSetup {
        tx_writes: vec![true, false],
        groups: 1,
        nodes: vec!["primary".into(), "standby1".into()],
        origin,
        warmup,
        lag_alert: None,
        steps: None,
        writes_via_access: false,
    })
}

#[tokio::test(start_paused = true)]
async fn counts_and_tps_per_interval_keep_failed_unknown_and_retries_apart() {
    let origin = Instant::now();
    let mut r = recorder(origin, Duration::ZERO);
    let mut sink = Collected::default();
    for ms in [10, 20, 30] {
        r.take(tx(origin, 0, Outcome::Ok, ms, 0), &mut sink)
            .unwrap();
    }
    r.take(tx(origin, 0, Outcome::Ok, 40, 2), &mut sink)
        .unwrap();
    r.take(tx(origin, 0, Outcome::Failed, 5, 1), &mut sink)
        .unwrap();
    r.take(tx(origin, 1, Outcome::Unknown, 5, 0), &mut sink)
        .unwrap();
    r.close_interval(origin + Duration::from_secs(2), &mut sink)
        .unwrap();
    let row = &sink.intervals[0];
    assert_eq!(row.interval_s, 2.0);
    let a = &row.txs[0];
    assert_eq!((a.ok, a.failed, a.unknown, a.retries), (4, 1, 0, 3));
    assert_eq!(a.tps, 2.0, "ok per second only");
    assert!((a.p50_ms.unwrap() - 20.0).abs() < 0.05);
    assert_eq!(row.txs[1].unknown, 1);
    assert_eq!(row.txs[1].tps, 0.0);
    let run = r.run();
    assert_eq!((run.tx[0].ok, run.tx[0].failed), (4, 1));
    assert_eq!((run.tx[0].retries, run.tx[0].retried), (3, 2));
    assert_eq!(run.tx[0].by_sqlstate["40001"], 1);
    assert_eq!(run.tx[1].unknown, 1);
    assert_eq!(sink.progress[0].errors, 2);
    // The next interval starts empty.
    r.close_interval(origin + Duration::from_secs(3), &mut sink)
        .unwrap();
    assert_eq!(sink.intervals[1].txs[0].ok, 0);
    assert_eq!(sink.intervals[1].txs[0].p50_ms, None);
}

#[tokio::test(start_paused = true)]
async fn warmup_is_left_out_of_the_totals_but_not_the_intervals() {
    let origin = Instant::now();
    let mut r = recorder(origin, Duration::from_secs(1));
    let mut sink = Collected::default();
    r.take(tx(origin, 0, Outcome::Ok, 10, 0), &mut sink)
        .unwrap();
    r.take(
        tx(origin + Duration::from_millis(1500), 0, Outcome::Ok, 10, 0),
        &mut sink,
    )
    .unwrap();
    r.close_interval(origin + Duration::from_secs(2), &mut sink)
        .unwrap();
    assert_eq!(r.run().warmup.ok, 1);
    assert_eq!(r.run().tx[0].ok, 1);
    assert_eq!(sink.intervals[0].txs[0].ok, 2);
    assert!((r.run().measured_s - 1.0).abs() < 1e-9);
}

#[tokio::test(start_paused = true)]
async fn lag_wal_and_a_promotion() {
    let origin = Instant::now();
    let at = |ms: u64| origin + Duration::from_millis(ms);
    let mut r = recorder(origin, Duration::ZERO);
    let mut sink = Collected::default();
    r.take(
        sample(at(0), "primary", 1000, vec![standby("standby1", 0, 0.0)]),
        &mut sink,
    )
    .unwrap();
    r.take(
        sample(
            at(500),
            "primary",
            6000,
            vec![standby("standby1", 2000, 0.2)],
        ),
        &mut sink,
    )
    .unwrap();
    // standby1 promoted: it is the primary now; the old primary is down.
    let down = StandbySample {
        node: "primary".into(),
        ..Default::default()
    };
    let mut promoted = sample(at(1000), "standby1", 5000, vec![down]);
    if let Record::Sample(s) = &mut promoted {
        s.timeline_changed = true;
    }
    r.take(promoted, &mut sink).unwrap();
    r.take(sample(at(1500), "standby1", 7000, vec![]), &mut sink)
        .unwrap();
    r.close_interval(at(2000), &mut sink).unwrap();
    let run = r.run();
    assert_eq!(
        run.wal.bytes,
        5000 + 2000,
        "no negative step across the promotion"
    );
    let s1 = &run.standbys[0];
    assert_eq!((s1.name.as_str(), s1.samples), ("standby1", 2));
    assert_eq!(s1.lag_bytes.max(), 2000);
    assert!(
        !run.has_standby("primary"),
        "a failed primary is no standby with lag"
    );
    assert_eq!(sink.lag.len(), 3, "every row lands in lag.csv");
    assert!(
        sink.progress[0].lag.is_empty(),
        "the new primary left the progress line"
    );
}

#[tokio::test(start_paused = true)]
async fn drive_closes_an_interval_every_second_and_checkpoints_each() {
    let origin = Instant::now();
    let (tx_s, rx) = mpsc::channel(16);
    let r = recorder(origin, Duration::ZERO);
    let feeder = tokio::spawn(async move {
        // At 0.05 s, 0.15 s, ... 2.95 s: never on a tick.
        tokio::time::sleep(Duration::from_millis(50)).await;
        for i in 0..30u64 {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tx_s.send(tx(Instant::now(), 0, Outcome::Ok, 1, 0))
                .await
                .unwrap();
            tx_s.send(Record::Count(Counter::Reconnect)).await.unwrap();
        }
    });
    let mut sink = Collected::default();
    let run = drive(r, rx, &mut sink, origin, Duration::from_secs(1))
        .await
        .unwrap();
    feeder.await.unwrap();
    assert_eq!(run.tx[0].ok, 30);
    assert_eq!(run.counters.reconnects, 30);
    assert_eq!(sink.intervals.len(), 3);
    let per_interval: Vec<u64> = sink.intervals.iter().map(|i| i.txs[0].ok).collect();
    assert_eq!(per_interval, [10, 10, 10]);
    assert_eq!(sink.checkpoints, 3, "one per second and one at the end");
    assert!((sink.intervals[2].interval_s - 0.95).abs() < 1e-6);
    assert!(sink.finished);
}

#[tokio::test(start_paused = true)]
async fn events_are_counted_and_passed_on() {
    let origin = Instant::now();
    let mut r = recorder(origin, Duration::ZERO);
    let mut sink = Collected::default();
    let e = event(
        origin + Duration::from_millis(1250),
        "kill",
        "primary",
        "immediate stop",
    );
    r.take(Record::Event(e), &mut sink).unwrap();
    assert_eq!(r.run().events, 1);
    assert_eq!(sink.events[0].0, 1.25);
    assert_eq!(sink.events[0].1.node, "primary");
}
