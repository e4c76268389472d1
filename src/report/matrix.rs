//! The matrix report: one row per combination, and when link delay is a dimension, throughput
//! and p99 latency against the delay, a line per other combination.

use super::charts::Line as Stroke;
use super::charts::{draw_line_chart, LineChart, Series, PALETTE};
use super::load::load_result;
use crate::units::format_duration;
use crate::workload::Variant;
use anyhow::Result;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The charts' x axis: its label, the value of a combination on it, and what it is.
type Axis = (&'static str, fn(&Variant) -> Option<f64>, &'static str);

/// One line of the matrix charts: a combination of everything but the delay.
struct Line {
    name: String,
    tps: Vec<(f64, f64)>,
    p99: Vec<(f64, f64)>,
    wal: Vec<(f64, f64)>,
}

/// Write `matrix.md` (and `charts/matrix_tps.png`, `charts/matrix_p99.png`) into `out`.
pub fn write_matrix_report(dirs: &[PathBuf], variants: &[Variant], out: &Path) -> Result<()> {
    let runs = dirs
        .iter()
        .map(|d| load_result(d))
        .collect::<Result<Vec<_>>>()?;
    if variants.iter().any(|v| v.pg_version.is_some()) {
        return super::majors::write_majors_report(&runs, variants, out, |d| link_to(out, d));
    }
    let Some(first) = runs.first() else {
        return Ok(());
    };
    let txs = first.tx_names();
    let standbys: Vec<String> = first.summary.standbys.keys().cloned().collect();
    let mut md = format!("# {}: matrix\n\n", first.summary.workload);
    let _ = writeln!(md, "One run per combination; each run's own report is in its directory. `compare.md` beside this file lines them up with the noise judgement.\n");
    let setting_names: Vec<String> = variants
        .first()
        .map(|v| v.settings.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    let mut header = vec![
        "run".to_string(),
        "PostgreSQL".into(),
        "synchronous_commit".into(),
        "sync".into(),
        "link delay (one way)".into(),
        "standbys streaming".into(),
    ];
    header.extend(setting_names.iter().cloned());
    header.push("tx/s".into());
    header.push("WAL bytes/tx".into());
    header.push("FPI share".into());
    for t in &txs {
        header.push(format!("{t} p50 ms"));
        header.push(format!("{t} p99 ms"));
    }
    for s in &standbys {
        header.push(format!("{s} lag p99 ms"));
    }
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
    let f = |v: Option<f64>, scale: f64| {
        v.map(|x| format!("{:.2}", x * scale))
            .unwrap_or_else(|| "-".into())
    };
    for (r, v) in runs.iter().zip(variants) {
        let s = &r.summary;
        let mut row = vec![
            format!("[{}]({})", v.name(), link_to(out, &r.dir)),
            super::majors::server_version(&s.server),
            v.synchronous_commit
                .clone()
                .unwrap_or_else(|| s.server.synchronous_commit.clone()),
            v.sync
                .map(|m| m.to_string())
                .or_else(|| s.cluster.sync.clone())
                .unwrap_or_else(|| "-".into()),
            v.link_delay
                .map(format_duration)
                .unwrap_or_else(|| "-".into()),
            v.standbys
                .map(|n| n.to_string())
                .unwrap_or_else(|| s.standbys.len().to_string()),
        ];
        row.extend(v.settings.iter().map(|(_, value)| value.clone()));
        row.push(f(Some(s.total.tps), 1.0));
        row.push(
            s.wal
                .bytes_per_tx
                .map(|b| format!("{b:.0}"))
                .unwrap_or_else(|| "-".into()),
        );
        row.push(
            s.wal
                .fpi_share
                .map(|x| format!("{:.1}%", x * 100.0))
                .unwrap_or_else(|| "-".into()),
        );
        for t in &txs {
            let l = s.transactions.get(t).map(|x| &x.latency_ms);
            row.push(f(l.and_then(|l| l.p50), 1.0));
            row.push(f(l.and_then(|l| l.p99), 1.0));
        }
        for sb in &standbys {
            row.push(f(
                s.standbys.get(sb).and_then(|x| x.lag_seconds.p99),
                1000.0,
            ));
        }
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    // The charts' x axis: the link delay when it varies, else the number of standbys.
    let axis: Option<Axis> = if variants.iter().any(|v| v.link_delay.is_some()) {
        Some((
            "one-way link delay (ms)",
            |v| v.link_delay.map(|d| d.as_secs_f64() * 1000.0),
            "link delay",
        ))
    } else if variants.iter().any(|v| v.standbys.is_some()) {
        Some((
            "standbys streaming",
            |v| v.standbys.map(f64::from),
            "the number of standbys",
        ))
    } else {
        None
    };
    if let (Some((x_label, x_of, against)), false) = (axis, txs.is_empty()) {
        let charts = out.join("charts");
        std::fs::create_dir_all(&charts)?;
        // A line per combination of everything but the delay.
        let mut lines: Vec<Line> = Vec::new();
        for (r, v) in runs.iter().zip(variants) {
            let key = Variant {
                link_delay: if axis.map(|a| a.2) == Some("link delay") {
                    None
                } else {
                    v.link_delay
                },
                standbys: if axis.map(|a| a.2) == Some("link delay") {
                    v.standbys
                } else {
                    None
                },
                ..v.clone()
            }
            .name();
            let key = if key.is_empty() {
                "run".to_string()
            } else {
                key
            };
            let x = x_of(v).unwrap_or(0.0);
            let tps = Some(r.summary.total.tps);
            let p99 = r
                .summary
                .transactions
                .get(&txs[0])
                .and_then(|t| t.latency_ms.p99);
            let entry = match lines.iter().position(|l| l.name == key) {
                Some(i) => &mut lines[i],
                None => {
                    lines.push(Line {
                        name: key,
                        tps: vec![],
                        p99: vec![],
                        wal: vec![],
                    });
                    lines.last_mut().expect("just pushed")
                }
            };
            if let Some(t) = tps {
                entry.tps.push((x, t));
            }
            if let Some(p) = p99 {
                entry.p99.push((x, p));
            }
            if let Some(w) = r.summary.wal.bytes_per_tx {
                entry.wal.push((x, w));
            }
        }
        let series = |pick: fn(&Line) -> &Vec<(f64, f64)>| -> Vec<Series> {
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| Series {
                    name: l.name.clone(),
                    points: pick(l).clone(),
                    color: PALETTE[i % PALETTE.len()],
                    line: Stroke::Solid,
                })
                .collect()
        };
        draw_line_chart(
            &charts.join("matrix_tps.png"),
            &LineChart {
                title: format!("Throughput against {against}"),
                x_label,
                y_label: "transactions per second".into(),
                series: series(|l| &l.tps),
                events: &[],
                x_from: None,
                shades: &[],
            },
        )?;
        draw_line_chart(
            &charts.join("matrix_p99.png"),
            &LineChart {
                title: format!("{} p99 latency against {against}", txs[0]),
                x_label,
                y_label: "p99 latency (ms)".into(),
                series: series(|l| &l.p99),
                events: &[],
                x_from: None,
                shades: &[],
            },
        )?;
        draw_line_chart(
            &charts.join("matrix_wal.png"),
            &LineChart {
                title: format!("WAL per transaction against {against}"),
                x_label,
                y_label: "WAL bytes per transaction".into(),
                series: series(|l| &l.wal),
                events: &[],
                x_from: None,
                shades: &[],
            },
        )?;
        let _ = writeln!(
            md,
            "\n## Against {against}\n\n![throughput](charts/matrix_tps.png)\n\n![p99 latency](charts/matrix_p99.png)\n\n![WAL per transaction](charts/matrix_wal.png)"
        );
    }
    super::write_atomic(&out.join("matrix.md"), md.as_bytes())
}

/// A link from `out`'s report to a run's report.md: relative when they are siblings.
fn link_to(out: &Path, run: &Path) -> String {
    match (out.parent(), run.parent(), run.file_name()) {
        (Some(a), Some(b), Some(leaf)) if a == b => {
            format!("../{}/report.md", leaf.to_string_lossy())
        }
        _ => run.join("report.md").display().to_string(),
    }
}
