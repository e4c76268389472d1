//! `[expect]`: assertions on summary.json paths, judged after the run.

use crate::record::summary::{RunSummary, Verdict};
use crate::workload::Expectation;

/// Judge every expectation against the summary; the verdicts, in the file's order.
pub fn evaluate(expect: &[Expectation], summary: &RunSummary) -> Vec<Verdict> {
    let doc = serde_json::to_value(summary).unwrap_or_default();
    expect
        .iter()
        .map(|e| {
            let actual = crate::record::summary::lookup(&doc, &e.path)
                .and_then(crate::record::summary::number);
            Verdict {
                path: e.path.clone(),
                condition: e.text.clone(),
                actual,
                passed: actual.is_some_and(|a| e.holds(a)),
            }
        })
        .collect()
}

/// The failed verdicts, one line each, for the error message.
pub fn failures(verdicts: &[Verdict]) -> Vec<String> {
    verdicts
        .iter()
        .filter(|v| !v.passed)
        .map(|v| {
            let got = v
                .actual
                .map(|a| a.to_string())
                .unwrap_or_else(|| "no such number in summary.json".into());
            format!("{} {} (got {got})", v.path, v.condition)
        })
        .collect()
}
