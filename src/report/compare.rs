//! `compare`: two or more runs in one table and overlaid charts, with each difference judged
//! against the run-to-run noise seen in the per-second (and per-sample) spread.

use super::charts::{byte_unit, draw_line_chart, Line, LineChart, Series, PALETTE};
use super::load::{load_result, ResultData};
use super::render::points;
use anyhow::Result;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A metric's value in one run, with the per-interval values that show its noise.
struct Measured {
    value: Option<f64>,
    /// Mean and standard error of the per-interval values (None if too few).
    spread: Option<(f64, f64)>,
}

fn mean_se(values: &[f64]) -> Option<(f64, f64)> {
    if values.len() < 3 {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some((mean, (var / n).sqrt()))
}

/// Beyond noise: the per-interval means differ by more than 3 combined standard errors (and by
/// at least 2%, so tiny but steady differences in very stable runs are not called out).
pub fn differs(a: (f64, f64), b: (f64, f64)) -> bool {
    let diff = (a.0 - b.0).abs();
    diff > 3.0 * (a.1.powi(2) + b.1.powi(2)).sqrt() && diff > 0.02 * a.0.abs().max(b.0.abs())
}

/// Per-second total throughput of the measured part (full seconds only).
fn tps_series(d: &ResultData) -> Vec<f64> {
    let warmup = d.summary.warmup_s;
    let names = d.tx_names();
    let n = d.t_s.len();
    (0..n.saturating_sub(1))
        .filter(|&i| d.t_s[i] > warmup + 1.0)
        .map(|i| {
            names
                .iter()
                .map(|t| {
                    d.column(&format!("{t}.tps"))
                        .and_then(|c| c[i])
                        .unwrap_or(0.0)
                })
                .sum()
        })
        .collect()
}

fn column_series(d: &ResultData, col: &str) -> Vec<f64> {
    let warmup = d.summary.warmup_s;
    match d.column(col) {
        Some(c) => d
            .t_s
            .iter()
            .zip(c)
            .filter(|(t, _)| **t > warmup + 1.0)
            .filter_map(|(_, v)| *v)
            .collect(),
        None => vec![],
    }
}

fn lag_series(d: &ResultData, node: &str, col: &str) -> Vec<f64> {
    let warmup = d.summary.warmup_s;
    d.lag
        .get(node)
        .and_then(|n| n.columns.get(col).map(|c| (n, c)))
        .map(|(n, c)| {
            n.t_s
                .iter()
                .zip(c)
                .filter(|(t, _)| **t >= warmup)
                .filter_map(|(_, v)| *v)
                .collect()
        })
        .unwrap_or_default()
}

/// Compare `dirs`; write compare.md, compare.json and overlaid charts; return the output dir.
pub fn compare_runs(dirs: &[PathBuf], out: Option<&Path>) -> Result<PathBuf> {
    let runs: Vec<ResultData> = dirs.iter().map(|d| load_result(d)).collect::<Result<_>>()?;
    let out_dir = super::make_result_dir(out, "compare", None)?;
    let mut rows: Vec<(String, Vec<Measured>)> = Vec::new();
    rows.push((
        "throughput (tx/s)".into(),
        runs.iter()
            .map(|r| Measured {
                value: Some(r.summary.total.tps),
                spread: mean_se(&tps_series(r)),
            })
            .collect(),
    ));
    let mut tx_names: Vec<String> = runs[0].tx_names();
    tx_names.retain(|t| runs.iter().all(|r| r.tx_names().contains(t)));
    for tx in &tx_names {
        for (q, col) in [
            ("p50", Some("p50_ms")),
            ("p99", Some("p99_ms")),
            ("p999", None),
        ] {
            rows.push((
                format!("{tx} latency {q} (ms)"),
                runs.iter()
                    .map(|r| Measured {
                        value: r
                            .summary
                            .number_at(&format!("transactions.{tx}.latency_ms.{q}")),
                        spread: col.and_then(|c| mean_se(&column_series(r, &format!("{tx}.{c}")))),
                    })
                    .collect(),
            ));
        }
    }
    let mut standbys: Vec<String> = runs[0].summary.standbys.keys().cloned().collect();
    standbys.retain(|s| runs.iter().all(|r| r.summary.standbys.contains_key(s)));
    for sb in &standbys {
        for q in ["p50", "p99", "max"] {
            rows.push((
                format!("{sb} lag {q} (ms)"),
                runs.iter()
                    .map(|r| Measured {
                        value: r
                            .summary
                            .number_at(&format!("standbys.{sb}.lag_seconds.{q}"))
                            .map(|v| v * 1000.0),
                        spread: if q == "p50" {
                            mean_se(
                                &lag_series(r, sb, "lag_s")
                                    .iter()
                                    .map(|v| v * 1000.0)
                                    .collect::<Vec<_>>(),
                            )
                        } else {
                            None
                        },
                    })
                    .collect(),
            ));
        }
    }
    rows.push((
        "WAL rate (MB/s)".into(),
        runs.iter()
            .map(|r| Measured {
                value: r.summary.wal.bytes_per_s.map(|v| v / 1e6),
                spread: mean_se(
                    &column_series(r, "wal_bytes_per_s")
                        .iter()
                        .map(|v| v / 1e6)
                        .collect::<Vec<_>>(),
                ),
            })
            .collect(),
    ));
    if runs.iter().all(|r| r.summary.sweep.is_some()) {
        rows.push((
            "max sustainable rate (tx/s)".into(),
            runs.iter()
                .map(|r| Measured {
                    value: r
                        .summary
                        .sweep
                        .as_ref()
                        .and_then(|s| s.max_sustainable_rate),
                    spread: None,
                })
                .collect(),
        ));
    }
    let labels: Vec<String> = runs.iter().map(|r| r.label()).collect();
    let (md, json_rows) = render_table(&labels, &runs, &rows);
    super::write_atomic(&out_dir.join("compare.md"), md.as_bytes())?;
    let doc = json!({"runs": runs.iter().map(|r| json!({"label": r.label(), "dir": r.dir})).collect::<Vec<_>>(), "rows": json_rows});
    super::write_atomic(
        &out_dir.join("compare.json"),
        &serde_json::to_vec_pretty(&doc)?,
    )?;
    draw_overlays(&runs, &labels, &tx_names, &standbys, &out_dir)?;
    Ok(out_dir)
}

fn render_table(
    labels: &[String],
    runs: &[ResultData],
    rows: &[(String, Vec<Measured>)],
) -> (String, Vec<Value>) {
    let mut md = String::from("# Comparison\n\n");
    for (l, r) in labels.iter().zip(runs) {
        let _ = writeln!(
            md,
            "- **{l}**: `{}` ({}, {} s)",
            r.dir.display(),
            r.summary.workload,
            r.summary.duration_s
        );
    }
    md.push_str(
        "\nEach later run is compared with the first. A difference is called out when the per-interval \
         (for lag: per-sample) means differ by more than 3 standard errors combined and by more than 2%: \
         larger than the run-to-run noise. Rows without per-interval data (p99.9, lag p99/max) are shown \
         without a verdict.\n\n",
    );
    let _ = writeln!(md, "| metric | {} |", labels.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(labels.len()));
    let mut json_rows = Vec::new();
    for (metric, values) in rows {
        let base = &values[0];
        let mut cells = Vec::new();
        let mut verdicts = Vec::new();
        for (i, m) in values.iter().enumerate() {
            let text = m
                .value
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "-".into());
            if i == 0 {
                cells.push(text);
                verdicts.push(Value::Null);
                continue;
            }
            let pct = match (base.value, m.value) {
                (Some(a), Some(b)) if a.abs() > 1e-12 => format!(" ({:+.1}%)", (b - a) / a * 100.0),
                _ => String::new(),
            };
            let verdict = match (base.spread, m.spread) {
                (Some(a), Some(b)) => Some(differs(a, b)),
                _ => None,
            };
            let mark = match verdict {
                Some(true) => " **beyond noise**",
                Some(false) => " (within noise)",
                None => "",
            };
            cells.push(format!("{text}{pct}{mark}"));
            verdicts.push(verdict.map(Value::from).unwrap_or(Value::Null));
        }
        let _ = writeln!(md, "| {metric} | {} |", cells.join(" | "));
        json_rows.push(json!({
            "metric": metric,
            "values": values.iter().map(|m| m.value).collect::<Vec<_>>(),
            "beyond_noise": verdicts,
        }));
    }
    md.push_str("\n## Charts\n\n");
    for (f, t) in [
        ("throughput.png", "Throughput"),
        ("latency_p99.png", "Latency p99"),
        ("lag_seconds.png", "Lag in time"),
        ("wal_rate.png", "WAL rate"),
    ] {
        let _ = writeln!(md, "### {t}\n\n![{t}](charts/{f})\n");
    }
    if runs.iter().all(|r| first_event(r).is_some()) {
        md.push_str("### Aligned at each run's first event

Time 0 is each run's first drill event (its time from the start is in the legend), so that what followed it lines up whenever it came.\n\n![Throughput aligned at the first event](charts/throughput_at_event.png)\n\n![Lag aligned at the first event](charts/lag_seconds_at_event.png)\n\n");
    }
    (md, json_rows)
}

/// When a run's first drill event came (its node_down/node_up fault marks are not events of
/// the drill).
fn first_event(r: &ResultData) -> Option<(f64, String)> {
    r.events
        .iter()
        .find(|(_, kind, _, _)| kind != "node_down" && kind != "node_up")
        .map(|(t, kind, node, _)| {
            let what = if node.is_empty() {
                kind.clone()
            } else {
                format!("{kind} {node}")
            };
            (*t, what)
        })
}

/// Each run's LSN-timeline lag per standby, named by `name`, its time shifted back by `shift`.
fn lag_overlay(
    runs: &[ResultData],
    standbys: &[String],
    name: impl Fn(usize) -> String,
    shift: impl Fn(usize) -> f64,
) -> Vec<Series> {
    let mut lag = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        for (k, sb) in standbys.iter().enumerate() {
            if let Some(n) = r.lag.get(sb) {
                let t0 = shift(i);
                lag.push(Series {
                    name: format!("{}: {sb}", name(i)),
                    points: points(&n.t_s, n.columns.get("lag_s"), 1000.0)
                        .into_iter()
                        .map(|(t, v)| (t - t0, v))
                        .collect(),
                    color: PALETTE[i % PALETTE.len()],
                    line: Line::dashed_if(k % 2 == 1),
                });
            }
        }
    }
    lag
}

/// Throughput and lag of every run with time 0 at its first event.
fn draw_aligned(
    runs: &[ResultData],
    labels: &[String],
    standbys: &[String],
    dir: &Path,
) -> Result<()> {
    let Some(starts) = runs.iter().map(first_event).collect::<Option<Vec<_>>>() else {
        return Ok(());
    };
    let color = |i: usize| PALETTE[i % PALETTE.len()];
    let label = |i: usize| format!("{} ({} at {:.1} s)", labels[i], starts[i].1, starts[i].0);
    let x_from = runs
        .iter()
        .zip(&starts)
        .filter_map(|(r, (t0, _))| r.t_s.first().map(|t| t - r.nominal_interval() - t0))
        .fold(0.0f64, f64::min);
    let tps: Vec<Series> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let per_tx: Vec<Vec<(f64, f64)>> = r
                .tx_names()
                .iter()
                .map(|n| r.step_points(&format!("{n}.tps"), 1.0, false))
                .collect();
            let len = per_tx.first().map_or(0, |p| p.len());
            let points = (0..len)
                .map(|k| {
                    let t = per_tx[0][k].0 - starts[i].0;
                    (t, per_tx.iter().filter_map(|p| p.get(k)).map(|p| p.1).sum())
                })
                .collect();
            Series {
                name: label(i),
                points,
                color: color(i),
                line: Line::Solid,
            }
        })
        .collect();
    let none: Vec<(f64, String)> = vec![(0.0, "first event".into())];
    draw_line_chart(
        &dir.join("throughput_at_event.png"),
        &LineChart {
            title: "Throughput, all transactions, aligned at each run's first event".into(),
            x_label: "time since the run's first event (s)",
            y_label: "transactions per second".into(),
            series: tps,
            events: &none,
            x_from: Some(x_from),
            shades: &[],
        },
    )?;
    let lag = lag_overlay(runs, standbys, label, |i: usize| starts[i].0);
    draw_line_chart(
        &dir.join("lag_seconds_at_event.png"),
        &LineChart {
            title: "Replay lag by the LSN timeline, aligned at each run's first event".into(),
            x_label: "time since the run's first event (s)",
            y_label: "lag (ms)".into(),
            series: lag,
            events: &none,
            x_from: Some(x_from),
            shades: &[],
        },
    )
}

fn draw_overlays(
    runs: &[ResultData],
    labels: &[String],
    txs: &[String],
    standbys: &[String],
    out: &Path,
) -> Result<()> {
    let dir = out.join("charts");
    std::fs::create_dir_all(&dir)?;
    draw_aligned(runs, labels, standbys, &dir)?;
    let color = |i: usize| PALETTE[i % PALETTE.len()];
    let none: Vec<(f64, String)> = vec![];
    let tps: Vec<Series> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let names = r.tx_names();
            let pts = r
                .t_s
                .iter()
                .enumerate()
                .filter(|(k, _)| {
                    r.column("interval_s")
                        .and_then(|l| l[*k])
                        .is_none_or(|l| l >= 0.5 * r.nominal_interval())
                })
                .map(|(k, t)| {
                    (
                        *t,
                        names
                            .iter()
                            .map(|n| {
                                r.column(&format!("{n}.tps"))
                                    .and_then(|c| c[k])
                                    .unwrap_or(0.0)
                            })
                            .sum(),
                    )
                })
                .collect();
            Series {
                name: labels[i].clone(),
                points: pts,
                color: color(i),
                line: Line::Solid,
            }
        })
        .collect();
    draw_line_chart(
        &dir.join("throughput.png"),
        &LineChart {
            title: "Throughput, all transactions".into(),
            x_label: "time since start (s)",
            y_label: "transactions per second".into(),
            series: tps,
            events: &none,
            x_from: None,
            shades: &[],
        },
    )?;
    let mut lat = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        for (k, tx) in txs.iter().enumerate() {
            lat.push(Series {
                name: if txs.len() > 1 {
                    format!("{}: {tx}", labels[i])
                } else {
                    labels[i].clone()
                },
                points: r.interval_points(&format!("{tx}.p99_ms"), 1.0),
                color: color(i),
                line: Line::dashed_if(k % 2 == 1),
            });
        }
    }
    draw_line_chart(
        &dir.join("latency_p99.png"),
        &LineChart {
            title: "Latency p99 per second".into(),
            x_label: "time since start (s)",
            y_label: "latency (ms)".into(),
            series: lat,
            events: &none,
            x_from: None,
            shades: &[],
        },
    )?;
    let lag = lag_overlay(runs, standbys, |i: usize| labels[i].clone(), |_| 0.0);
    draw_line_chart(
        &dir.join("lag_seconds.png"),
        &LineChart {
            title: "Replay lag by the LSN timeline".into(),
            x_label: "time since start (s)",
            y_label: "lag (ms)".into(),
            series: lag,
            events: &none,
            x_from: None,
            shades: &[],
        },
    )?;
    let max = runs
        .iter()
        .flat_map(|r| column_series(r, "wal_bytes_per_s"))
        .fold(0.0, f64::max);
    let (div, unit) = byte_unit(max);
    let wal = runs
        .iter()
        .enumerate()
        .map(|(i, r)| Series {
            name: labels[i].clone(),
            points: r.interval_points("wal_bytes_per_s", 1.0 / div),
            color: color(i),
            line: Line::Solid,
        })
        .collect();
    draw_line_chart(
        &dir.join("wal_rate.png"),
        &LineChart {
            title: "WAL generation rate".into(),
            x_label: "time since start (s)",
            y_label: format!("WAL ({unit}/s)"),
            series: wal,
            events: &none,
            x_from: None,
            shades: &[],
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_judgement() {
        let a = mean_se(&[100.0, 102.0, 98.0, 101.0, 99.0]).unwrap();
        let b = mean_se(&[101.0, 99.0, 100.0, 102.0, 98.0]).unwrap();
        let c = mean_se(&[150.0, 152.0, 148.0, 151.0, 149.0]).unwrap();
        assert!(!differs(a, b));
        assert!(differs(a, c));
        assert!(mean_se(&[1.0, 2.0]).is_none());
    }
}
