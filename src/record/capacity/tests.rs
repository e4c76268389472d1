//! Verdicts, the auto search and the projections on known inputs.

use super::*;
use crate::record::steps::StepStandby;
use crate::record::values::Quantiles;

fn step(rate: f64, achieved: f64, lag_p99: f64, slope: f64) -> StepStats {
    let mut standbys = IndexMap::new();
    standbys.insert(
        "standby1".to_string(),
        StepStandby {
            lag_seconds: Quantiles {
                p50: Some(lag_p99 / 2.0),
                p99: Some(lag_p99),
                max: Some(lag_p99),
            },
            lag_trend_s_per_s: Some(slope),
            lag_growth_s: Some(slope * 10.0),
            ..Default::default()
        },
    );
    StepStats {
        offered_rate: rate,
        duration_s: 10.0,
        ok: (achieved * 10.0) as u64,
        achieved_tps: achieved,
        standbys,
        wal_bytes_per_s: Some(rate * 1000.0),
        ..Default::default()
    }
}

fn slo(path: &str, cond: &str) -> Expectation {
    let (op, value) = cond.split_once(' ').unwrap();
    Expectation {
        path: path.into(),
        op: op.into(),
        value: value.parse().unwrap(),
        text: cond.into(),
    }
}

#[test]
fn a_step_fails_on_the_slo_the_trend_the_rate_or_errors() {
    let rule = [slo("lag_seconds.p99", "< 1.0")];
    assert!(judge(step(100.0, 100.0, 0.1, 0.0), &rule).met_slo);
    let s = judge(step(200.0, 200.0, 2.5, 0.0), &rule);
    assert!(!s.met_slo);
    assert_eq!(s.failed_kinds, ["lag"]);
    assert!(
        s.failed_checks[0].contains("got 2.5"),
        "{:?}",
        s.failed_checks
    );
    // Under the SLO at the end, but growing all the way: not sustainable.
    let s = judge(step(300.0, 300.0, 0.5, 0.05), &rule);
    assert!(
        !s.met_slo && s.failed_checks[0].contains("kept growing"),
        "{s:?}"
    );
    let s = judge(step(400.0, 300.0, 0.1, 0.0), &rule);
    assert_eq!(s.failed_kinds, ["achieved rate"]);
    let mut e = step(100.0, 100.0, 0.1, 0.0);
    e.failed = 50;
    assert_eq!(judge(e, &rule).failed_kinds, ["errors"]);
}

#[test]
fn the_max_rate_and_what_broke_above_it() {
    let rule = [slo("lag_seconds.p99", "< 1.0")];
    let steps: Vec<SweepStep> = [
        step(100.0, 100.0, 0.1, 0.0),
        step(200.0, 200.0, 0.2, 0.0),
        step(400.0, 380.0, 3.0, 0.2),
    ]
    .into_iter()
    .map(|s| judge(s, &rule))
    .collect();
    assert_eq!(verdict(&steps), (Some(200.0), Some("lag".to_string())));
}

#[test]
fn auto_doubles_then_bisects_to_within_five_percent() {
    let rule = [slo("lag_seconds.p99", "< 1.0")];
    // The true capacity is 650 tx/s.
    let run = |rate: f64| {
        judge(
            step(rate, rate, if rate <= 650.0 { 0.1 } else { 2.0 }, 0.0),
            &rule,
        )
    };
    let mut steps = Vec::new();
    while let Some(r) = next_auto_rate(&steps, 100.0, 10_000.0) {
        steps.push(run(r));
        assert!(steps.len() < 20);
    }
    let rates: Vec<f64> = steps.iter().map(|s| s.stats.offered_rate).collect();
    assert_eq!(&rates[..5], [100.0, 200.0, 400.0, 800.0, 600.0]);
    let (max, _) = verdict(&steps);
    let max = max.unwrap();
    assert!(
        (max - 650.0).abs() / 650.0 <= 0.05 && max <= 650.0,
        "{rates:?}"
    );
    // A cap ends the doubling.
    let mut capped = Vec::new();
    while let Some(r) = next_auto_rate(&capped, 100.0, 300.0) {
        capped.push(run(r));
    }
    assert_eq!(capped.last().unwrap().stats.offered_rate, 300.0);
}

#[test]
fn projections_on_known_inputs() {
    // 1 MB/s of WAL, 50 MB of pg_wal anyway, standbys replay 3 MB/s.
    let p = project(1000.0, 1e6, 50e6, Some(3e6));
    assert_eq!(p.wal_bytes_per_hour, 3.6e9);
    assert_eq!(p.wal_bytes_per_day, 86.4e9);
    assert_eq!(p.standby_bandwidth_mbit_per_s, 8.0);
    let ten_min = &p.outages[0];
    assert_eq!(ten_min.outage_s, 600.0);
    assert_eq!(ten_min.slot_retention_bytes, 600e6);
    assert_eq!(ten_min.pg_wal_bytes, 650e6);
    // 600 MB to make up at 3 - 1 = 2 MB/s: 300 s.
    assert_eq!(ten_min.catch_up_s, Some(300.0));
    assert_eq!(p.outages[2].catch_up_s, Some(10800.0));
    // A standby that replays no faster than the WAL comes never catches up.
    assert_eq!(
        project(1.0, 1e6, 0.0, Some(1e6)).outages[0].catch_up_s,
        None
    );
    assert_eq!(project(1.0, 1e6, 0.0, None).outages[0].catch_up_s, None);
}
