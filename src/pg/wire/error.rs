//! What can go wrong on a wire connection, in the three kinds that decide a transaction's
//! outcome: the server said no (with its SQLSTATE), the connection broke, or the client refused
//! before anything was sent.

use std::fmt;

/// An error of a wire connection. Its text never holds the password.
#[derive(Debug, Clone)]
pub enum WireError {
    /// An ErrorResponse: the server refused (the session goes on unless it was FATAL).
    Db(DbError),
    /// The connection broke: an I/O error, end of stream, or a reply that made no sense.
    Lost(String),
    /// Refused before sending: a value that cannot be encoded as its parameter's type, a wrong
    /// parameter count.
    Client(String),
}

/// The fields of an ErrorResponse that a report shows.
#[derive(Debug, Clone, Default)]
pub struct DbError {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl DbError {
    /// FATAL and PANIC end the session.
    pub fn ends_session(&self) -> bool {
        matches!(self.severity.as_str(), "FATAL" | "PANIC")
    }
}

impl WireError {
    /// The server's SQLSTATE, if the server answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            WireError::Db(db) => Some(&db.code),
            _ => None,
        }
    }

    pub(crate) fn lost(e: impl fmt::Display) -> Self {
        WireError::Lost(e.to_string())
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Db(db) => {
                write!(f, "{} ({})", db.message, db.code)?;
                if let Some(d) = &db.detail {
                    write!(f, "; {d}")?;
                }
                if let Some(h) = &db.hint {
                    write!(f, "; hint: {h}")?;
                }
                Ok(())
            }
            WireError::Lost(why) => write!(f, "connection lost: {why}"),
            WireError::Client(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for WireError {}

impl From<std::io::Error> for WireError {
    fn from(e: std::io::Error) -> Self {
        WireError::lost(e)
    }
}
