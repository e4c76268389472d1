//! intervals.csv, events.csv and lag.csv, written a line at a time as the run goes.

use crate::messages::StandbySample;
use crate::pg::format_lsn;
use crate::record::IntervalRow;
use anyhow::{Context, Result};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// `intervals.csv`: `t_s`, then `<tx>.tps` (ok per second), `<tx>.ok`, `<tx>.failed`,
/// `<tx>.p50_ms`, `<tx>.p99_ms`, `<tx>.unknown`, `<tx>.retries` for each transaction, then
/// `wal_bytes_per_s` and `interval_s` (1 but for the last, shorter interval).
pub struct IntervalsWriter {
    out: csv::Writer<File>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_default()
}

impl IntervalsWriter {
    pub fn create(path: &Path, tx_names: &[String]) -> Result<Self> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = csv::Writer::from_writer(file);
        let mut header = vec!["t_s".to_string()];
        for n in tx_names {
            for col in [
                "tps", "ok", "failed", "p50_ms", "p99_ms", "unknown", "retries",
            ] {
                header.push(format!("{n}.{col}"));
            }
        }
        header.push("wal_bytes_per_s".into());
        header.push("interval_s".into());
        out.write_record(&header)?;
        out.flush()?;
        Ok(IntervalsWriter { out })
    }

    pub fn write(&mut self, row: &IntervalRow) -> Result<()> {
        let mut rec = vec![format!("{:.3}", row.t_s)];
        for t in &row.txs {
            rec.push(format!("{:.1}", t.tps));
            rec.push(t.ok.to_string());
            rec.push(t.failed.to_string());
            rec.push(opt(t.p50_ms, 3));
            rec.push(opt(t.p99_ms, 3));
            rec.push(t.unknown.to_string());
            rec.push(t.retries.to_string());
        }
        rec.push(opt(row.wal_bytes_per_s, 0));
        rec.push(format!("{:.3}", row.interval_s));
        self.out.write_record(&rec)?;
        self.out.flush()?;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        Ok(self.out.flush()?)
    }
}

/// `events.csv`: `t_s, kind, node, detail`.
pub struct EventsWriter {
    out: csv::Writer<File>,
}

impl EventsWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = csv::Writer::from_writer(file);
        out.write_record(["t_s", "kind", "node", "detail"])?;
        out.flush()?;
        Ok(EventsWriter { out })
    }

    pub fn write(&mut self, t_s: f64, kind: &str, node: &str, detail: &str) -> Result<()> {
        self.out
            .write_record([&format!("{t_s:.3}"), kind, node, detail])?;
        self.out.flush()?;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        Ok(self.out.flush()?)
    }
}

/// `lag.csv`: one row per sample and standby. The columns of DESIGN section 8 first
/// (`t_s, node, state, sync_state, receive_lsn, replay_lsn, lag_bytes, lag_s, pg_replay_lag_s,
/// slot_retained_bytes`), then `up, receive_lag_bytes, pg_write_lag_s, pg_flush_lag_s,
/// wal_status, safe_wal_size, in_recovery, heartbeat_lag_s`. Empty cells are NULLs
/// (PostgreSQL's) or unknowns (a node down, no heartbeat).
pub struct LagWriter {
    out: csv::Writer<BufWriter<File>>,
}

pub const LAG_COLUMNS: [&str; 18] = [
    "t_s",
    "node",
    "state",
    "sync_state",
    "receive_lsn",
    "replay_lsn",
    "lag_bytes",
    "lag_s",
    "pg_replay_lag_s",
    "slot_retained_bytes",
    "up",
    "receive_lag_bytes",
    "pg_write_lag_s",
    "pg_flush_lag_s",
    "wal_status",
    "safe_wal_size",
    "in_recovery",
    "heartbeat_lag_s",
];

fn lsn_text(v: Option<u64>) -> String {
    v.map(format_lsn).unwrap_or_default()
}

fn num<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

impl LagWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = csv::Writer::from_writer(BufWriter::new(file));
        out.write_record(LAG_COLUMNS)?;
        out.flush()?;
        Ok(LagWriter { out })
    }

    pub fn write(&mut self, t_s: f64, s: &StandbySample) -> Result<()> {
        self.out.write_record([
            format!("{t_s:.3}"),
            s.node.clone(),
            s.state.clone().unwrap_or_default(),
            s.sync_state.clone().unwrap_or_default(),
            lsn_text(s.receive_lsn),
            lsn_text(s.replay_lsn),
            num(s.lag_bytes),
            opt(s.lag_s, 6),
            opt(s.pg_replay_lag_s, 6),
            num(s.slot_retained_bytes),
            if s.up { "1".into() } else { "0".into() },
            num(s.receive_lag_bytes),
            opt(s.pg_write_lag_s, 6),
            opt(s.pg_flush_lag_s, 6),
            s.wal_status.clone().unwrap_or_default(),
            num(s.safe_wal_size),
            s.in_recovery
                .map(|r| u8::from(r).to_string())
                .unwrap_or_default(),
            opt(s.heartbeat_lag_s, 6),
        ])?;
        Ok(())
    }

    /// Flushed once a second by the recorder (with intervals.csv), and at the end.
    pub fn flush(&mut self) -> Result<()> {
        Ok(self.out.flush()?)
    }
}
