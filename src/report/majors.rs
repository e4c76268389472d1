//! matrix.md of a `[matrix] pg_version` (DESIGN section 17): the upgrade-planning table. Per
//! major the median of its rounds (each round ran the majors in the opposite order of the one
//! before), each figure beside its ratio over the first major's; the spread of the rounds, so
//! that a reader sees how much of a difference is the machine; every run; and the charts
//! against the major, a line per round.

use super::charts::{draw_line_chart, Line, LineChart, Series, PALETTE};
use super::load::ResultData;
use crate::record::summary::RunSummary;
use crate::workload::Variant;
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

/// One figure of a run, for the tables and charts.
type Figure = fn(&RunSummary, Option<&String>) -> Option<f64>;

const FIGURES: [(&str, Figure); 4] = [
    ("tx/s", |s, _| Some(s.total.tps)),
    ("p99 latency ms", |s, tx| {
        tx.and_then(|t| s.transactions.get(t))
            .and_then(|t| t.latency_ms.p99)
    }),
    ("WAL bytes/tx", |s, _| s.wal.bytes_per_tx),
    ("FPI share %", |s, _| s.wal.fpi_share.map(|f| f * 100.0)),
];

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The server's version as the run recorded it: one, or each node's when they differ.
pub fn server_version(server: &crate::pg::ServerInfo) -> String {
    let mut distinct: Vec<&String> = server.nodes.values().collect();
    distinct.sort();
    distinct.dedup();
    match distinct.as_slice() {
        [one] => (*one).clone(),
        [] if !server.version.is_empty() => server.version.clone(),
        [] => "-".into(),
        many => many
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(" / "),
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

/// Write matrix.md and its charts for runs of a pg_version matrix.
pub fn write_majors_report(
    runs: &[ResultData],
    variants: &[Variant],
    out: &Path,
    link: impl Fn(&Path) -> String,
) -> Result<()> {
    let Some(first) = runs.first() else {
        return Ok(());
    };
    let txs = first.tx_names();
    let tx = txs.first();
    let standbys: Vec<String> = first.summary.standbys.keys().cloned().collect();
    let mut majors: Vec<u32> = Vec::new();
    for v in variants {
        if let Some(m) = v.pg_version.filter(|m| !majors.contains(m)) {
            majors.push(m);
        }
    }
    majors.sort();
    let rounds = variants.iter().filter_map(|v| v.round).max().unwrap_or(1);
    let of_major = |m: u32| -> Vec<&ResultData> {
        runs.iter()
            .zip(variants)
            .filter(|(_, v)| v.pg_version == Some(m))
            .map(|(r, _)| r)
            .collect()
    };
    let med = |m: u32, f: Figure| {
        median(
            of_major(m)
                .iter()
                .filter_map(|r| f(&r.summary, tx))
                .collect(),
        )
    };
    let mut md = format!("# {}: PostgreSQL majors\n\n", first.summary.workload);
    let _ = writeln!(
        md,
        "The same workload on one lab per major, made from that major's binaries and destroyed after its run{}. \
         Each figure of a major is {}; the ratios are over PostgreSQL {}'s. `compare.md` beside this file lines the runs up \
         with the noise judgement of `pgbench-repl compare` (within a run, second by second).\n",
        if rounds > 1 {
            format!(
                ", in {rounds} rounds: each round runs the majors in the opposite order of the one before, so that a \
                 drift of the machine over the matrix does not pass for a difference between majors"
            )
        } else {
            String::new()
        },
        if rounds > 1 {
            "the median of its rounds"
        } else {
            "from its one run"
        },
        majors.first().map(|m| m.to_string()).unwrap_or_default()
    );
    // The upgrade-planning table.
    let base = majors.first().copied().unwrap_or_default();
    let _ = writeln!(
        md,
        "| PostgreSQL | version | tx/s | ratio | {} p99 ms | ratio | WAL bytes/tx | ratio | FPI share % | difference |{}\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|{}",
        tx.map(|t| t.as_str()).unwrap_or("-"),
        standbys.iter().map(|s| format!(" {s} lag p99 ms |")).collect::<String>(),
        "---:|".repeat(standbys.len())
    );
    for &m in &majors {
        let version = of_major(m)
            .first()
            .map(|r| server_version(&r.summary.server))
            .unwrap_or_default();
        let mut row = format!("| {m} | {version} |");
        for (i, (_, f)) in FIGURES.iter().enumerate() {
            let (v, b) = (med(m, *f), med(base, *f));
            let _ = write!(row, " {} |", num(v, if i == 3 { 2 } else { 1 }));
            let rel = match (v, b) {
                // The FPI share is compared in points, the rest as ratios.
                (Some(v), Some(b)) if i == 3 => format!("{:+.2} points", v - b),
                (Some(v), Some(b)) if b > 0.0 => format!("{:.2}x", v / b),
                _ => "-".into(),
            };
            let _ = write!(row, " {rel} |");
        }
        for sb in &standbys {
            let lag = median(
                of_major(m)
                    .iter()
                    .filter_map(|r| r.summary.standbys.get(sb)?.lag_seconds.p99)
                    .map(|s| s * 1000.0)
                    .collect(),
            );
            let _ = write!(row, " {} |", num(lag, 2));
        }
        let _ = writeln!(md, "{row}");
    }
    if rounds > 1 {
        let _ = writeln!(
            md,
            "\n## How far the rounds disagree\n\nThe spread of each major's rounds (highest minus lowest, over the median): \
             a difference between two majors smaller than their spreads is not one this machine can tell.\n\n| PostgreSQL | tx/s of each round | spread |\n|---|---|---:|"
        );
        for &m in &majors {
            let mut each: Vec<(u32, f64)> = runs
                .iter()
                .zip(variants)
                .filter(|(_, v)| v.pg_version == Some(m))
                .map(|(r, v)| (v.round.unwrap_or(1), r.summary.total.tps))
                .collect();
            each.sort_by_key(|e| e.0);
            let values: Vec<f64> = each.iter().map(|e| e.1).collect();
            let spread = match (
                median(values.clone()),
                values.iter().copied().reduce(f64::max),
                values.iter().copied().reduce(f64::min),
            ) {
                (Some(md), Some(hi), Some(lo)) if md > 0.0 => {
                    format!("{:.1}%", (hi - lo) / md * 100.0)
                }
                _ => "-".into(),
            };
            let _ = writeln!(
                md,
                "| {m} | {} | {spread} |",
                each.iter()
                    .map(|(r, t)| format!("round {r}: {t:.1}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let _ = writeln!(
        md,
        "\n## Every run\n\n| run | round | version | tx/s | {} p99 ms | WAL bytes/tx | FPI share % |\n|---|---:|---|---:|---:|---:|---:|",
        tx.map(|t| t.as_str()).unwrap_or("-")
    );
    for (r, v) in runs.iter().zip(variants) {
        let s = &r.summary;
        let _ = writeln!(
            md,
            "| [{}]({}) | {} | {} | {} | {} | {} | {} |",
            v.name(),
            link(&r.dir),
            v.round.unwrap_or(1),
            server_version(&s.server),
            num(FIGURES[0].1(s, tx), 1),
            num(FIGURES[1].1(s, tx), 2),
            num(FIGURES[2].1(s, tx), 0),
            num(FIGURES[3].1(s, tx), 2),
        );
    }
    // The charts: a line per round, and the medians.
    let charts = out.join("charts");
    std::fs::create_dir_all(&charts)?;
    let x_from = majors.first().map(|m| f64::from(*m) - 0.5);
    for (file, title, y, f) in [
        (
            "matrix_tps.png",
            "Throughput",
            "transactions per second",
            FIGURES[0].1,
        ),
        (
            "matrix_p99.png",
            "p99 latency",
            "p99 latency (ms)",
            FIGURES[1].1,
        ),
        (
            "matrix_wal.png",
            "WAL per transaction",
            "WAL bytes per transaction",
            FIGURES[2].1,
        ),
    ] {
        let mut series = Vec::new();
        for r in 1..=rounds {
            let points = runs
                .iter()
                .zip(variants)
                .filter(|(_, v)| v.round.unwrap_or(1) == r)
                .filter_map(|(run, v)| Some((f64::from(v.pg_version?), f(&run.summary, tx)?)))
                .collect::<Vec<_>>();
            let mut points = points;
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            series.push(Series {
                name: if rounds > 1 {
                    format!("round {r}")
                } else {
                    "run".into()
                },
                points,
                color: PALETTE[(r as usize - 1) % PALETTE.len()],
                line: Line::Solid,
            });
        }
        if rounds > 1 {
            series.push(Series {
                name: "median".into(),
                points: majors
                    .iter()
                    .filter_map(|m| Some((f64::from(*m), med(*m, f)?)))
                    .collect(),
                color: PALETTE[7],
                line: Line::Dashed,
            });
        }
        draw_line_chart(
            &charts.join(file),
            &LineChart {
                title: format!("{title} against the PostgreSQL major"),
                x_label: "PostgreSQL major",
                y_label: y.into(),
                series,
                events: &[],
                x_from,
                shades: &[],
            },
        )?;
    }
    md.push_str(
        "\n## Against the PostgreSQL major\n\n![throughput](charts/matrix_tps.png)\n\n![p99 latency](charts/matrix_p99.png)\n\n![WAL per transaction](charts/matrix_wal.png)\n",
    );
    super::write_atomic(&out.join("matrix.md"), md.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn medians() {
        assert_eq!(super::median(vec![]), None);
        assert_eq!(super::median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(super::median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
