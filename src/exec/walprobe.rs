//! The primary's insert LSN, read every `sample_every`, for the WAL rate. (The full
//! replication sampler of DESIGN section 6 builds on this.)

use super::conn::Endpoint;
use super::messages::Record;
use super::txn::parse_lsn;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

/// Send the primary's insert LSN until the run stops; a failed read is skipped, never fatal.
pub async fn run_wal_probe(
    primary: Endpoint,
    every: Duration,
    records: mpsc::Sender<Record>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        if conn
            .as_ref()
            .is_none_or(|c: &super::conn::Conn| c.is_closed())
        {
            conn = primary.connect(None).await.ok();
        }
        let Some(c) = conn.as_ref() else { continue };
        let Ok(msgs) = c
            .client
            .simple_query("SELECT pg_current_wal_insert_lsn()::text")
            .await
        else {
            continue;
        };
        let lsn = msgs.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(parse_lsn),
            _ => None,
        });
        if let Some(lsn) = lsn {
            let _ = records
                .send(Record::Wal {
                    at: Instant::now(),
                    lsn,
                })
                .await;
        }
    }
}
