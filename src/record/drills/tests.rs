//! The drill tracker on synthetic timelines.

use super::*;
use crate::messages::StandbySample;
use std::time::Duration;
use tokio::time::Instant;

fn ev(kind: &str, node: &str, took_ms: u64) -> EventRecord {
    EventRecord {
        at: Instant::now(),
        kind: kind.into(),
        node: node.into(),
        detail: String::new(),
        took: Some(Duration::from_millis(took_ms)),
        undo: false,
    }
}

fn sample(primary: &str, insert: u64, standbys: Vec<StandbySample>) -> ReplSample {
    ReplSample {
        at: Instant::now(),
        primary: primary.into(),
        primary_up: true,
        timeline: Some(1),
        insert_lsn: Some(insert),
        current_lsn: Some(insert),
        wal_records: None,
        wal_fpi: None,
        pg_wal_bytes: Some(16 << 20),
        standbys,
        timeline_changed: false,
    }
}

fn sb(node: &str, replay: u64, slot: u64, status: &str) -> StandbySample {
    StandbySample {
        node: node.into(),
        up: true,
        in_recovery: Some(true),
        replay_lsn: Some(replay),
        slot_retained_bytes: Some(slot),
        wal_status: Some(status.into()),
        ..Default::default()
    }
}

fn tracker() -> DrillTracker {
    DrillTracker::new(
        vec!["primary".into(), "standby1".into(), "standby2".into()],
        vec![true, false],
    )
}

#[tokio::test(start_paused = true)]
async fn an_interruption_accumulates_wal_and_catches_up() {
    let mut d = tracker();
    // WAL at 1 MB/s; standby1's link paused at 1 s for 4 s; it replays at 3 MB/s after.
    d.on_event(1.0, &ev("pause_link", "standby1", 0));
    for i in 0..=10 {
        let t = 1.0 + i as f64 * 0.5;
        let insert = 10_000_000 + (t * 1e6) as u64;
        let status = if i > 6 { "extended" } else { "reserved" };
        d.on_sample(
            t,
            &sample(
                "primary",
                insert,
                vec![sb("standby1", 11_000_000, insert - 11_000_000, status)],
            ),
        );
    }
    d.on_event(5.0, &ev("resume_link", "standby1", 0));
    // From 5 s the standby replays 3 MB/s while the primary writes 1 MB/s: 4 MB to make up
    // at 2 MB/s net, so it reaches the 5-second position (15 MB) at 6.33 s.
    let mut t = 5.0;
    loop {
        t += 0.1;
        let insert = 10_000_000 + (t * 1e6) as u64;
        let replay = (11_000_000.0 + (t - 5.0) * 3e6) as u64;
        d.on_sample(
            t,
            &sample(
                "primary",
                insert,
                vec![sb("standby1", replay.min(insert), 0, "reserved")],
            ),
        );
        if replay >= 15_000_000 || t > 10.0 {
            break;
        }
    }
    let i = &d.summary(12.0).interruption["standby1"];
    assert_eq!(i.action, "pause_link");
    assert_eq!(i.outage_s, 4.0);
    // Read at the first sample after each end: within one sample (0.1 s at 1 MB/s) of 4 MB.
    let acc = i.wal_accumulated_bytes.unwrap() as f64;
    assert!((acc - 4e6).abs() <= 1.01e5, "{acc}");
    assert_eq!(i.wal_status_seen, ["reserved", "extended", "reserved"]);
    assert!(!i.slot_lost);
    let c = i.catch_up_s.unwrap();
    assert!((c - 1.4).abs() < 0.11, "{c}");
    assert!((i.replay_mb_per_s.unwrap() - 3.0).abs() < 0.2, "{i:?}");
    assert!((i.wal_mb_per_s.unwrap() - 1.0).abs() < 0.03, "{i:?}");
    // 4 MB / (3 - 1) MB/s = 2 s: the model the report prints beside the measurement.
    assert!((i.predicted_catch_up_s.unwrap() - 2.0).abs() < 0.2, "{i:?}");
    assert!(i.peak_slot_retained_bytes.unwrap() >= 4_000_000);
    assert_eq!(i.peak_pg_wal_bytes, Some(16 << 20));
}

#[tokio::test(start_paused = true)]
async fn a_standby_that_never_comes_back_has_no_catch_up() {
    let mut d = tracker();
    d.on_event(1.0, &ev("cut_link", "standby2", 5));
    d.on_sample(
        2.0,
        &sample("primary", 100, vec![sb("standby2", 10, 90, "lost")]),
    );
    let i = &d.summary(3.0).interruption["standby2"];
    assert_eq!(i.ended_s, None);
    assert!((i.outage_s - 1.995).abs() < 1e-9);
    assert!(i.slot_lost && i.catch_up_s.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_failover_gives_rto_and_its_parts() {
    let mut d = tracker();
    d.on_sample(0.5, &sample("primary", 100, vec![]));
    d.on_event(2.1, &ev("kill", "primary", 100)); // the crash at 2.1
    d.on_tx(2.5, 2.5, 1, 1, Outcome::Ok); // a read on standby1 while there is no primary
    d.on_tx(2.6, 2.6, 0, 0, Outcome::Failed); // a write that found no primary
    d.on_event(4.1, &ev("promote", "standby1", 900)); // detection 2.0, promotion 0.9: done at 5.0
    d.on_tx(4.8, 4.8, 0, 1, Outcome::Ok); // before the promotion ended: not the first write
    let mut after = sample("standby1", 200, vec![]);
    after.timeline = Some(2);
    d.on_sample(5.1, &after);
    d.on_tx(5.3, 5.3, 0, 1, Outcome::Ok);
    d.on_tx(5.4, 5.4, 0, 1, Outcome::Ok);
    d.on_event(8.0, &ev("rejoin", "primary", 1500));
    d.on_event(10.0, &ev("promote", "primary", 800));
    let s = d.summary(12.0);
    let f = s.failover.unwrap();
    assert_eq!(f.killed, "primary");
    assert_eq!(f.promoted.as_deref(), Some("standby1"));
    assert_eq!(f.timeline, Some(2));
    assert_eq!(f.detection_s, Some(2.0));
    assert_eq!(f.promotion_s, Some(0.9));
    assert_eq!(f.reconnect_s, Some(0.3));
    assert_eq!(f.rto_s, Some(3.2));
    assert_eq!(
        (f.reads_during_outage, f.writes_failed_during_outage),
        (1, 1)
    );
    let what: Vec<&str> = s.timeline.iter().map(|m| m.what.as_str()).collect();
    assert_eq!(
        what,
        [
            "kill",
            "detection",
            "promotion",
            "first write",
            "rejoin",
            "failback"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_second_primary_is_seen_and_its_writes_counted() {
    let mut d = tracker();
    let mut other = sb("standby1", 0, 0, "reserved");
    other.in_recovery = Some(false);
    other.current_lsn = Some(5000);
    assert_eq!(
        d.on_sample(1.0, &sample("primary", 1000, vec![other.clone()])),
        Some(vec!["primary".to_string(), "standby1".to_string()])
    );
    other.current_lsn = Some(5300);
    assert_eq!(
        d.on_sample(2.0, &sample("primary", 1800, vec![other])),
        None,
        "said once"
    );
    let sb = d.summary(3.0).split_brain.unwrap();
    assert_eq!(sb.wal_bytes_since["primary"], 800);
    assert_eq!(sb.wal_bytes_since["standby1"], 300);
}

#[tokio::test(start_paused = true)]
async fn an_orchestrated_failover_through_a_proxy_counts_the_first_write_wherever_it_lands() {
    let mut d = tracker().writes_via_access(true);
    d.on_sample(0.5, &sample("primary", 100, vec![]));
    d.on_event(2.0, &ev("kill", "primary", 5)); // dead at 2.005
    d.on_tx(2.001, 2.003, 0, 0, Outcome::Ok); // sent before the kill took effect: not it
    d.on_tx(1.9, 2.2, 0, 0, Outcome::Ok); // its answer read after the kill: not it either
    d.on_tx(3.0, 3.0, 0, 0, Outcome::Failed);
    // Through the proxy a write commits at 9.0 on the new primary, counted against node 0:
    // the run sees the promotion at 9.2 (its record says it began at 7.0).
    d.on_tx(9.0, 9.0, 0, 0, Outcome::Ok);
    d.on_event(7.0, &ev("promote", "standby1", 2200));
    let s = d.summary(12.0);
    let f = s.failover.unwrap();
    let step = s.timeline.iter().find(|m| m.what == "promotion").unwrap();
    assert_eq!(
        step.duration_s,
        Some(2.0),
        "the timeline agrees with promotion_s"
    );
    assert_eq!(f.rto_s, Some(7.0));
    assert_eq!(f.detection_s, Some(5.0));
    assert_eq!(
        f.promotion_s,
        Some(2.0),
        "the promotion was over by the first write"
    );
    assert_eq!(f.reconnect_s, Some(0.0));
}

#[tokio::test(start_paused = true)]
async fn a_promotion_seen_without_a_record_has_no_detection_and_no_promotion_splits() {
    let mut d = tracker().writes_via_access(true);
    d.on_event(1.0, &ev("kill", "primary", 10));
    d.on_event(6.0, &ev("promotion_seen", "standby2", 0));
    d.on_tx(6.5, 6.5, 0, 2, Outcome::Ok);
    let f = d.summary(10.0).failover.unwrap();
    assert_eq!(f.promoted.as_deref(), Some("standby2"));
    assert_eq!((f.detection_s, f.promotion_s), (None, None));
    assert_eq!(f.rto_s, Some(5.5));
    assert_eq!(f.reconnect_s, Some(0.5));
}

#[tokio::test(start_paused = true)]
async fn no_promotion_keeps_the_reason_and_reports_no_rto() {
    let mut d = tracker();
    d.on_event(1.0, &ev("kill", "primary", 10));
    d.on_tx(3.0, 3.0, 0, 0, Outcome::Failed);
    let mut why = ev("no_promotion", "primary", 19_000);
    why.detail = "the monitor promoted no standby: standby1 unhealthy".into();
    d.on_event(1.01, &why);
    let f = d.summary(20.0).failover.unwrap();
    assert_eq!(f.promoted, None);
    assert_eq!(f.rto_s, None);
    assert_eq!(f.waited_s, Some(19.0));
    assert!(f.no_promotion_reason.unwrap().contains("unhealthy"));
}

#[tokio::test(start_paused = true)]
async fn a_switchover_measures_the_longest_write_gap_from_commits_out_of_order() {
    let mut d = tracker();
    d.on_sample(0.5, &sample("primary", 100, vec![]));
    // Writes every 10 ms until 5.0, nothing until 7.3, then every 10 ms again; the samples
    // arrive out of order and before the switchover's event (recorded when it is done).
    let mut ends: Vec<f64> = (0..=500).map(|i| i as f64 * 0.01).collect();
    ends.extend((0..100).map(|i| 7.3 + i as f64 * 0.01));
    ends.reverse();
    for e in ends {
        d.on_tx(e, e, 0, 0, Outcome::Ok);
    }
    d.on_event(4.5, &ev("switchover", "standby1", 2500)); // began 4.5, done at 7.0
    let s = d.summary(9.0).switchover.unwrap();
    assert_eq!((s.from.as_str(), s.to.as_str()), ("primary", "standby1"));
    assert_eq!(s.write_gap_s, Some(2.3));
    assert_eq!(s.took_s, 2.5);
}

#[tokio::test(start_paused = true)]
async fn outcomes_that_reach_the_tracker_before_the_drills_own_events_still_count() {
    let mut d = tracker();
    d.on_sample(0.5, &sample("primary", 100, vec![]));
    // The crash at 2.0: the writes it broke reach the tracker before the kill's event (which
    // is recorded once `pg_ctl stop -m immediate` returns).
    d.on_tx(1.9, 2.01, 0, 0, Outcome::Unknown);
    d.on_tx(1.95, 2.02, 0, 0, Outcome::Failed);
    d.on_tx(1.99, 2.03, 1, 1, Outcome::Ok); // a read on standby1
    d.on_event(2.0, &ev("kill", "primary", 100));
    d.on_tx(2.5, 2.6, 0, 0, Outcome::Failed);
    // standby1 promoted at 4.0-4.5; its first write (4.7) arrives before the promote event.
    d.on_tx(4.6, 4.7, 0, 1, Outcome::Ok);
    d.on_event(4.0, &ev("promote", "standby1", 500));
    d.on_tx(4.8, 4.9, 0, 1, Outcome::Failed); // after the first write: not the outage's
    let f = d.summary(6.0).failover.unwrap();
    assert_eq!(f.writes_failed_during_outage, 3, "{f:?}");
    assert_eq!(f.reads_during_outage, 1);
    assert_eq!(
        f.rto_s,
        Some(2.7),
        "the first write, though it came before its promotion's event"
    );
    assert_eq!(f.reconnect_s, Some(0.2));
}
