//! Checking a parsed workload file and compiling it into a `Workload`.

use super::drills::{
    build_event, build_expectation, build_matrix, build_sweep, setting_name, setting_value,
};
use super::file::WorkloadFile;
use super::groups::build_groups;
use super::source::Source;
use super::transactions::build_transactions;
use super::SYNC_COMMIT;
use crate::pg::parse_conninfo;
use crate::units::parse_duration;
use crate::workload::*;
use anyhow::Result;
use std::time::Duration;
use toml::Spanned;

pub fn build(src: &Source, file: WorkloadFile) -> Result<Workload> {
    let name = file.name.get_ref().trim().to_string();
    if name.is_empty() || name.contains('/') {
        return Err(src.error_at(
            file.name.span(),
            "name",
            "must be a non-empty name without '/'",
        ));
    }
    let dur = |v: &Option<Spanned<String>>, key: &str| -> Result<Option<Duration>> {
        v.as_ref()
            .map(|s| parse_duration(s.get_ref()).map_err(|e| src.error_at(s.span(), key, e)))
            .transpose()
    };
    let duration = dur(&file.run.duration, "run.duration")?;
    if duration == Some(Duration::ZERO) {
        let s = file.run.duration.as_ref().unwrap();
        return Err(src.error_at(s.span(), "run.duration", "must be longer than 0"));
    }
    let warmup = dur(&file.run.warmup, "run.warmup")?.unwrap_or(Duration::ZERO);
    // "off" turns the replication sampler off (to measure what it costs).
    let sample_every = match &file.run.sample_every {
        Some(s) if s.get_ref() == "off" => None,
        other => {
            let every = dur(other, "run.sample_every")?.unwrap_or(Duration::from_millis(100));
            if every < Duration::from_millis(10) {
                let s = other.as_ref().expect("only a given value can be short");
                return Err(src.error_at(
                    s.span(),
                    "run.sample_every",
                    "must be 10ms or more (or \"off\")",
                ));
            }
            Some(every)
        }
    };
    let interval = dur(&file.run.interval, "run.interval")?.unwrap_or(Duration::from_secs(1));
    if let Some(s) = &file.run.interval {
        if interval < Duration::from_millis(10) || interval > Duration::from_secs(60) {
            return Err(src.error_at(
                s.span(),
                "run.interval",
                "must be between 10ms and 60s (100ms shows a failover's outage as the span it was)",
            ));
        }
    }
    // The heartbeat writes a row: on by default on the lab, asked for against a [cluster].
    let heartbeat_every = dur(&file.run.heartbeat_every, "run.heartbeat_every")?;
    if let (Some(d), Some(s)) = (heartbeat_every, &file.run.heartbeat_every) {
        if d < Duration::from_millis(10) {
            return Err(src.error_at(s.span(), "run.heartbeat_every", "must be 10ms or more"));
        }
    }
    let heartbeat_on = file.run.heartbeat.unwrap_or(file.cluster.is_none());
    let heartbeat_every = (heartbeat_on && sample_every.is_some())
        .then(|| heartbeat_every.unwrap_or(Duration::from_millis(100)));
    let synchronous_commit = match &file.run.synchronous_commit {
        Some(s) if !SYNC_COMMIT.contains(&s.get_ref().as_str()) => {
            return Err(src.error_at(
                s.span(),
                "run.synchronous_commit",
                format!(
                    "'{}' is not a level: expected one of {}",
                    s.get_ref(),
                    SYNC_COMMIT.join(", ")
                ),
            ))
        }
        other => other.as_ref().map(|s| s.get_ref().clone()),
    };
    let matrix = file
        .matrix
        .as_ref()
        .map(|m| build_matrix(src, m))
        .transpose()?;
    if matrix.is_some() && file.cluster.is_some() {
        let m = file.matrix.as_ref().unwrap();
        let d = m.get_ref();
        if !d.sync.is_empty()
            || !d.link_delay.is_empty()
            || !d.standbys.is_empty()
            || !d.pg_version.is_empty()
        {
            return Err(src.error_at(m.span(), "matrix", "sync, link_delay, standbys and pg_version need the lab: remove [cluster] or vary only synchronous_commit and settings"));
        }
    }
    let transactions = build_transactions(src, &file.transaction)?;
    let groups = build_groups(src, &file.load, &transactions)?;
    let sweep = file
        .sweep
        .as_ref()
        .map(|s| build_sweep(src, s, &groups))
        .transpose()?;
    if let (Some(_), Some(d)) = (&sweep, &file.run.duration) {
        return Err(src.error_at(
            d.span(),
            "run.duration",
            "a [sweep] runs as long as its steps take: remove run.duration (each step lasts sweep.step)",
        ));
    }
    if sweep.is_some() && matrix.is_some() {
        return Err(src.error("sweep", "a workload has a [sweep] or a [matrix], not both"));
    }
    if sweep.is_none() && duration.is_none() && !groups.iter().any(|g| g.stop_after.is_some()) {
        return Err(src.error(
            "run.duration",
            "missing: set run.duration (e.g. duration = \"60s\") or a stop_after in a [[load]]",
        ));
    }
    let cluster = match &file.cluster {
        None => None,
        Some(c) => {
            let conn = |s: &Spanned<String>, key: &str| {
                parse_conninfo(s.get_ref()).map_err(|e| src.error_at(s.span(), key, e))
            };
            Some(ClusterTargets {
                primary: conn(&c.primary, "cluster.primary")?,
                standbys: c
                    .standbys
                    .iter()
                    .map(|s| conn(s, "cluster.standbys"))
                    .collect::<Result<_>>()?,
            })
        }
    };
    let events = file
        .event
        .iter()
        .enumerate()
        .map(|(i, e)| build_event(src, i, e))
        .collect::<Result<Vec<_>>>()?;
    let expect = file
        .expect
        .iter()
        .map(|(path, cond)| build_expectation(src, path, cond))
        .collect::<Result<Vec<_>>>()?;
    let server_settings = match &file.run.server_settings {
        None => Vec::new(),
        Some(map) => map
            .get_ref()
            .iter()
            .map(|(name, value)| {
                let key = format!("run.server_settings.{name}");
                Ok((
                    setting_name(src, map.span(), &key, name)?,
                    setting_value(src, map.span(), &key, value)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?,
    };
    Ok(Workload {
        name,
        description: file.description.clone(),
        duration,
        warmup,
        sample_every,
        heartbeat_every,
        interval,
        seed: file.run.seed.unwrap_or(1),
        synchronous_commit,
        setup_sql: file.setup.as_ref().map(|s| s.sql.get_ref().clone()),
        cluster,
        groups,
        transactions,
        events,
        expect,
        matrix,
        server_settings,
        verify: file.run.verify.unwrap_or(false),
        sweep,
    })
}
