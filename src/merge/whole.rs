//! summary.json of the whole run: the shards' counts added, their totals' histograms added
//! (every percentile is that of all their transactions), shard 0's replication measurements,
//! `[expect]` judged on the whole, and a line per shard.

use super::input::ShardResult;
use super::seconds::zero;
use crate::record::new_histogram;
use crate::record::summary::{
    latency_ms, round, GroupSummary, MergedShards, RunSummary, ShardRow, TotalSummary, TxSummary,
    Verdict,
};
use crate::report::hlog::{hlog_tag, schedule_lag_tag, HlogEntry};
use crate::workload::Expectation;
use anyhow::{anyhow, Result};
use hdrhistogram::Histogram;
use indexmap::IndexMap;

/// The sum of two optional figures: None only when both are.
fn add<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

/// A shard's histogram of `tag` over the measured part of its run: from totals.hlog, or (a
/// shard killed before writing it) its seconds after the warmup.
fn measured(shard: &ShardResult, tag: &str) -> Histogram<u64> {
    let mut h = new_histogram();
    match &shard.totals {
        Some(entries) => add_tagged(&mut h, entries, tag, f64::NEG_INFINITY),
        None => add_tagged(
            &mut h,
            &shard.seconds,
            tag,
            shard.data.summary.warmup_s - 1e-6,
        ),
    }
    h
}

fn add_tagged(h: &mut Histogram<u64>, entries: &[HlogEntry], tag: &str, from_s: f64) {
    for e in entries
        .iter()
        .filter(|e| e.tag == tag && e.start_s >= from_s)
    {
        let _ = h.add(&e.histogram);
    }
}

/// The merged summary, from the shards' summaries and their totals.hlog.
pub fn merge_summary(shards: &[ShardResult]) -> Result<RunSummary> {
    let first = shards.first().ok_or_else(|| anyhow!("no shard to merge"))?;
    // Shard 0 alone sampled, ran the events and the verification; without it, those are empty.
    let lead = shards.iter().find(|s| s.info.index == 0);
    let base = &lead.unwrap_or(first).data.summary;
    let mut out = base.clone();
    let duration = shards
        .iter()
        .map(|s| s.data.summary.duration_s)
        .fold(0.0, f64::max);
    let per_s = |n: u64| {
        if duration > 0.0 {
            round(n as f64 / duration, 1)
        } else {
            0.0
        }
    };

    let mut transactions: IndexMap<String, TxSummary> = IndexMap::new();
    let mut latency: IndexMap<String, Histogram<u64>> = IndexMap::new();
    for shard in shards {
        for (name, t) in &shard.data.summary.transactions {
            let m = transactions
                .entry(name.clone())
                .or_insert_with(|| TxSummary {
                    ok: 0,
                    failed: 0,
                    unknown: 0,
                    retries: 0,
                    retried: 0,
                    tps: 0.0,
                    rows: 0,
                    failed_by_sqlstate: Default::default(),
                    latency_ms: Default::default(),
                });
            m.ok += t.ok;
            m.failed += t.failed;
            m.unknown += t.unknown;
            m.retries += t.retries;
            m.retried += t.retried;
            m.rows += t.rows;
            for (state, n) in &t.failed_by_sqlstate {
                *m.failed_by_sqlstate.entry(state.clone()).or_default() += n;
            }
            let h = latency.entry(name.clone()).or_insert_with(new_histogram);
            let _ = h.add(measured(shard, &hlog_tag(name)));
        }
    }
    let mut total = TotalSummary::default();
    for (name, t) in &mut transactions {
        t.tps = per_s(t.ok);
        t.latency_ms = latency_ms(&latency[name]);
        total.ok += t.ok;
        total.failed += t.failed;
        total.unknown += t.unknown;
        total.retries += t.retries;
        total.rows += t.rows;
    }
    total.tps = per_s(total.ok);

    let mut groups: IndexMap<String, GroupSummary> = IndexMap::new();
    let mut lag: IndexMap<String, Histogram<u64>> = IndexMap::new();
    for shard in shards {
        for (name, g) in &shard.data.summary.groups {
            match groups.get_mut(name) {
                None => {
                    groups.insert(name.clone(), g.clone());
                }
                Some(m) => {
                    m.clients += g.clients;
                    m.rate_intended = add(m.rate_intended, g.rate_intended);
                    m.stop_after = add(m.stop_after, g.stop_after);
                    m.backlog = add(m.backlog, g.backlog);
                }
            }
            if g.rate_intended.is_some() {
                let h = lag.entry(name.clone()).or_insert_with(new_histogram);
                let _ = h.add(measured(shard, &schedule_lag_tag(name)));
            }
        }
    }
    for (name, g) in &mut groups {
        if let Some(h) = lag.get(name) {
            g.rate_intended = g.rate_intended.map(|r| round(r, 6));
            g.schedule_lag_ms = Some(latency_ms(h));
        }
    }

    out.transactions = transactions;
    out.total = total;
    out.groups = groups;
    out.duration_s = duration;
    out.warmup = Default::default();
    out.connections = Default::default();
    out.read_your_writes = Default::default();
    for s in shards.iter().map(|s| &s.data.summary) {
        out.warmup.ok += s.warmup.ok;
        out.warmup.failed += s.warmup.failed;
        out.warmup.unknown += s.warmup.unknown;
        out.connections.connect_failures += s.connections.connect_failures;
        out.connections.reconnects += s.connections.reconnects;
        let (r, m) = (&s.read_your_writes, &mut out.read_your_writes);
        m.checked_fresh += r.checked_fresh;
        m.waited += r.waited;
        m.fell_back_to_primary += r.fell_back_to_primary;
        m.would_have_been_stale += r.would_have_been_stale;
    }
    out.wal.bytes_per_tx = match (out.wal.bytes, out.total.ok) {
        (Some(b), ok) if ok > 0 => Some((b as f64 / ok as f64).round()),
        _ => None,
    };
    if lead.is_none() {
        // Nobody sampled the replication or ran the events: say nothing rather than a part.
        out.wal = Default::default();
        out.standbys = Default::default();
        out.drills = Default::default();
        out.events = 0;
        out.verify = None;
    }
    out.started_at = shards
        .iter()
        .map(|s| s.data.summary.started_at.clone())
        .min()
        .unwrap_or_default();
    out.ended_at = shards
        .iter()
        .filter_map(|s| s.data.summary.ended_at.clone())
        .max();
    out.shard = None;
    out.shards = Some(shards_block(shards, &latency_by_shard(shards)));
    let whole = out.shards.as_ref().expect("just set");
    out.interrupted = !whole.missing.is_empty() || !whole.incomplete.is_empty();
    out.expect = judge(&lead.unwrap_or(first).info.expect, &out);
    Ok(out)
}

/// Each shard's latency over all its transactions, for its line in the report.
fn latency_by_shard(shards: &[ShardResult]) -> Vec<Histogram<u64>> {
    shards
        .iter()
        .map(|s| {
            let mut h = new_histogram();
            for name in s.data.summary.transactions.keys() {
                let _ = h.add(measured(s, &hlog_tag(name)));
            }
            h
        })
        .collect()
}

fn shards_block(shards: &[ShardResult], latency: &[Histogram<u64>]) -> MergedShards {
    let first = &shards[0].info;
    let zero = zero(shards);
    let origins: Vec<f64> = shards.iter().map(|s| s.info.origin_unix_s).collect();
    let earliest = origins.iter().copied().fold(f64::INFINITY, f64::min);
    let latest = origins.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let merged: Vec<u32> = shards.iter().map(|s| s.info.index).collect();
    MergedShards {
        run_id: first.run_id.clone(),
        count: first.count,
        missing: (0..first.count).filter(|i| !merged.contains(i)).collect(),
        incomplete: shards
            .iter()
            .filter(|s| !s.complete)
            .map(|s| s.info.index)
            .collect(),
        merged,
        start_spread_s: round(latest - earliest, 3),
        per_shard: shards
            .iter()
            .zip(latency)
            .map(|(s, h)| {
                let sum = &s.data.summary;
                ShardRow {
                    index: s.info.index,
                    host: s.info.host.clone(),
                    dir: s.data.dir.display().to_string(),
                    clients: sum.groups.values().map(|g| g.clients).sum(),
                    ok: sum.total.ok,
                    failed: sum.total.failed,
                    unknown: sum.total.unknown,
                    tps: sum.total.tps,
                    p99_ms: latency_ms(h).p99,
                    start_offset_s: round(s.info.origin_unix_s - zero, 3),
                    complete: s.complete,
                }
            })
            .collect(),
    }
}

/// The workload's `[expect]` lines, judged on the whole run.
fn judge(lines: &[crate::record::summary::ExpectLine], summary: &RunSummary) -> Vec<Verdict> {
    let mut parsed = Vec::new();
    let mut bad = Vec::new();
    for l in lines {
        match Expectation::parse(&l.path, &l.condition) {
            Ok(e) => parsed.push(e),
            Err(_) => bad.push(Verdict {
                path: l.path.clone(),
                condition: l.condition.clone(),
                actual: None,
                passed: false,
            }),
        }
    }
    let mut verdicts = crate::report::expect::evaluate(&parsed, summary);
    verdicts.extend(bad);
    verdicts
}
