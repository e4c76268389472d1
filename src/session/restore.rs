//! What a run may change on the lab, captured before it and put back after it, by every path
//! out of the run (success, a failed [matrix] variant, an error, a signal).

use crate::cluster::{self, Lab, SyncMode};
use crate::link::protocol::Request;
use crate::link::LinkSettings;
use anyhow::Result;

/// The lab's sync mode and links as they were (in an orchestrated lab: which standbys'
/// WAL receivers were stopped).
#[derive(Debug, Clone)]
pub struct LabSnapshot {
    sync: SyncMode,
    links: Vec<(String, LinkSettings)>,
    stalled: Option<Vec<String>>,
}

impl LabSnapshot {
    pub async fn capture(lab: &Lab) -> Result<LabSnapshot> {
        let state = lab.state()?;
        if state.ha.is_some() {
            return Ok(LabSnapshot {
                sync: state.sync,
                links: Vec::new(),
                stalled: Some(cluster::ha::stall::stalled(lab)),
            });
        }
        let sync = state.sync;
        let links = lab
            .links()
            .status()
            .await?
            .into_iter()
            .map(|l| (l.node, l.settings))
            .collect();
        Ok(LabSnapshot {
            sync,
            links,
            stalled: None,
        })
    }

    /// Put the sync mode and every link's delay, rate, pause and cut back. Every step is
    /// tried; the first failure is returned.
    pub async fn restore(&self, lab: &Lab) -> Result<()> {
        if let Some(was) = &self.stalled {
            for node in cluster::ha::stall::stalled(lab) {
                if !was.contains(&node) {
                    cluster::ha::stall::resume(lab, &node).await?;
                }
            }
            return Ok(());
        }
        let mut first_error = None;
        let mut note = |r: Result<()>| {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        };
        if lab.state().map(|s| s.sync != self.sync).unwrap_or(false) {
            note(cluster::set_sync(lab, self.sync).await);
        }
        let client = lab.links();
        for (node, was) in &self.links {
            let set = Request::Set {
                node: node.clone(),
                delay_us: Some(was.delay_us),
                rate: Some(was.rate),
            };
            note(client.send(&set).await.map(drop));
            let heal = Request::Heal { node: node.clone() };
            note(client.send(&heal).await.map(drop));
            let node = node.clone();
            let again = match (was.cut, was.paused) {
                (true, _) => Some(Request::Cut { node }),
                (false, true) => Some(Request::Pause { node }),
                (false, false) => None,
            };
            if let Some(req) = again {
                note(client.send(&req).await.map(drop));
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
