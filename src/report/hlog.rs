//! HdrHistogram interval logs: `latency.hlog` (one histogram per transaction and second) and
//! `totals.hlog` (the measured part of the run, one histogram per transaction and per
//! open-model group's schedule lag), written and read back (by `merge`).

use anyhow::{anyhow, Context, Result};
use base64::Engine;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A name as an hlog tag: tags may not contain commas, spaces, line breaks (nor, for other
/// readers, '=').
pub fn hlog_tag(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The tag of a group's schedule lag in totals.hlog.
pub fn schedule_lag_tag(group: &str) -> String {
    hlog_tag(&format!("schedule_lag.{group}"))
}

/// An interval log being written: V2 deflate histograms, values in microseconds, timestamps in
/// seconds since the StartTime/BaseTime header (the run's start).
pub struct HlogWriter {
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
    tags: Vec<String>,
}

impl HlogWriter {
    /// Create the log, one tag per name (in that order for `write`).
    pub fn create(path: &Path, names: &[String], start: SystemTime, comment: &str) -> Result<Self> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = BufWriter::new(file);
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment(comment)
            .with_start_time(start)
            .with_base_time(start)
            .begin_log_with(&mut out, &mut serializer)?;
        writeln!(out, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"")?;
        out.flush()?;
        Ok(HlogWriter {
            out,
            serializer,
            tags: names.iter().map(|n| hlog_tag(n)).collect(),
        })
    }

    /// Write one histogram under name `index` (skipped when empty).
    pub fn write(
        &mut self,
        index: usize,
        start_s: f64,
        length_s: f64,
        h: &Histogram<u64>,
    ) -> Result<()> {
        if h.is_empty() {
            return Ok(());
        }
        let mut w =
            IntervalLogWriterBuilder::new().begin_log_with(&mut self.out, &mut self.serializer)?;
        let tag = Tag::new(&self.tags[index]);
        w.write_histogram(
            h,
            Duration::from_secs_f64(start_s.max(0.0)),
            Duration::from_secs_f64(length_s.max(0.0)),
            tag,
        )
        .map_err(|e| anyhow!("cannot write an interval log: {e}"))?;
        self.out.flush()?;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        Ok(self.out.flush()?)
    }
}

/// One histogram of an interval log.
pub struct HlogEntry {
    pub tag: String,
    /// Seconds since the log's BaseTime.
    pub start_s: f64,
    pub length_s: f64,
    pub histogram: Histogram<u64>,
}

/// A whole interval log: its StartTime (seconds since the epoch) and its histograms.
pub struct Hlog {
    pub start_unix_s: Option<f64>,
    pub entries: Vec<HlogEntry>,
}

/// Read an interval log; an error names the file and what is wrong with it.
pub fn read_hlog(path: &Path) -> Result<Hlog> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut log = Hlog {
        start_unix_s: None,
        entries: Vec::new(),
    };
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry =
            entry.map_err(|e| anyhow!("{} is not an interval log: {e:?}", path.display()))?;
        match entry {
            LogEntry::StartTime(t) => log.start_unix_s = Some(t.as_secs_f64()),
            LogEntry::BaseTime(_) => {}
            LogEntry::Interval(h) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(h.encoded_histogram())
                    .map_err(|e| anyhow!("{}: a histogram is not base64: {e}", path.display()))?;
                let histogram: Histogram<u64> =
                    deserializer.deserialize(&mut raw.as_slice()).map_err(|e| {
                        anyhow!("{}: a histogram cannot be read: {e:?}", path.display())
                    })?;
                log.entries.push(HlogEntry {
                    tag: h.tag().map(|t| t.as_str().to_string()).unwrap_or_default(),
                    start_s: h.start_timestamp().as_secs_f64(),
                    length_s: h.duration().as_secs_f64(),
                    histogram,
                });
            }
        }
    }
    Ok(log)
}

/// Seconds since the epoch, for the logs' headers.
pub fn system_time(unix_s: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(unix_s.max(0.0))
}
