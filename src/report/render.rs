//! `report`: charts/*.png and report.md, drawn from the result files alone.

use super::charts::{byte_unit, draw_line_chart, Line, LineChart, Series, PALETTE};
use super::format::bytes_text;
use super::load::{load_result, Column, ResultData};
use crate::record::summary::{RunSummary, StandbySummary};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;

/// The chart files a run gets, with what they show.
pub const CHARTS: [(&str, &str); 5] = [
    ("throughput.png", "Throughput"),
    ("latency.png", "Latency percentiles"),
    ("lag_bytes.png", "Replication lag in bytes"),
    ("lag_seconds.png", "Replication lag in seconds"),
    ("wal_rate.png", "WAL rate"),
];

/// Redraw the charts and report.md of a result directory.
pub fn render_report(dir: &Path) -> Result<()> {
    let data = load_result(dir)?;
    let charts = dir.join("charts");
    std::fs::create_dir_all(&charts)
        .with_context(|| format!("cannot create {}", charts.display()))?;
    draw_run_charts(&data, &charts)?;
    super::capacity::write_capacity(dir, &data.summary)?;
    let md = report_markdown(&data);
    super::write_atomic(&dir.join("report.md"), md.as_bytes())?;
    let title = format!("{}: pgbench-repl report", data.summary.workload);
    super::html::write_html(dir, &md, &title)
}

/// Points of a column against time, skipping empty cells.
pub fn points(t: &[f64], col: Option<&Column>, scale: f64) -> Vec<(f64, f64)> {
    col.map(|c| {
        t.iter()
            .zip(c)
            .filter_map(|(t, v)| v.map(|v| (*t, v * scale)))
            .collect()
    })
    .unwrap_or_default()
}

/// Drill events and faults worth a mark on the time axis.
pub fn event_marks(data: &ResultData) -> Vec<(f64, String)> {
    let mut marks: Vec<(f64, String)> = Vec::new();
    for (t, kind, node, _) in &data.events {
        if kind == "node_up" {
            continue;
        }
        let label = if node.is_empty() {
            kind.clone()
        } else {
            format!("{kind} {node}")
        };
        // One mark per kind and node within a second: a burst of node_down is one event.
        if marks
            .iter()
            .any(|(t0, l)| *l == label && (t - t0).abs() < 1.0)
        {
            continue;
        }
        marks.push((*t, label));
    }
    marks
}

/// A node's colour, the same on every chart of a run: its place among the run's nodes
/// (primary first), whatever role it has now.
pub fn node_color(s: &RunSummary, node: &str) -> plotters::style::RGBColor {
    let i = s
        .cluster
        .nodes
        .iter()
        .position(|n| n.name == node)
        .unwrap_or(s.cluster.nodes.len());
    PALETTE[i % PALETTE.len()]
}

/// The spans without service worth shading: a failover's, from the kill to the first write
/// on the new primary (to the end of the run when none came), and each standby's
/// interruption, from the pause or cut to its undo.
pub fn outages(s: &RunSummary) -> Vec<(f64, f64, String)> {
    let mut out = Vec::new();
    let end = s.warmup_s + s.duration_s;
    if let Some(f) = &s.drills.failover {
        let to = f.rto_s.map(|r| f.killed_at_s + r).unwrap_or(end);
        out.push((f.killed_at_s, to, format!("{} down", f.killed)));
    }
    for (node, i) in &s.drills.interruption {
        out.push((
            i.started_s,
            i.ended_s.unwrap_or(end),
            format!("{node}: {}", i.action),
        ));
    }
    out
}

fn draw_run_charts(data: &ResultData, dir: &Path) -> Result<()> {
    let events = event_marks(data);
    let names = data.tx_names();
    let color = |i: usize| PALETTE[i % PALETTE.len()];
    let mut tps: Vec<Series> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Series {
            name: format!("{n} ok"),
            points: data.step_points(&format!("{n}.tps"), 1.0, false),
            color: color(i),
            line: Line::Solid,
        })
        .collect();
    // Failed and unknown transactions of every name, each in its own colour, only when any.
    for (what, rgb) in [
        ("failed", plotters::style::RGBColor(200, 0, 0)),
        ("unknown", plotters::style::RGBColor(20, 20, 20)),
    ] {
        let per_tx: Vec<Vec<(f64, f64)>> = names
            .iter()
            .map(|n| data.step_points(&format!("{n}.{what}"), 1.0, true))
            .collect();
        let Some(first) = per_tx.first() else {
            continue;
        };
        let points: Vec<(f64, f64)> = (0..first.len())
            .map(|k| {
                let sum = per_tx.iter().filter_map(|p| p.get(k)).map(|p| p.1).sum();
                (first[k].0, sum)
            })
            .collect();
        if points.iter().any(|p| p.1 > 0.0) {
            // Drawn only where there were some: a line along 0 would hide the axis.
            let points = points
                .into_iter()
                .map(|(t, v)| (t, if v > 0.0 { v } else { f64::NAN }))
                .collect();
            tps.push(Series {
                name: format!("{what} (all transactions)"),
                points,
                color: rgb,
                line: Line::Solid,
            });
        }
    }
    let shades = outages(&data.summary);
    draw_line_chart(
        &dir.join("throughput.png"),
        &LineChart {
            title: format!(
                "{}: transactions per second ({} intervals)",
                data.summary.workload,
                crate::units::format_duration(std::time::Duration::from_secs_f64(
                    data.nominal_interval()
                ))
            ),
            x_label: "time since start (s)",
            y_label: "transactions per second".into(),
            series: tps,
            events: &events,
            x_from: None,
            shades: &shades,
        },
    )?;
    let mut lat = Vec::new();
    for (i, n) in names.iter().enumerate() {
        for (q, line) in [("p99", Line::Solid), ("p50", Line::Dashed)] {
            lat.push(Series {
                name: format!("{n} {q}"),
                points: data.interval_points(&format!("{n}.{q}_ms"), 1.0),
                color: color(i),
                line,
            });
        }
    }
    draw_line_chart(
        &dir.join("latency.png"),
        &LineChart {
            title: "Latency per interval: p99 (solid) and p50 (dashed)".into(),
            x_label: "time since start (s)",
            y_label: "latency (ms)".into(),
            series: lat,
            events: &events,
            x_from: None,
            shades: &shades,
        },
    )?;
    draw_lag_charts(data, dir, &events, &shades)?;
    let wal = data.interval_points("wal_bytes_per_s", 1.0);
    let (div, unit) = byte_unit(wal.iter().map(|p| p.1).fold(0.0, f64::max));
    draw_line_chart(
        &dir.join("wal_rate.png"),
        &LineChart {
            title: "WAL generation rate on the primary".into(),
            x_label: "time since start (s)",
            y_label: format!("WAL written ({unit}/s)"),
            series: vec![Series {
                name: "WAL".into(),
                points: wal.into_iter().map(|(t, v)| (t, v / div)).collect(),
                color: color(0),
                line: Line::Solid,
            }],
            events: &events,
            x_from: None,
            shades: &[],
        },
    )
}

fn draw_lag_charts(
    data: &ResultData,
    dir: &Path,
    events: &[(f64, String)],
    shades: &[(f64, f64, String)],
) -> Result<()> {
    let max_bytes = data
        .lag
        .values()
        .flat_map(|n| n.columns.get("lag_bytes").into_iter().flatten().flatten())
        .fold(0.0f64, |a, b| a.max(*b));
    let (div, unit) = byte_unit(max_bytes);
    let mut bytes = Vec::new();
    let mut secs = Vec::new();
    for (node, lag) in &data.lag {
        let c = node_color(&data.summary, node);
        // Only while the node is a standby: a gap (NaN) where it is not, so no line is drawn
        // across a span in which it was down or the primary.
        let standby: Vec<bool> = match lag.columns.get("in_recovery") {
            Some(col) => col.iter().map(|v| *v == Some(1.0)).collect(),
            None => vec![true; lag.t_s.len()],
        };
        let while_standby = |name: &str, scale: f64| -> Vec<(f64, f64)> {
            let Some(col) = lag.columns.get(name) else {
                return vec![];
            };
            let mut out: Vec<(f64, f64)> = Vec::new();
            for (k, t) in lag.t_s.iter().enumerate() {
                match (
                    standby.get(k).copied().unwrap_or(false),
                    col.get(k).copied().flatten(),
                ) {
                    (true, Some(v)) => out.push((*t, v * scale)),
                    _ => {
                        if out.last().is_some_and(|p| !p.1.is_nan()) {
                            out.push((*t, f64::NAN));
                        }
                    }
                }
            }
            out
        };
        bytes.push(Series {
            name: node.clone(),
            points: while_standby("lag_bytes", 1.0 / div),
            color: c,
            line: Line::Solid,
        });
        secs.push(Series {
            name: format!("{node} (LSN timeline)"),
            points: while_standby("lag_s", 1000.0),
            color: c,
            line: Line::Solid,
        });
        secs.push(Series {
            name: format!("{node} (PostgreSQL replay_lag)"),
            points: while_standby("pg_replay_lag_s", 1000.0),
            color: c,
            line: Line::Dashed,
        });
        secs.push(Series {
            name: format!("{node} (heartbeat)"),
            points: while_standby("heartbeat_lag_s", 1000.0),
            color: c,
            line: Line::Dotted,
        });
    }
    draw_line_chart(
        &dir.join("lag_bytes.png"),
        &LineChart {
            title: "Replay lag in bytes (primary WAL position minus standby replay position)"
                .into(),
            x_label: "time since start (s)",
            y_label: format!("replay lag ({unit})"),
            series: bytes,
            events,
            x_from: None,
            shades,
        },
    )?;
    draw_line_chart(
        &dir.join("lag_seconds.png"),
        &LineChart {
            title: "Lag in time: LSN timeline (solid), PostgreSQL replay_lag (dashed), heartbeat (dotted)".into(),
            x_label: "time since start (s)",
            y_label: "lag (ms)".into(),
            series: secs,
            events,
            x_from: None,
            shades,
        },
    )
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

fn ms_from_s(v: Option<f64>) -> String {
    v.map(|x| format!("{:.1}", x * 1000.0))
        .unwrap_or_else(|| "-".into())
}

/// report.md: the summary in words and tables, with the charts.
/// A shard's own result says which shard it is; a merged one has a line per shard.
fn shards_markdown(md: &mut String, s: &RunSummary) {
    if let Some(me) = &s.shard {
        let _ =
            writeln!(
            md,
            "\nThis is shard {} of {} of run `{}` (on {}), started {} s after the common start: \
             its counts are its share of the load. `pgbench-repl merge` of all {} shards' \
             directories gives the whole run, and judges the `[expect]` lines on it.\n",
            me.index, me.count, me.run_id, me.host, num(Some(me.late_s), 3), me.count
        );
    }
    let Some(all) = &s.shards else {
        return;
    };
    let _ = writeln!(
        md,
        "\n## Shards\n\nRun `{}`: {} of {} shards merged; they started within {} s of each \
         other. Counts are added; latency percentiles are those of every shard's transactions \
         together (their HDR histograms added). Replication lag, WAL and events are shard 0's \
         (it alone sampled).\n",
        all.run_id,
        all.merged.len(),
        all.count,
        num(Some(all.start_spread_s), 3)
    );
    if !all.missing.is_empty() {
        let _ = writeln!(
            md,
            "**Shards {:?} are missing**: their share of the load is not in these results.\n",
            all.missing
        );
    }
    if !all.incomplete.is_empty() {
        let _ = writeln!(
            md,
            "**Shards {:?} stopped before the end**: what they measured until then is in.\n",
            all.incomplete
        );
    }
    md.push_str(
        "| shard | host | clients | ok | failed | unknown | tps | p99 (ms) | start (s) | complete |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in &all.per_shard {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.index,
            r.host,
            r.clients,
            r.ok,
            r.failed,
            r.unknown,
            num(Some(r.tps), 1),
            num(r.p99_ms, 3),
            num(Some(r.start_offset_s), 3),
            if r.complete { "yes" } else { "**no**" }
        );
    }
    for i in &all.missing {
        let _ = writeln!(md, "| {i} | - | - | - | - | - | - | - | - | **missing** |");
    }
}

pub fn report_markdown(data: &ResultData) -> String {
    let s = &data.summary;
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", s.workload);
    if let Some(d) = &s.description {
        let _ = writeln!(md, "{d}\n");
    }
    // What the run shows, before how it ran.
    let lines = super::headline::headline(s);
    if !lines.is_empty() {
        let _ = writeln!(md, "{}\n", lines.join(" "));
    }
    let nodes: Vec<&str> = s.cluster.nodes.iter().map(|n| n.name.as_str()).collect();
    let _ = writeln!(
        md,
        "Run from {} to {}: {} s measured after {} s of warmup, on the {} ({}), {}, \
         synchronous_commit = `{}`, synchronous_standby_names = `{}`.\n",
        s.started_at,
        s.ended_at.as_deref().unwrap_or("?"),
        num(Some(s.duration_s), 1),
        num(Some(s.warmup_s), 1),
        if s.cluster.kind == "lab" {
            "lab"
        } else {
            "cluster"
        },
        nodes.join(", "),
        server_versions(&s.server),
        s.server.synchronous_commit,
        s.server.synchronous_standby_names,
    );
    if s.interrupted {
        md.push_str(
            "**The run was interrupted**: these results hold what was measured until then.\n\n",
        );
    }
    words(&mut md, s);
    shards_markdown(&mut md, s);
    if let Some(sw) = &s.sweep {
        let _ = writeln!(
            md,
            "\n## Capacity\n\nA sweep of the group `{}`: max sustainable rate **{}**{}. The steps, the SLO and the projections are in [capacity.md](capacity.md).\n",
            sw.group,
            sw.max_sustainable_rate.map(|m| format!("{m} tx/s")).unwrap_or_else(|| "not found".into()),
            sw.limit.as_ref().map(|l| format!(", limited by {l}")).unwrap_or_default()
        );
    }
    tables(&mut md, s);
    md.push_str(&super::drills_md::drills_markdown(s));
    if !data.events.is_empty() {
        md.push_str("\n## Events\n\n| t (s) | event | node | detail |\n|---:|---|---|---|\n");
        for (t, kind, node, detail) in data.events.iter().take(200) {
            let _ = writeln!(
                md,
                "| {t:.2} | {kind} | {node} | {} |",
                detail.replace('|', "\\|")
            );
        }
    }
    if !s.expect.is_empty() {
        md.push_str(
            "\n## Expectations\n\n| path | condition | actual | verdict |\n|---|---|---:|---|\n",
        );
        for e in &s.expect {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                e.path,
                e.condition,
                e.actual
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "-".into()),
                if e.passed { "passed" } else { "**failed**" }
            );
        }
    }
    md.push_str("\n## Charts\n\n");
    for (file, title) in CHARTS {
        let _ = writeln!(md, "### {title}\n\n![{title}](charts/{file})\n");
    }
    md.push_str(
        "## Files\n\n`summary.json` (everything above, for programs), `intervals.csv` (one row per second), \
         `lag.csv` (one row per sample and standby), `events.csv`, `latency.hlog` (HdrHistogram interval log; `totals.hlog` the whole run's). \
         `pgbench-repl report <this directory>` redraws the charts and this page from them.\n",
    );
    md
}

fn words(md: &mut String, s: &RunSummary) {
    md.push_str("## In words\n\n");
    let t = &s.total;
    let read_only: u64 = s
        .transactions
        .values()
        .filter_map(|x| x.failed_by_sqlstate.get("25006"))
        .sum();
    let retries = if t.retries > 0 {
        format!(
            "; {} retries of serialization failures and deadlocks",
            t.retries
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        md,
        "- {} transactions committed ({} tx/s); {} failed; {} ended unknown (the connection broke during COMMIT){retries}.",
        t.ok, num(Some(t.tps), 1), t.failed, t.unknown
    );
    if read_only > 0 {
        let _ = writeln!(
            md,
            "- {read_only} writes sent to a standby were refused as read-only (SQLSTATE 25006)."
        );
    }
    let w = &s.wal;
    if w.bytes.is_some() {
        let fpi = w
            .fpi_share
            .map(|f| {
                format!(
                    ", {:.1}% of WAL records carried a full-page image",
                    f * 100.0
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "- The primary wrote {} of WAL, {}/s on average, {} per committed transaction{fpi}.",
            bytes_text(w.bytes.map(|b| b as f64)),
            bytes_text(w.bytes_per_s),
            bytes_text(w.bytes_per_tx),
        );
        if let Some(note) = missing_wal_stats(&s.server.version, w.records) {
            let _ = writeln!(md, "- {note}");
        }
    }
    if let Some(f) = &s.drills.failover {
        let by = f.decided_by.as_deref().unwrap_or("nobody");
        let line = match (&f.promoted, f.rto_s) {
            (Some(p), Some(rto)) => format!(
                "- {} was killed at {:.1} s; {p} took over ({by} decided) and writes were back {rto:.1} s after the kill; {} acknowledged writes were lost.",
                f.killed,
                f.killed_at_s,
                f.keys.lost.map(|l| l.to_string()).unwrap_or_else(|| "an unknown number of".into())
            ),
            (Some(p), None) => format!(
                "- {} was killed at {:.1} s; {p} was promoted ({by}) but no write committed on it before the run ended.",
                f.killed, f.killed_at_s
            ),
            (None, _) => format!(
                "- {} was killed at {:.1} s and **no node was promoted** ({by}){}: writes had no primary until the end of the run.",
                f.killed,
                f.killed_at_s,
                f.waited_s.map(|w| format!(" in the {w:.0} s the run waited")).unwrap_or_default()
            ),
        };
        let _ = writeln!(md, "{line}");
    }
    for (name, st) in &s.standbys {
        let down = if st.down_samples > 0 {
            format!(
                "; it did not answer as a standby in {} of {} samples",
                st.down_samples, st.samples
            )
        } else {
            String::new()
        };
        let hb = match st.heartbeat_lag_ms.as_ref().and_then(|q| q.p99) {
            Some(p99) => format!("the heartbeat's p99: {p99:.1} ms; "),
            None => String::new(),
        };
        let _ = writeln!(
            md,
            "- {name} was behind by {} at the median and {} at p99 (at most {}), {} ms at p99 in time by the LSN timeline \
             ({hb}PostgreSQL's replay_lag p99: {} ms){down}.",
            bytes_text(st.lag_bytes.p50),
            bytes_text(st.lag_bytes.p99),
            bytes_text(st.lag_bytes.max),
            ms_from_s(st.lag_seconds.p99),
            ms_from_s(st.pg_replay_lag_s.p99),
        );
        let tps: f64 = s.transactions.values().map(|t| t.tps).sum();
        if let Some(why) = lag_methods_disagree(tps, st) {
            let _ = writeln!(md, "  {why}");
        }
    }
}

/// What a server older than 14 cannot give (DESIGN section 17): it has no pg_stat_wal.
fn missing_wal_stats(version: &str, records: Option<i64>) -> Option<String> {
    let major: u32 = version
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    (records.is_none() && major < 14).then(|| {
        format!(
            "PostgreSQL {version} has no pg_stat_wal (it came in 14): WAL records and full-page \
             images were not measured, so the FPI share is missing; WAL bytes and rates come \
             from WAL positions and are measured."
        )
    })
}

/// "PostgreSQL 15.18" when every node runs the same; each node's otherwise.
fn server_versions(server: &crate::pg::ServerInfo) -> String {
    let mut distinct: Vec<&String> = server.nodes.values().collect();
    distinct.sort();
    distinct.dedup();
    match distinct.as_slice() {
        [] if server.version.is_empty() => "PostgreSQL ?".to_string(),
        [] => format!("PostgreSQL {}", server.version),
        [one] => format!("PostgreSQL {one}"),
        _ => server
            .nodes
            .iter()
            .map(|(n, v)| format!("{n} PostgreSQL {v}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// When the LSN timeline's median and the heartbeat's differ by more than max(2 ms, 10%), what
/// each one measures (docs/results.md, "Which lag to read"): with writes sparser than the lag,
/// the standby has everything the primary wrote for part of each gap and the LSN timeline reads
/// 0 there, while the heartbeat still times one write's trip.
fn lag_methods_disagree(tps: f64, st: &StandbySummary) -> Option<String> {
    let lsn = st.lag_seconds.p50? * 1000.0;
    let hb = st.heartbeat_lag_ms.as_ref()?.p50?;
    if (lsn - hb).abs() <= (0.1 * hb).max(2.0) {
        return None;
    }
    let gap = if tps > 0.0 {
        format!(
            " (the load committed {tps:.0} tx/s, one every {:.1} ms)",
            1000.0 / tps
        )
    } else {
        String::new()
    };
    Some(format!(
        "Its two lags disagree at the median: {lsn:.1} ms by the LSN timeline, {hb:.1} ms by the heartbeat. \
         The LSN timeline is the age of the newest data the standby has, 0 whenever it has everything the primary wrote; \
         the heartbeat is how long one write takes to show. They agree when writes come more often than the lag{gap}: \
         read the heartbeat for the delay, the LSN timeline for how stale reads on the standby are."
    ))
}

fn tables(md: &mut String, s: &RunSummary) {
    md.push_str("\n## Transactions\n\n| transaction | ok | failed | unknown | retries | tx/s | mean ms | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (name, x) in &s.transactions {
        let l = &x.latency_ms;
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            x.ok,
            x.failed,
            x.unknown,
            x.retries,
            num(Some(x.tps), 1),
            num(l.mean, 2),
            num(l.p50, 2),
            num(l.p90, 2),
            num(l.p99, 2),
            num(l.p999, 2),
            num(l.max, 2)
        );
    }
    if !s.standbys.is_empty() {
        md.push_str("\n## Replication\n\n| standby | lag bytes p50 | p99 | max | lag ms p50 | p99 | max | heartbeat ms p50 | p99 | max | PostgreSQL replay_lag ms p50 | p99 | max | slot retained max | wal_status |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    }
    for (name, st) in &s.standbys {
        let hb = st.heartbeat_lag_ms.as_ref();
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            bytes_text(st.lag_bytes.p50),
            bytes_text(st.lag_bytes.p99),
            bytes_text(st.lag_bytes.max),
            ms_from_s(st.lag_seconds.p50),
            ms_from_s(st.lag_seconds.p99),
            ms_from_s(st.lag_seconds.max),
            num(hb.and_then(|q| q.p50), 1),
            num(hb.and_then(|q| q.p99), 1),
            num(hb.and_then(|q| q.max), 1),
            ms_from_s(st.pg_replay_lag_s.p50),
            ms_from_s(st.pg_replay_lag_s.p99),
            ms_from_s(st.pg_replay_lag_s.max),
            bytes_text(st.slot_retained_bytes_max.map(|b| b as f64)),
            st.wal_status.as_deref().unwrap_or("-"),
        );
    }
    md.push_str("\n## Load groups\n\n| group | clients | intended rate | schedule lag p99 ms | backlog | read_your_writes | max_tries |\n|---|---:|---:|---:|---:|---|---:|\n");
    for (name, g) in &s.groups {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            g.clients,
            g.rate_intended
                .map(|r| format!("{r} tx/s"))
                .unwrap_or_else(|| "closed".into()),
            num(g.schedule_lag_ms.as_ref().and_then(|l| l.p99), 2),
            g.backlog
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
            g.read_your_writes,
            g.max_tries,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::values::Quantiles;

    fn standby(lsn_s: f64, heartbeat_ms: f64) -> StandbySummary {
        let q = |v| Quantiles {
            p50: Some(v),
            p99: Some(v),
            max: Some(v),
        };
        StandbySummary {
            lag_seconds: q(lsn_s),
            heartbeat_lag_ms: Some(q(heartbeat_ms)),
            ..Default::default()
        }
    }

    #[test]
    fn a_server_before_14_is_said_to_lack_pg_stat_wal() {
        let note = missing_wal_stats("13.16 (Debian 13.16-1)", None).unwrap();
        assert!(
            note.contains("PostgreSQL 13.16") && note.contains("no pg_stat_wal"),
            "{note}"
        );
        assert!(missing_wal_stats("14.23", None).is_none());
        assert!(missing_wal_stats("18.6", Some(5)).is_none());
        assert!(missing_wal_stats("", None).is_none());
    }

    #[test]
    fn the_report_explains_lags_that_disagree_and_only_those() {
        // Sparse writes: the standby had everything most of the time.
        let why = lag_methods_disagree(50.0, &standby(0.0, 5.5)).unwrap();
        assert!(
            why.contains("0.0 ms by the LSN timeline, 5.5 ms by the heartbeat"),
            "{why}"
        );
        assert!(why.contains("one every 20.0 ms"), "{why}");
        // Within max(2 ms, 10%): nothing to explain.
        assert!(lag_methods_disagree(1000.0, &standby(0.0203, 20.1)).is_none());
        assert!(lag_methods_disagree(1000.0, &standby(0.0015, 0.4)).is_none());
        // No heartbeat: nothing to compare.
        let mut sb = standby(0.0, 5.0);
        sb.heartbeat_lag_ms = None;
        assert!(lag_methods_disagree(50.0, &sb).is_none());
    }
}
