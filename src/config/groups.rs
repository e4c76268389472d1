//! Checking `[[load]]` groups: clients, rate, mix, read_your_writes, stop_after.

use super::file::LoadGroup;
use super::source::{nearest, Source};
use crate::workload::*;
use anyhow::Result;
use std::collections::HashSet;

/// Rates a group may ask for (transactions per second).
const MIN_RATE: f64 = 0.001;
const MAX_RATE: f64 = 10_000_000.0;
/// The heaviest weight in a mix (the weights of a mix add up in 32 bits).
const MAX_WEIGHT: i64 = 1_000_000;

pub fn build_groups(src: &Source, defs: &[LoadGroup], txs: &[Transaction]) -> Result<Vec<Group>> {
    if defs.is_empty() {
        return Err(src.error(
            "load",
            "no [[load]] group: add one with name, clients and mix",
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for def in defs {
        let name = def.name.get_ref().clone();
        let key = |k: &str| format!("load '{name}', {k}");
        if !seen.insert(name.clone()) {
            return Err(src.error_at(
                def.name.span(),
                "load.name",
                format!("'{name}' is defined twice"),
            ));
        }
        let clients = *def.clients.get_ref();
        if !(1..=10_000).contains(&clients) {
            return Err(src.error_at(
                def.clients.span(),
                &key("clients"),
                format!("{clients} is not a client count: expected 1 to 10000"),
            ));
        }
        let rate = match &def.rate {
            Some(r) if !(MIN_RATE..=MAX_RATE).contains(r.get_ref()) => {
                return Err(src.error_at(
                    r.span(),
                    &key("rate"),
                    format!(
                        "{} is not a rate: expected transactions per second from {MIN_RATE} to {MAX_RATE}",
                        r.get_ref()
                    ),
                ))
            }
            other => other.as_ref().map(|r| *r.get_ref()),
        };
        let mut mix = Vec::new();
        for (tx, weight) in def.mix.get_ref() {
            let idx = txs.iter().position(|t| &t.name == tx).ok_or_else(|| {
                let hint = nearest(tx, txs.iter().map(|t| t.name.as_str()))
                    .map(|n| format!(" (did you mean '{n}'?)"))
                    .unwrap_or_default();
                let all: Vec<&str> = txs.iter().map(|t| t.name.as_str()).collect();
                src.error_at(
                    def.mix.span(),
                    &key("mix"),
                    format!(
                        "unknown transaction '{tx}'{hint}: the transactions are {}",
                        all.join(", ")
                    ),
                )
            })?;
            if !(0..=MAX_WEIGHT).contains(weight) {
                return Err(src.error_at(
                    def.mix.span(),
                    &key(&format!("mix.{tx}")),
                    if *weight < 0 {
                        "a weight cannot be negative".to_string()
                    } else {
                        format!("{weight} is too heavy a weight: at most {MAX_WEIGHT}")
                    },
                ));
            }
            if *weight > 0 {
                mix.push((idx, *weight as u32));
            }
        }
        if mix.is_empty() {
            return Err(src.error_at(
                def.mix.span(),
                &key("mix"),
                "empty or all weights zero: give at least one transaction a weight above 0",
            ));
        }
        let read_your_writes = match def.read_your_writes.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("off") => false,
            Some("lsn") => true,
            Some(other) => {
                return Err(src.error_at(
                    def.read_your_writes.as_ref().unwrap().span(),
                    &key("read_your_writes"),
                    format!("'{other}' is not a mode: expected off or lsn"),
                ))
            }
        };
        let stop_after = match &def.stop_after {
            Some(s) if *s.get_ref() < 1 => {
                return Err(src.error_at(
                    s.span(),
                    &key("stop_after"),
                    format!("{} is not a count: expected 1 or more", s.get_ref()),
                ))
            }
            other => other.as_ref().map(|s| *s.get_ref() as u64),
        };
        let max_tries = match &def.max_tries {
            Some(m) if !(1..=1000).contains(m.get_ref()) => {
                return Err(src.error_at(
                    m.span(),
                    &key("max_tries"),
                    format!(
                        "{} is not a number of tries: expected 1 to 1000",
                        m.get_ref()
                    ),
                ))
            }
            Some(m) => *m.get_ref() as u32,
            None => 1,
        };
        let stop_counts_rows = mix.iter().all(|(i, _)| txs[*i].is_copy());
        let first_client_id = out
            .last()
            .map(|g: &Group| g.first_client_id + g.clients)
            .unwrap_or(1);
        out.push(Group {
            name,
            clients: clients as u32,
            rate,
            mix,
            read_your_writes,
            stop_after,
            stop_counts_rows,
            max_tries,
            first_client_id,
        });
    }
    Ok(out)
}
