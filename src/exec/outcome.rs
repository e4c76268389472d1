//! How a transaction ended, decided from where it failed and what kind of error it was:
//! `failed` (the server said no, or the client never sent it: it did not commit) or `unknown`
//! (the connection broke while it committed: it may have). Pure, so it is tested without a
//! server; `error_kind` is the thin glue to the load's connections.

use crate::messages::Outcome;
use crate::pg::wire::WireError;

/// What went wrong, in the terms that decide the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The server answered with this SQLSTATE.
    Db(String),
    /// The connection broke (closed, I/O error, a reply that made no sense).
    Lost,
    /// The client library refused before sending: a value it could not encode, a wrong
    /// parameter count. Nothing reached the server.
    Client,
}

/// Where in the transaction it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before COMMIT was sent: the transaction cannot have committed.
    Before,
    /// During COMMIT, or the one statement of an autocommit transaction.
    Commit,
}

/// The SQLSTATE recorded for a lost connection and for a client-side error.
pub const LOST_SQLSTATE: &str = "08006";
pub const CLIENT_ERROR: &str = "client";

/// The outcome and the code recorded for it.
pub fn classify(kind: &ErrorKind, phase: Phase) -> (Outcome, String) {
    match kind {
        ErrorKind::Client => (Outcome::Failed, CLIENT_ERROR.into()),
        ErrorKind::Db(code) if connection_gone(code) && phase == Phase::Commit => {
            (Outcome::Unknown, code.clone())
        }
        ErrorKind::Db(code) => (Outcome::Failed, code.clone()),
        ErrorKind::Lost if phase == Phase::Commit => (Outcome::Unknown, LOST_SQLSTATE.into()),
        ErrorKind::Lost => (Outcome::Failed, LOST_SQLSTATE.into()),
    }
}

/// Class 08 (connection exception) and 57P01-57P03 (the server is shutting down or crashed):
/// the session ends, and a commit in flight may have been made durable first.
fn connection_gone(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// A serialization failure or a deadlock: pgbench's `--max-tries` retries these.
pub fn retryable(code: &str) -> bool {
    matches!(code, "40001" | "40P01")
}

/// Read a load connection's error.
pub fn error_kind(e: &WireError) -> ErrorKind {
    match e {
        WireError::Db(db) => ErrorKind::Db(db.code.clone()),
        WireError::Lost(_) => ErrorKind::Lost,
        WireError::Client(_) => ErrorKind::Client,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(code: &str) -> ErrorKind {
        ErrorKind::Db(code.into())
    }

    #[test]
    fn the_server_saying_no_is_failed_with_its_code() {
        assert_eq!(
            classify(&db("23505"), Phase::Before),
            (Outcome::Failed, "23505".into())
        );
        assert_eq!(
            classify(&db("40001"), Phase::Commit),
            (Outcome::Failed, "40001".into())
        );
    }

    #[test]
    fn a_broken_connection_is_unknown_only_at_commit() {
        assert_eq!(
            classify(&ErrorKind::Lost, Phase::Commit).0,
            Outcome::Unknown
        );
        assert_eq!(
            classify(&ErrorKind::Lost, Phase::Before),
            (Outcome::Failed, "08006".into())
        );
        assert_eq!(classify(&db("57P01"), Phase::Commit).0, Outcome::Unknown);
        assert_eq!(classify(&db("08006"), Phase::Commit).0, Outcome::Unknown);
        assert_eq!(classify(&db("57P01"), Phase::Before).0, Outcome::Failed);
        assert_eq!(
            classify(&db("57014"), Phase::Commit).0,
            Outcome::Failed,
            "a cancel"
        );
    }

    #[test]
    fn a_client_side_error_is_never_unknown() {
        for phase in [Phase::Before, Phase::Commit] {
            assert_eq!(
                classify(&ErrorKind::Client, phase),
                (Outcome::Failed, "client".into())
            );
        }
    }

    #[test]
    fn only_serialization_failures_and_deadlocks_are_retried() {
        assert!(retryable("40001") && retryable("40P01"));
        assert!(!retryable("23505") && !retryable("08006") && !retryable("client"));
    }
}
