//! The few sentences report.md opens with (DESIGN section 8): what the run shows, each one a
//! reader can act on, worst news first: a split brain, a failover and what it lost, a standby
//! that fell behind and whether it came back, expectations that failed, else how close the
//! standbys stayed.

use crate::record::summary::RunSummary;

fn ms_or_s(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.1} s")
    } else {
        format!("{:.0} ms", seconds * 1000.0)
    }
}

/// The opening sentences, most important first.
pub fn headline(s: &RunSummary) -> Vec<String> {
    let mut out = Vec::new();
    let d = &s.drills;
    if let Some(sb) = &d.split_brain {
        out.push(format!(
            "**Split brain**: {} accepted writes at once from {:.1} s on; each holds writes the other lacks.",
            sb.nodes.join(" and "),
            sb.detected_at_s
        ));
    }
    if let Some(f) = &d.failover {
        let lost = match f.keys.lost {
            Some(0) => "no acknowledged write was lost".to_string(),
            Some(n) => format!("**{n} acknowledged writes were lost**"),
            None => "what it lost is unknown (no keys were tracked)".to_string(),
        };
        out.push(match (&f.promoted, f.rto_s) {
            (Some(p), Some(rto)) => format!(
                "{} was killed at {:.1} s and {p} took writes {} later; {lost}.",
                f.killed,
                f.killed_at_s,
                ms_or_s(rto)
            ),
            (Some(p), None) => format!(
                "{} was killed at {:.1} s; {p} was promoted but no write committed on it before the run ended.",
                f.killed, f.killed_at_s
            ),
            (None, _) => format!(
                "**{} was killed at {:.1} s and no node was promoted**{}: writes had no primary for the rest of the run.",
                f.killed,
                f.killed_at_s,
                f.no_promotion_reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        });
    }
    for (node, i) in &d.interruption {
        let behind = s
            .standbys
            .get(node)
            .and_then(|st| st.lag_seconds.max)
            .map(|m| format!(" and fell {} behind", ms_or_s(m)))
            .unwrap_or_default();
        let after = if i.slot_lost {
            format!(
                ": **its slot was lost**, it cannot catch up by streaming (`cluster rebuild {node}`)"
            )
        } else {
            match (i.ended_s, i.catch_up_s) {
                (None, _) => format!(
                    " and **never caught up: its {} was not undone before the run ended**",
                    i.action
                ),
                (Some(_), Some(c)) => format!("; it caught up {} after it ended", ms_or_s(c)),
                (Some(_), None) => " and **had not caught up when the run ended**".to_string(),
            }
        };
        out.push(format!(
            "{node}'s {} lasted {}{behind}{after}.",
            i.action.replace('_', " "),
            ms_or_s(i.outage_s)
        ));
    }
    let failed: Vec<&str> = s
        .expect
        .iter()
        .filter(|v| !v.passed)
        .map(|v| v.path.as_str())
        .collect();
    if !failed.is_empty() {
        out.push(format!(
            "**{} of {} expectations failed**: {}.",
            failed.len(),
            s.expect.len(),
            failed.join(", ")
        ));
    }
    if d.failover.is_none() && d.interruption.is_empty() {
        let worst = s
            .standbys
            .iter()
            .filter_map(|(n, st)| Some((n, st.lag_seconds.p99?, st.lag_seconds.max?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((n, p99, max)) = worst {
            out.push(format!(
                "Every standby stayed within {} of the primary at p99 ({n} the furthest, {} at most).",
                ms_or_s(p99),
                ms_or_s(max)
            ));
        }
        let t = &s.total;
        if t.failed + t.unknown > 0 {
            out.push(format!(
                "{} transactions failed and {} ended unknown with no drill to explain them: see Transactions and Events.",
                t.failed, t.unknown
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::drills::Interruption;

    fn summary() -> RunSummary {
        let text = include_str!("../../results/example/summary.json");
        serde_json::from_str(text).expect("the example's summary.json")
    }

    #[test]
    fn a_quiet_run_says_how_close_the_standbys_stayed() {
        let lines = headline(&summary());
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("Every standby stayed within")),
            "{lines:?}"
        );
    }

    #[test]
    fn a_standby_that_never_caught_up_says_why() {
        let mut s = summary();
        s.drills.interruption.insert(
            "standby2".into(),
            Interruption {
                action: "pause_link".into(),
                started_s: 4.0,
                ended_s: None,
                outage_s: 8.9,
                ..Default::default()
            },
        );
        let lines = headline(&s);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("standby2's pause link lasted 8.9 s")
                    && l.contains("never caught up: its pause_link was not undone")),
            "{lines:?}"
        );
    }
}
