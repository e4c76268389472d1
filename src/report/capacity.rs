//! capacity.md and charts/capacity.png of a sweep (DESIGN section 11), drawn from summary.json
//! alone: the steps, the max sustainable rate, and what follows from it.

use super::charts::{register_font, PALETTE};
use super::format::bytes_text;
use crate::record::capacity::{Projections, SweepSummary};
use crate::record::summary::RunSummary;
use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

/// Write capacity.md and charts/capacity.png when the run was a sweep.
pub fn write_capacity(dir: &Path, s: &RunSummary) -> Result<()> {
    let Some(sweep) = &s.sweep else { return Ok(()) };
    draw(&dir.join("charts").join("capacity.png"), sweep)?;
    super::write_atomic(&dir.join("capacity.md"), markdown(s, sweep).as_bytes())
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

fn duration(secs: f64) -> String {
    match secs {
        s if s >= 3600.0 => format!("{:.1} h", s / 3600.0),
        s if s >= 60.0 => format!("{:.0} min", s / 60.0),
        s => format!("{s:.0} s"),
    }
}

fn markdown(s: &RunSummary, sw: &SweepSummary) -> String {
    let mut md = format!("# {}: capacity\n\n", s.workload);
    let _ = writeln!(
        md,
        "How much load can this topology take before replication falls outside its SLO? The offered rate of the group `{}` was stepped ({} steps, each once every standby had caught up) and every step judged against the SLO ({}), the trend of each standby's lag (a lag that keeps growing is not sustainable even under the SLO) and the rate actually achieved (at least 95% of the offered rate, at most 1% errors).\n",
        sw.group,
        sw.steps.len(),
        if sw.slo.is_empty() { "none given".to_string() } else { sw.slo.join(", ") }
    );
    match sw.max_sustainable_rate {
        Some(m) => {
            let _ = writeln!(
                md,
                "**Max sustainable rate: {m} tx/s.** {}\n",
                match &sw.limit {
                    Some(l) => format!("Above it, what broke first was **{l}**."),
                    None => "No step above it failed (raise max_rate to find the limit).".into(),
                }
            );
        }
        None => {
            let _ = writeln!(
                md,
                "**No step met the SLO**: the lowest rate tried was already too much.\n"
            );
        }
    }
    let standbys: Vec<String> = sw
        .steps
        .iter()
        .flat_map(|st| st.stats.standbys.keys().cloned())
        .fold(Vec::new(), |mut v, n| {
            if !v.contains(&n) {
                v.push(n);
            }
            v
        });
    let mut header = "| offered tx/s | achieved tx/s | p50 ms | p99 ms |".to_string();
    for n in &standbys {
        header.push_str(&format!(" {n} lag p99 | {n} lag trend |"));
    }
    header.push_str(" WAL/s | WAL/tx | verdict |");
    let _ = writeln!(
        md,
        "{header}\n|{}",
        "---:|".repeat(header.matches('|').count() - 2) + "---|"
    );
    let mut steps = sw.steps.clone();
    steps.sort_by(|a, b| a.stats.offered_rate.total_cmp(&b.stats.offered_rate));
    for st in &steps {
        let x = &st.stats;
        let mut row = format!(
            "| {} | {} | {} | {} |",
            x.offered_rate,
            x.achieved_tps,
            num(x.latency_ms.p50, 2),
            num(x.latency_ms.p99, 2)
        );
        for n in &standbys {
            let sb = x.standbys.get(n);
            row.push_str(&format!(
                " {} | {} |",
                sb.and_then(|s| s.lag_seconds.p99)
                    .map(|l| format!("{:.3} s", l))
                    .unwrap_or("-".into()),
                sb.and_then(|s| s.lag_trend_s_per_s)
                    .map(|t| format!("{t:+.3} s/s"))
                    .unwrap_or("-".into())
            ));
        }
        row.push_str(&format!(
            " {} | {} | {} |",
            bytes_text(x.wal_bytes_per_s),
            bytes_text(x.wal_bytes_per_tx),
            if st.met_slo {
                "met".to_string()
            } else {
                format!("**not sustainable**: {}", st.failed_checks.join("; "))
            }
        ));
        let _ = writeln!(md, "{row}");
    }
    md.push_str("\n![capacity](charts/capacity.png)\n");
    if !sw.replay_bytes_per_s.is_empty() {
        let _ = writeln!(
            md,
            "\n## Replay rate\n\nMeasured, not assumed: at the max sustainable rate every standby's link was paused and let go, and each standby's replay rate over the first half of its catch-up was: {}.",
            sw.replay_bytes_per_s
                .iter()
                .map(|(n, r)| format!("{n} {}/s", bytes_text(Some(*r))))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(p) = &sw.projections {
        let _ = writeln!(md, "\n## At the max sustainable rate ({} tx/s)\n", p.rate);
        projections(&mut md, p);
    }
    if let Some(c) = &sw.current {
        let _ = writeln!(
            md,
            "\n## At the current rate ({} tx/s)\n\nHeadroom: **{}** (max sustainable rate / current rate).\n",
            c.rate,
            c.headroom.map(|h| format!("{h:.2}x")).unwrap_or_else(|| "unknown".into())
        );
        projections(&mut md, &c.projections);
    }
    md
}

fn projections(md: &mut String, p: &Projections) {
    let w = p.wal_bytes_per_s;
    let _ = writeln!(
        md,
        "- WAL: {}/s measured, so {} per hour and {} per day (WAL rate x 3600, x 86400).",
        bytes_text(Some(w)),
        bytes_text(Some(p.wal_bytes_per_hour)),
        bytes_text(Some(p.wal_bytes_per_day))
    );
    let _ = writeln!(
        md,
        "- Network: each standby needs at least {:.2} Mbit/s to keep up (the WAL rate x 8), more to catch up after an outage.",
        p.standby_bandwidth_mbit_per_s
    );
    md.push_str("\n| outage | slot retention needed (WAL rate x outage) | pg_wal needed (that + pg_wal at this rate) | catch-up after it (retained / (replay rate - WAL rate)) |\n|---|---:|---:|---:|\n");
    for o in &p.outages {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            duration(o.outage_s),
            bytes_text(Some(o.slot_retention_bytes)),
            bytes_text(Some(o.pg_wal_bytes)),
            o.catch_up_s
                .map(duration)
                .unwrap_or_else(|| "never (or replay rate not measured)".into())
        );
    }
    md.push_str("\nSet `max_slot_wal_keep_size` at least to the retention of the longest outage the standbys must survive, and size the disk under pg_wal for it; beyond it the slot is lost and the standby must be rebuilt.\n");
}

/// Three panels over the offered rate: achieved rate, p99 latency, each standby's p99 lag;
/// the SLO lines and the max sustainable rate marked.
fn draw(path: &Path, sw: &SweepSummary) -> Result<()> {
    register_font();
    std::fs::create_dir_all(path.parent().expect("charts/"))?;
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let root = BitMapBackend::new(path, (1100, 1050)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (title, rest) = root.split_vertically(40);
    title
        .titled(
            &format!(
                "Capacity: {} (max sustainable {})",
                sw.group,
                sw.max_sustainable_rate
                    .map(|m| format!("{m} tx/s"))
                    .unwrap_or_else(|| "not found".into())
            ),
            ("sans-serif", 24),
        )
        .map_err(|e| err(&e))?;
    let panels = rest.split_evenly((3, 1));
    let mut steps = sw.steps.clone();
    steps.sort_by(|a, b| a.stats.offered_rate.total_cmp(&b.stats.offered_rate));
    let xs: Vec<f64> = steps.iter().map(|s| s.stats.offered_rate).collect();
    let slo = |prefix: &str| -> Vec<f64> {
        sw.slo
            .iter()
            .filter(|t| t.starts_with(prefix))
            .filter_map(|t| t.split_whitespace().last()?.parse().ok())
            .collect()
    };
    let achieved = vec![
        (
            "achieved".to_string(),
            steps
                .iter()
                .map(|s| (s.stats.offered_rate, s.stats.achieved_tps))
                .collect::<Vec<_>>(),
        ),
        ("offered".to_string(), xs.iter().map(|x| (*x, *x)).collect()),
    ];
    panel(
        &panels[0],
        "Achieved rate",
        "tx/s",
        &achieved,
        &[],
        sw.max_sustainable_rate,
    )?;
    let p99 = vec![(
        "p99 latency".to_string(),
        steps
            .iter()
            .filter_map(|s| Some((s.stats.offered_rate, s.stats.latency_ms.p99?)))
            .collect(),
    )];
    panel(
        &panels[1],
        "Latency p99",
        "ms",
        &p99,
        &slo("latency_ms.p99"),
        sw.max_sustainable_rate,
    )?;
    let mut names: Vec<String> = steps
        .iter()
        .flat_map(|s| s.stats.standbys.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    let lags: Vec<(String, Vec<(f64, f64)>)> = names
        .iter()
        .map(|n| {
            let pts = steps
                .iter()
                .filter_map(|s| {
                    Some((
                        s.stats.offered_rate,
                        s.stats.standbys.get(n)?.lag_seconds.p99?,
                    ))
                })
                .collect();
            (format!("{n} lag p99"), pts)
        })
        .collect();
    panel(
        &panels[2],
        "Replication lag p99 (LSN timeline)",
        "s",
        &lags,
        &slo("lag_seconds.p99"),
        sw.max_sustainable_rate,
    )?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

fn panel(
    area: &Area,
    title: &str,
    unit: &str,
    series: &[(String, Vec<(f64, f64)>)],
    slo: &[f64],
    max_rate: Option<f64>,
) -> Result<()> {
    let e = |e: &dyn std::fmt::Display| anyhow!("{e}");
    let all: Vec<&(f64, f64)> = series.iter().flat_map(|s| s.1.iter()).collect();
    let x_max = all.iter().map(|p| p.0).fold(1.0f64, f64::max) * 1.05;
    let y_max = all
        .iter()
        .map(|p| p.1)
        .chain(slo.iter().cloned())
        .fold(0.0f64, f64::max);
    let y_top = if y_max > 0.0 { y_max * 1.15 } else { 1.0 };
    let mut ctx = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..y_top)
        .map_err(|x| e(&x))?;
    ctx.configure_mesh()
        .x_desc("offered rate (tx/s)")
        .y_desc(unit)
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|x| e(&x))?;
    let red = RGBColor(200, 60, 60);
    for y in slo {
        ctx.draw_series(DashedLineSeries::new(
            vec![(0.0, *y), (x_max, *y)],
            8,
            5,
            red.stroke_width(2),
        ))
        .map_err(|x| e(&x))?
        .label(format!("SLO {y} {unit}"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2)));
    }
    if let Some(m) = max_rate {
        let green = RGBColor(44, 140, 44);
        ctx.draw_series(DashedLineSeries::new(
            vec![(m, 0.0), (m, y_top)],
            6,
            4,
            green.stroke_width(2),
        ))
        .map_err(|x| e(&x))?
        .label(format!("max sustainable {m} tx/s"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], green.stroke_width(2)));
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        ctx.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        ctx.draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|x| e(&x))?;
    Ok(())
}
