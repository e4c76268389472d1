//! Reading a result directory back: everything `report` and `compare` draw comes from here.

use crate::error::usage;
use crate::record::summary::RunSummary;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A numeric column of a CSV file, empty cells as None.
pub type Column = Vec<Option<f64>>;

/// One saved run.
pub struct ResultData {
    pub dir: PathBuf,
    pub summary: RunSummary,
    /// intervals.csv: `t_s` and every other column by name.
    pub t_s: Vec<f64>,
    pub intervals: BTreeMap<String, Column>,
    /// lag.csv, per node: t_s and the numeric columns by name.
    pub lag: BTreeMap<String, NodeLag>,
    /// events.csv: (t_s, kind, node, detail).
    pub events: Vec<(f64, String, String, String)>,
}

#[derive(Default)]
pub struct NodeLag {
    pub t_s: Vec<f64>,
    pub columns: BTreeMap<String, Column>,
}

impl ResultData {
    /// The transaction names, in the order of summary.json.
    pub fn tx_names(&self) -> Vec<String> {
        self.summary.tx_names()
    }

    pub fn label(&self) -> String {
        match &self.summary.variant {
            Some(v) => v.clone(),
            None => self
                .dir
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.intervals.get(name)
    }

    /// A per-second column against time for charts: the short last interval (under half a
    /// second, whose rates and percentiles are noise) is left out.
    pub fn interval_points(&self, name: &str, scale: f64) -> Vec<(f64, f64)> {
        let Some(col) = self.column(name) else {
            return vec![];
        };
        let length = self.column("interval_s");
        let nominal = self.nominal_interval();
        self.t_s
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                length
                    .and_then(|l| l[*i])
                    .is_none_or(|l| l >= 0.5 * nominal)
            })
            .filter_map(|(i, t)| col[i].map(|v| (*t, v * scale)))
            .collect()
    }

    /// The run's interval (`[run] interval`): the median length of its intervals.
    pub fn nominal_interval(&self) -> f64 {
        let mut l: Vec<f64> = self
            .column("interval_s")
            .map(|c| c.iter().flatten().copied().collect())
            .unwrap_or_default();
        if l.is_empty() {
            return 1.0;
        }
        l.sort_by(f64::total_cmp);
        l[l.len() / 2]
    }

    /// A per-interval rate drawn as steps: each interval's value held from its start to its
    /// end, so an interval without commits is a flat 0 for as long as it lasted (no line
    /// drawn across it). `per_s`: the column is a count, divided by the interval's length.
    pub fn step_points(&self, name: &str, scale: f64, per_s: bool) -> Vec<(f64, f64)> {
        let (Some(col), Some(length)) = (self.column(name), self.column("interval_s")) else {
            return vec![];
        };
        let mut out = Vec::with_capacity(col.len() * 2);
        for (i, t) in self.t_s.iter().enumerate() {
            let (Some(v), Some(len)) = (col[i], length[i]) else {
                continue;
            };
            let v = if per_s { v / len.max(1e-3) } else { v } * scale;
            out.push((t - len, v));
            out.push((*t, v));
        }
        out
    }
}

fn parse(cell: &str) -> Option<f64> {
    if cell.is_empty() {
        None
    } else {
        cell.parse().ok()
    }
}

/// Read summary.json, intervals.csv, lag.csv and events.csv of `dir`.
pub fn load_result(dir: &Path) -> Result<ResultData> {
    let summary_path = dir.join("summary.json");
    if !summary_path.is_file() {
        return Err(usage(format!(
            "{} is not a result directory (no summary.json)",
            dir.display()
        )));
    }
    let text = std::fs::read_to_string(&summary_path)?;
    let summary: RunSummary = serde_json::from_str(&text).map_err(|e| {
        usage(format!(
            "{} is not a summary this version of pgbench-repl reads: {e}",
            summary_path.display()
        ))
    })?;
    let mut data = ResultData {
        dir: dir.to_path_buf(),
        summary,
        t_s: vec![],
        intervals: BTreeMap::new(),
        lag: BTreeMap::new(),
        events: vec![],
    };
    if let Ok(mut r) = csv::Reader::from_path(dir.join("intervals.csv")) {
        let headers = r.headers()?.clone();
        for rec in r.records() {
            let rec = rec?;
            data.t_s.push(parse(&rec[0]).unwrap_or(0.0));
            for (h, cell) in headers.iter().zip(rec.iter()).skip(1) {
                data.intervals
                    .entry(h.to_string())
                    .or_default()
                    .push(parse(cell));
            }
        }
    }
    if let Ok(mut r) = csv::Reader::from_path(dir.join("lag.csv")) {
        let headers = r.headers()?.clone();
        for rec in r.records() {
            let rec = rec?;
            let node = data.lag.entry(rec[1].to_string()).or_default();
            node.t_s.push(parse(&rec[0]).unwrap_or(0.0));
            for (h, cell) in headers.iter().zip(rec.iter()).skip(2) {
                node.columns
                    .entry(h.to_string())
                    .or_default()
                    .push(parse(cell));
            }
        }
    }
    if let Ok(mut r) = csv::Reader::from_path(dir.join("events.csv")) {
        for rec in r.records() {
            let rec = rec?;
            data.events.push((
                parse(&rec[0]).unwrap_or(0.0),
                rec[1].to_string(),
                rec[2].to_string(),
                rec[3].to_string(),
            ));
        }
    }
    // Events are written when they end; show them in the order they began.
    data.events.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(data)
}
