//! Error kinds that decide the exit code (DESIGN section 1).

use std::fmt;

/// Bad input: usage, a workload file, a connection string, a lab that does not exist.
/// `main` maps it to exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Build an `anyhow::Error` that exits with code 2.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// The run finished, but a check failed (an `[expect]` assertion, `cluster verify` found
/// nodes that differ): exit code 3.
#[derive(Debug)]
pub struct CheckFailed(pub String);

impl fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckFailed {}

/// The run was stopped by SIGINT or SIGTERM; its results were kept: exit code 128 + the
/// signal (130, 143), as a shell reports a command the signal ended.
#[derive(Debug)]
pub struct Interrupted {
    pub signal: i32,
    pub message: String,
}

impl Interrupted {
    pub fn before_start(signal: i32) -> Interrupted {
        Interrupted {
            signal,
            message: format!(
                "interrupted by {} before the load started: nothing was measured",
                signal_name(signal)
            ),
        }
    }

    pub fn after_run(signal: i32, dir: &std::path::Path) -> Interrupted {
        Interrupted {
            signal,
            message: format!(
                "interrupted by {}: what was measured is in {}",
                signal_name(signal),
                dir.display()
            ),
        }
    }
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Interrupted {}

/// SIGINT or SIGTERM, for messages.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        15 => "SIGTERM",
        2 => "SIGINT",
        _ => "a signal",
    }
}

/// The exit code for an error that reached `main`.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    let is = |f: fn(&(dyn std::error::Error + 'static)) -> bool| err.chain().any(f);
    if let Some(i) = err.chain().find_map(|e| e.downcast_ref::<Interrupted>()) {
        128 + i.signal
    } else if is(|e| e.is::<UsageError>()) {
        2
    } else if is(|e| e.is::<CheckFailed>()) {
        3
    } else {
        1
    }
}
