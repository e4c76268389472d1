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

/// The run finished, but an `[expect]` assertion failed: exit code 3.
#[derive(Debug)]
pub struct ExpectFailed(pub String);

impl fmt::Display for ExpectFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExpectFailed {}

/// The run was stopped by Ctrl-C (SIGINT); its results were kept: exit code 130, as a shell
/// reports a command ended by SIGINT.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// The exit code for an error that reached `main`.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    let is = |f: fn(&(dyn std::error::Error + 'static)) -> bool| err.chain().any(f);
    if is(|e| e.is::<UsageError>()) {
        2
    } else if is(|e| e.is::<ExpectFailed>()) {
        3
    } else if is(|e| e.is::<Interrupted>()) {
        130
    } else {
        1
    }
}
