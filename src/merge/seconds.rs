//! The per-second files of the whole run: the shards' intervals aligned on the common start
//! (by the database's clock), their counts added and their histograms added, so each second's
//! percentiles are those of every shard's transactions in that second.

use super::input::ShardResult;
use crate::record::summary::round;
use crate::record::{new_histogram, IntervalRow, IntervalTx};
use crate::report::hlog::{hlog_tag, system_time, HlogWriter};
use crate::report::IntervalsWriter;
use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::Path;

/// One second of the whole run.
pub struct MergedSecond {
    /// Whole seconds after the common start.
    pub start_s: i64,
    pub interval_s: f64,
    /// Per transaction (the workload's order): ok, failed, unknown, retries, latency.
    pub txs: Vec<SecondTx>,
    pub wal_bytes_per_s: Option<f64>,
}

pub struct SecondTx {
    pub ok: u64,
    pub failed: u64,
    pub unknown: u64,
    pub retries: u64,
    pub latency: Histogram<u64>,
}

/// The merged timeline's zero: the common start every shard was given (they all agree on it;
/// the earliest is taken should they not).
pub fn zero(shards: &[ShardResult]) -> f64 {
    shards
        .iter()
        .map(|s| s.info.start_at_unix_s)
        .fold(f64::INFINITY, f64::min)
}

/// Seconds between the merged zero and a shard's own zero (its origin).
pub fn offset(shard: &ShardResult, zero: f64) -> f64 {
    shard.info.origin_unix_s - zero
}

/// The shards' seconds, aligned and added, in time order.
pub fn merge_seconds(shards: &[ShardResult]) -> Vec<MergedSecond> {
    let Some(first) = shards.first() else {
        return Vec::new();
    };
    let names = first.data.tx_names();
    let zero = zero(shards);
    let mut by_key: BTreeMap<i64, MergedSecond> = BTreeMap::new();
    let empty = |key: i64| MergedSecond {
        start_s: key,
        interval_s: 0.0,
        txs: names
            .iter()
            .map(|_| SecondTx {
                ok: 0,
                failed: 0,
                unknown: 0,
                retries: 0,
                latency: new_histogram(),
            })
            .collect(),
        wal_bytes_per_s: None,
    };
    for shard in shards {
        let shift = offset(shard, zero);
        let d = &shard.data;
        let length = d.column("interval_s");
        for (row, t) in d.t_s.iter().enumerate() {
            let interval = length.and_then(|l| l[row]).unwrap_or(1.0);
            let key = (shift + t - interval).round() as i64;
            let second = by_key.entry(key).or_insert_with(|| empty(key));
            second.interval_s = second.interval_s.max(interval);
            for (i, n) in names.iter().enumerate() {
                let cell = |col: &str| {
                    d.column(&format!("{n}.{col}"))
                        .and_then(|c| c[row])
                        .unwrap_or(0.0) as u64
                };
                let tx = &mut second.txs[i];
                tx.ok += cell("ok");
                tx.failed += cell("failed");
                tx.unknown += cell("unknown");
                tx.retries += cell("retries");
            }
            if shard.info.index == 0 {
                second.wal_bytes_per_s = d.column("wal_bytes_per_s").and_then(|c| c[row]);
            }
        }
        let tags: Vec<String> = names.iter().map(|n| hlog_tag(n)).collect();
        for e in &shard.seconds {
            let Some(i) = tags.iter().position(|t| *t == e.tag) else {
                continue;
            };
            let key = (shift + e.start_s).round() as i64;
            let second = by_key.entry(key).or_insert_with(|| empty(key));
            // Histograms of one precision and range: adding cannot fail but by a corrupt file.
            let _ = second.txs[i].latency.add(&e.histogram);
        }
    }
    by_key.into_values().collect()
}

fn ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| round(h.value_at_quantile(q) as f64 / 1000.0, 3))
}

/// intervals.csv and latency.hlog of the whole run.
pub fn write_seconds(dir: &Path, shards: &[ShardResult], seconds: &[MergedSecond]) -> Result<()> {
    let names = shards
        .first()
        .map(|s| s.data.tx_names())
        .unwrap_or_default();
    let mut csv = IntervalsWriter::create(&dir.join("intervals.csv"), &names)?;
    let mut hlog = HlogWriter::create(
        &dir.join("latency.hlog"),
        &names,
        system_time(zero(shards)),
        "pgbench-repl latency log, merged from the shards: one tag per transaction, values in \
         microseconds",
    )?;
    for s in seconds {
        let interval_s = if s.interval_s > 0.0 {
            s.interval_s
        } else {
            1.0
        };
        let row = IntervalRow {
            t_s: s.start_s as f64 + interval_s,
            start_s: s.start_s as f64,
            interval_s,
            txs: s
                .txs
                .iter()
                .map(|t| IntervalTx {
                    tps: t.ok as f64 / interval_s,
                    ok: t.ok,
                    failed: t.failed,
                    unknown: t.unknown,
                    retries: t.retries,
                    p50_ms: ms(&t.latency, 0.5),
                    p99_ms: ms(&t.latency, 0.99),
                })
                .collect(),
            wal_bytes_per_s: s.wal_bytes_per_s,
        };
        csv.write(&row)?;
        for (i, t) in s.txs.iter().enumerate() {
            hlog.write(i, row.start_s.max(0.0), interval_s, &t.latency)?;
        }
    }
    csv.flush()?;
    hlog.flush()
}

/// Shard 0's lag.csv or events.csv with its times moved onto the merged timeline (by the few
/// milliseconds shard 0 started after the common start).
pub fn shift_times(from: &Path, to: &Path, by_s: f64) -> Result<()> {
    let mut reader =
        csv::Reader::from_path(from).with_context(|| format!("cannot read {}", from.display()))?;
    let mut writer =
        csv::Writer::from_path(to).with_context(|| format!("cannot create {}", to.display()))?;
    writer.write_record(reader.headers()?)?;
    for rec in reader.records() {
        let rec = rec?;
        let mut fields: Vec<String> = rec.iter().map(str::to_string).collect();
        if let Some(cell) = fields.first_mut() {
            if let Ok(v) = cell.parse::<f64>() {
                *cell = format!("{:.3}", v + by_s);
            }
        }
        writer.write_record(&fields)?;
    }
    writer.flush()?;
    Ok(())
}
