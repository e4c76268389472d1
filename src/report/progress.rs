//! The progress display on stderr: a live line on a terminal, a plain line every 5 seconds
//! otherwise, nothing with --quiet.

use crate::record::ProgressLine;
use std::io::{IsTerminal, Write};
use std::time::Duration;

pub struct Progress {
    quiet: bool,
    tty: bool,
    total: Option<Duration>,
    /// When the last plain line was printed (off a terminal: one every 5 s).
    printed: Option<Duration>,
}

fn human_bytes(b: u64) -> String {
    match b {
        0..=9_999 => format!("{b}B"),
        10_000..=9_999_999 => format!("{:.0}kB", b as f64 / 1e3),
        _ => format!("{:.1}MB", b as f64 / 1e6),
    }
}

impl Progress {
    pub fn new(quiet: bool, total: Option<Duration>) -> Self {
        Progress {
            quiet,
            tty: std::io::stderr().is_terminal(),
            total,
            printed: None,
        }
    }

    pub fn update(&mut self, line: &ProgressLine) {
        if self.quiet {
            return;
        }
        if !self.tty {
            // Whatever the interval: a line every 5 s of the run.
            let due = self.printed.is_none_or(|p| {
                line.elapsed + Duration::from_millis(1) >= p + Duration::from_secs(5)
            });
            if !due || line.elapsed + Duration::from_millis(1) < Duration::from_secs(5) {
                return;
            }
            self.printed = Some(line.elapsed);
        }
        let time = match self.total {
            Some(t) => format!(
                "{:>5.0}s/{:.0}s",
                line.elapsed.as_secs_f64(),
                t.as_secs_f64()
            ),
            None => format!("{:>5.0}s", line.elapsed.as_secs_f64()),
        };
        let p99 = line
            .p99_ms
            .map(|p| format!("{p:.2}ms"))
            .unwrap_or_else(|| "-".into());
        let phase = if line.warmup { " (warmup)" } else { "" };
        let lag: String = line
            .lag
            .iter()
            .map(|(n, l)| match l {
                Some((b, s)) => format!("  {n} {} {:.0}ms", human_bytes(*b), s * 1e3),
                None => format!("  {n} down"),
            })
            .collect();
        let text = format!(
            "{time}  {:>9.1} ok/s  p99 {p99:>9}  errors {}{lag}{phase}",
            line.tps, line.errors
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{text}");
        } else {
            let _ = writeln!(err, "progress: {text}");
        }
        let _ = err.flush();
    }

    /// An info line between progress updates (it clears the live line first).
    pub fn note(&self, line: &str) {
        let clear = if self.tty && !self.quiet {
            "\r\x1b[2K"
        } else {
            ""
        };
        crate::errln!("{clear}{line}");
    }

    pub fn finish(&mut self) {
        if self.tty && !self.quiet {
            crate::errln!();
        }
    }
}
