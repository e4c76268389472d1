//! The short table `run` prints on stdout.

use crate::record::summary::RunSummary;
use std::fmt::Write as _;
use std::path::Path;

/// Transactions, totals, WAL and where the results are.
pub fn summary_table(s: &RunSummary, dir: &Path) -> String {
    let f = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:>9} {:>7} {:>7} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "transaction", "ok", "failed", "unknown", "retries", "tps", "p50 ms", "p99 ms", "max ms"
    );
    for (name, t) in &s.transactions {
        let _ = writeln!(
            out,
            "{:<20} {:>9} {:>7} {:>7} {:>7} {:>10} {:>9} {:>9} {:>9}",
            name,
            t.ok,
            t.failed,
            t.unknown,
            t.retries,
            f(Some(t.tps)),
            f(t.latency_ms.p50),
            f(t.latency_ms.p99),
            f(t.latency_ms.max)
        );
    }
    let t = &s.total;
    let _ = writeln!(
        out,
        "{:<20} {:>9} {:>7} {:>7} {:>7} {:>10}",
        "total",
        t.ok,
        t.failed,
        t.unknown,
        t.retries,
        f(Some(t.tps))
    );
    if let (Some(bytes), Some(rate)) = (s.wal.bytes, s.wal.bytes_per_s) {
        let per_tx = s
            .wal
            .bytes_per_tx
            .map(|b| format!("{b:.0}"))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "WAL: {:.1} MB written, {:.2} MB/s, {per_tx} bytes per transaction",
            bytes as f64 / 1e6,
            rate / 1e6,
        );
    }
    if s.interrupted {
        let _ = writeln!(
            out,
            "interrupted: the results hold what was measured until then"
        );
    }
    let _ = writeln!(out, "results: {}", dir.display());
    out
}
