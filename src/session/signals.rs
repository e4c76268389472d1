//! SIGINT and SIGTERM end a run the same way: stop the load, finish every file, restore the
//! lab, exit 130 or 143 (128 + the signal, as a shell reports it).

use tokio::signal::unix::{signal, SignalKind};

/// SIGINT (Ctrl-C).
pub const SIGINT: i32 = 2;
/// SIGTERM (kill, systemd, Kubernetes).
pub const SIGTERM: i32 = 15;

/// Listeners for both signals, installed once at the start of a run, so a signal that comes
/// while the run sets up is not lost.
pub struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub fn install() -> Signals {
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    /// The next SIGINT or SIGTERM: its number.
    pub async fn next(&mut self) -> i32 {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.int) => SIGINT,
            _ = recv(&mut self.term) => SIGTERM,
        }
    }
}
