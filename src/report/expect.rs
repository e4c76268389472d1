//! `[expect]`: assertions on summary.json, judged after the run.

use crate::workload::Expectation;
use serde_json::{json, Value};

/// Check `[expect]` against the summary; record each verdict in it; return the failures.
pub fn evaluate(expect: &[Expectation], doc: &mut Value) -> Vec<String> {
    let mut verdicts = Vec::new();
    let mut failures = Vec::new();
    for e in expect {
        let actual = super::summary::lookup(doc, &e.path).and_then(Value::as_f64);
        let passed = actual.is_some_and(|a| match e.op.as_str() {
            "<" => a < e.value,
            "<=" => a <= e.value,
            ">" => a > e.value,
            ">=" => a >= e.value,
            "==" => a == e.value,
            _ => a != e.value,
        });
        if !passed {
            let got = actual
                .map(|a| a.to_string())
                .unwrap_or_else(|| "no such number in summary.json".into());
            failures.push(format!("{} {} (got {got})", e.path, e.text));
        }
        verdicts
            .push(json!({"path": e.path, "condition": e.text, "actual": actual, "passed": passed}));
    }
    doc["expect"] = Value::from(verdicts);
    failures
}
