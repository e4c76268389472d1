//! report.md's drill sections: interruptions with the catch-up prediction beside the
//! measurement, the failover's RTO and RPO, the runbook timeline, split brain, verify.

use super::format::bytes_text;
use crate::record::summary::RunSummary;
use std::fmt::Write as _;

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.2} s")).unwrap_or_else(|| "-".into())
}

/// The drill sections (empty when the run had no drill).
pub fn drills_markdown(s: &RunSummary) -> String {
    let mut md = String::new();
    let d = &s.drills;
    if !d.interruption.is_empty() {
        md.push_str("\n## Network interruptions\n\n| standby | what | outage | WAL accumulated | peak slot retention | peak pg_wal | wal_status | catch-up measured | to the head: predicted | measured | catch-up rate |\n|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|\n");
        for (node, i) in &d.interruption {
            let _ = writeln!(
                md,
                "| {node} | {} at {:.1} s | {:.2} s{} | {} | {} | {} | {} | {} | {} | {} | {} |",
                i.action,
                i.started_s,
                i.outage_s,
                if i.ended_s.is_none() {
                    " (not over)"
                } else {
                    ""
                },
                bytes_text(i.wal_accumulated_bytes.map(|b| b as f64)),
                bytes_text(i.peak_slot_retained_bytes.map(|b| b as f64)),
                bytes_text(i.peak_pg_wal_bytes.map(|b| b as f64)),
                i.wal_status_seen.join(" → "),
                secs(i.catch_up_s),
                secs(i.predicted_catch_up_s),
                secs(i.caught_up_with_head_s),
                i.catch_up_mb_per_s
                    .map(|r| format!("{r:.2} MB/s"))
                    .unwrap_or_else(|| "-".into()),
            );
        }
        md.push('\n');
        for (node, i) in &d.interruption {
            if i.slot_lost {
                let _ = writeln!(
                    md,
                    "- **{node}'s slot was lost**: the WAL it needs is gone (max_slot_wal_keep_size). It cannot catch up by streaming: rebuild it with `pgbench-repl cluster rebuild {node}` (a fresh base backup and a new slot).",
                );
            }
            if let (Some(r), Some(w), Some(a)) =
                (i.replay_mb_per_s, i.wal_mb_per_s, i.wal_accumulated_bytes)
            {
                let _ = writeln!(
                    md,
                    "- {node}: the primary wrote {} during the {:.1} s outage ({w:.2} MB/s); the standby replayed {r:.2} MB/s in the first half of its catch-up. It replayed the primary's position at the link's return in {} (measured). To reach the moving head the model gives {} / ({r:.2} - {w:.2}) MB/s = {}; measured {} (time lag under 1 s).",
                    bytes_text(Some(a as f64)),
                    i.outage_s,
                    secs(i.catch_up_s),
                    bytes_text(Some(a as f64)),
                    secs(i.predicted_catch_up_s),
                    secs(i.caught_up_with_head_s),
                );
            }
        }
    }
    if let Some(f) = &d.failover {
        md.push_str(&failover_md(f));
    }
    if let Some(sw) = &d.switchover {
        let _ = writeln!(
            md,
            "\n## Switchover\n\nAt {:.2} s the orchestrator was asked to switch over from {} to {}; it said it was done {:.2} s later. Writes stopped for at most **{}** (the longest time without a committed write until the first on {}); **{} acknowledged writes lost**.",
            sw.started_s,
            sw.from,
            sw.to,
            sw.took_s,
            secs(sw.write_gap_s),
            sw.to,
            lost_text(sw.lost)
        );
    }
    if !d.timeline.is_empty() {
        md.push_str("\n### Timeline\n\n| t (s) | step | node | took |\n|---:|---|---|---:|\n");
        for m in &d.timeline {
            let _ = writeln!(
                md,
                "| {:.2} | {} | {} | {} |",
                m.t_s,
                m.what,
                m.node,
                secs(m.duration_s)
            );
        }
    }
    if let Some(sb) = &d.split_brain {
        let _ = writeln!(
            md,
            "\n## SPLIT BRAIN\n\nAt {:.2} s, {} accepted writes at once. WAL written by each side after that: {}. Keep one side; rejoin (pg_rewind) or rebuild the other, and reconcile what it took.",
            sb.detected_at_s,
            sb.nodes.join(" and "),
            sb.wal_bytes_since
                .iter()
                .map(|(n, b)| format!("{n} {}", bytes_text(Some(*b as f64))))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(v) = &s.verify {
        md.push_str("\n## Consistency\n\n");
        if v.consistent {
            let _ = writeln!(
                md,
                "Every node ({}) holds the same data: {} tables, row counts and content hashes equal.",
                v.nodes.join(", "),
                v.tables.len()
            );
        } else {
            let _ = writeln!(md, "**The nodes differ**:\n");
            for line in v.differences.iter().chain(&v.behind).chain(&v.unreachable) {
                let _ = writeln!(md, "- {line}");
            }
        }
    }
    md
}

fn lost_text(lost: Option<u64>) -> String {
    lost.map(|l| l.to_string())
        .unwrap_or_else(|| "an unknown number of (no primary answered after the run)".into())
}

/// The failover in words: who decided, the RTO and its parts beside the orchestrator's
/// timeouts, the RPO; or why no promotion happened.
fn failover_md(f: &crate::record::drills::Failover) -> String {
    let mut md = String::from("\n## Failover\n\n");
    let by = match f.decided_by.as_deref() {
        Some("pgbench-repl") => " by the workload's promote event".to_string(),
        Some("observed") => {
            ", seen by the tool (the [cluster]'s own orchestrator decided)".to_string()
        }
        Some(o) => format!(", decided by {o}"),
        None => String::new(),
    };
    let Some(promoted) = &f.promoted else {
        let _ = writeln!(
            md,
            "{} was killed at {:.2} s. **No standby was promoted**{}{}. {}",
            f.killed,
            f.killed_at_s,
            f.waited_s
                .map(|w| format!(" in the {w:.1} s the run waited"))
                .unwrap_or_default(),
            by,
            f.no_promotion_reason.as_deref().unwrap_or("")
        );
        let _ = writeln!(
            md,
            "\nWrites had no primary from the kill to the end of the run: {} failed. {} acknowledged writes, {} ended unknown.",
            f.writes_failed_during_outage, f.keys.acknowledged, f.keys.unknown
        );
        return md;
    };
    let _ = writeln!(
        md,
        "{} was killed at {:.2} s; {promoted} promoted{}{by}. **RTO {}** (detection {}, promotion {}, reconnect {}). **RPO: {} acknowledged writes lost**{} of {} acknowledged; {} ended unknown (the connection broke during COMMIT), of which {} committed after all. While there was no primary, {} reads succeeded on the standbys and {} writes failed.",
        f.killed,
        f.killed_at_s,
        f.timeline.map(|t| format!(" (timeline {t})")).unwrap_or_default(),
        secs(f.rto_s),
        secs(f.detection_s),
        secs(f.promotion_s),
        secs(f.reconnect_s),
        lost_text(f.keys.lost),
        f.keys
            .lost_span_s
            .map(|s| format!(", covering {s:.2} s of writes"))
            .unwrap_or_default(),
        f.keys.acknowledged,
        f.keys.unknown,
        f.keys.unknown_committed,
        f.reads_during_outage,
        f.writes_failed_during_outage,
    );
    if let (Some(name), Some(limit)) = (&f.detection_setting, f.detection_setting_s) {
        let _ = writeln!(
            md,
            "\nDetection ({}, by the orchestrator's own record) against its `{name}` of {limit} s; the timeouts in force: {}.",
            secs(f.detection_s),
            f.settings
                .iter()
                .map(|(k, v)| format!("`{k}` {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    md
}
