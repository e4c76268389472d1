//! Checking a parsed workload file and compiling it into a `Workload`.

use super::connstr::parse_conninfo;
use super::file::{EventDef, LoadGroup, TransactionDef, WorkloadFile};
use super::source::{nearest, Source};
use crate::cluster::SyncMode;
use crate::units::{parse_duration, parse_rate};
use crate::workload::generators::Generator;
use crate::workload::sql::{compile, output_names};
use crate::workload::*;
use anyhow::Result;
use std::collections::HashSet;
use std::time::Duration;
use toml::Spanned;

/// Parameters every statement may use without defining them.
pub const BUILTIN_PARAMS: &[&str] = &["client_id", "client_writes"];
const SYNC_COMMIT: &[&str] = &["off", "local", "remote_write", "on", "remote_apply"];

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
        if !m.get_ref().sync.is_empty() || !m.get_ref().link_delay.is_empty() {
            return Err(src.error_at(m.span(), "matrix", "sync and link_delay need the lab: remove [cluster] or keep only synchronous_commit"));
        }
    }
    let transactions = build_transactions(src, &file.transaction)?;
    let groups = build_groups(src, &file.load, &transactions)?;
    if duration.is_none() && !groups.iter().any(|g| g.stop_after.is_some()) {
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
    Ok(Workload {
        name,
        description: file.description.clone(),
        duration,
        warmup,
        sample_every,
        seed: file.run.seed.unwrap_or(1),
        synchronous_commit,
        setup_sql: file.setup.as_ref().map(|s| s.sql.get_ref().clone()),
        cluster,
        groups,
        transactions,
        events,
        expect,
        matrix,
    })
}

fn build_matrix(src: &Source, m: &Spanned<super::file::MatrixDef>) -> Result<Matrix> {
    let def = m.get_ref();
    for level in &def.synchronous_commit {
        if !SYNC_COMMIT.contains(&level.as_str()) {
            return Err(src.error_at(
                m.span(),
                "matrix.synchronous_commit",
                format!(
                    "'{level}' is not a level: expected one of {}",
                    SYNC_COMMIT.join(", ")
                ),
            ));
        }
    }
    let sync = def
        .sync
        .iter()
        .map(|s| SyncMode::parse(s).map_err(|e| src.error_at(m.span(), "matrix.sync", e)))
        .collect::<Result<Vec<_>>>()?;
    let link_delay = def
        .link_delay
        .iter()
        .map(|d| parse_duration(d).map_err(|e| src.error_at(m.span(), "matrix.link_delay", e)))
        .collect::<Result<Vec<_>>>()?;
    if def.synchronous_commit.is_empty() && sync.is_empty() && link_delay.is_empty() {
        return Err(src.error_at(
            m.span(),
            "matrix",
            "empty: give synchronous_commit, sync and/or link_delay lists",
        ));
    }
    Ok(Matrix {
        synchronous_commit: def.synchronous_commit.clone(),
        sync,
        link_delay,
    })
}

fn build_transactions(src: &Source, defs: &[TransactionDef]) -> Result<Vec<Transaction>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for def in defs {
        let name = def.name.get_ref().clone();
        let key = |k: &str| format!("transaction '{name}', {k}");
        if !seen.insert(name.clone()) {
            return Err(src.error_at(
                def.name.span(),
                "transaction.name",
                format!("'{name}' is defined twice"),
            ));
        }
        let target = match def.target.as_ref().map(|t| t.get_ref().as_str()) {
            None | Some("primary") => Target::Primary,
            Some("standby") => Target::Standby,
            Some("any") => Target::Any,
            Some(other) => {
                return Err(src.error_at(
                    def.target.as_ref().unwrap().span(),
                    &key("target"),
                    format!("'{other}' is not a target: expected primary, standby or any"),
                ))
            }
        };
        let mut params = Vec::new();
        for (pname, spec) in &def.params {
            let g = Generator::parse(spec.get_ref())
                .map_err(|e| src.error_at(spec.span(), &key(&format!("params.{pname}")), e))?;
            params.push((pname.clone(), g));
        }
        let body = match (&def.sql, &def.copy) {
            (Some(_), Some(c)) => {
                return Err(src.error_at(
                    c.span(),
                    &key("copy"),
                    "a transaction has either sql or copy, not both",
                ))
            }
            (None, None) => {
                return Err(src.error_at(
                    def.name.span(),
                    &key("sql"),
                    "missing: give sql = [...] or copy = {...}",
                ))
            }
            (Some(sql), None) => Body::Sql(compile_sql(src, &name, sql, &params)?),
            (None, Some(copy)) => {
                if target != Target::Primary {
                    return Err(src.error_at(
                        copy.span(),
                        &key("copy"),
                        "a copy writes, so its target must be primary",
                    ));
                }
                let c = copy.get_ref();
                if c.rows_per_tx < 1 {
                    return Err(src.error_at(
                        copy.span(),
                        &key("copy.rows_per_tx"),
                        "must be 1 or more",
                    ));
                }
                if c.columns.is_empty() {
                    return Err(src.error_at(
                        copy.span(),
                        &key("copy.columns"),
                        "name at least one column",
                    ));
                }
                let columns = c
                    .columns
                    .iter()
                    .map(|(col, spec)| {
                        Generator::parse(spec)
                            .map(|g| (col.clone(), g))
                            .map_err(|e| {
                                src.error_at(copy.span(), &key(&format!("copy.columns.{col}")), e)
                            })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Body::Copy(CopySpec {
                    table: c.table.clone(),
                    rows_per_tx: c.rows_per_tx as u64,
                    columns,
                })
            }
        };
        out.push(Transaction {
            name,
            target,
            params,
            body,
        });
    }
    Ok(out)
}

fn compile_sql(
    src: &Source,
    tx: &str,
    sql: &Spanned<super::file::SqlList>,
    params: &[(String, Generator)],
) -> Result<Vec<crate::workload::sql::Statement>> {
    let statements = sql.get_ref().statements();
    if statements.is_empty() || statements.iter().any(|s| s.trim().is_empty()) {
        return Err(src.error_at(
            sql.span(),
            &format!("transaction '{tx}', sql"),
            "a statement is empty",
        ));
    }
    let mut defined: Vec<String> = params.iter().map(|(n, _)| n.clone()).collect();
    defined.extend(BUILTIN_PARAMS.iter().map(|s| s.to_string()));
    let mut out = Vec::new();
    for (i, text) in statements.iter().enumerate() {
        let stmt = compile(text);
        for p in &stmt.params {
            if !defined.contains(p) {
                let hint = nearest(p, defined.iter().map(String::as_str))
                    .map(|n| format!(" (did you mean ${n}?)"))
                    .unwrap_or_default();
                return Err(src.error_at(
                    sql.span(),
                    &format!("transaction '{tx}', sql[{i}]"),
                    format!(
                        "${p} is not defined: define it in params, or return it from an earlier statement with RETURNING ... AS {p}{hint}"
                    ),
                ));
            }
        }
        defined.extend(output_names(text));
        out.push(stmt);
    }
    Ok(out)
}

fn build_groups(src: &Source, defs: &[LoadGroup], txs: &[Transaction]) -> Result<Vec<Group>> {
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
            Some(r) if !(*r.get_ref() > 0.0 && r.get_ref().is_finite()) => {
                return Err(src.error_at(
                    r.span(),
                    &key("rate"),
                    "must be a positive number of transactions per second",
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
            if *weight < 0 {
                return Err(src.error_at(
                    def.mix.span(),
                    &key(&format!("mix.{tx}")),
                    "a weight cannot be negative",
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
        let stop_counts_rows = mix.iter().all(|(i, _)| txs[*i].is_copy());
        out.push(Group {
            name,
            clients: clients as u32,
            rate,
            mix,
            read_your_writes,
            stop_after,
            stop_counts_rows,
        });
    }
    Ok(out)
}

fn build_event(src: &Source, i: usize, e: &EventDef) -> Result<Event> {
    let key = |k: &str| format!("event[{i}].{k}");
    let at =
        parse_duration(e.at.get_ref()).map_err(|m| src.error_at(e.at.span(), &key("at"), m))?;
    let for_ = e
        .for_
        .as_ref()
        .map(|f| parse_duration(f.get_ref()).map_err(|m| src.error_at(f.span(), &key("for"), m)))
        .transpose()?;
    let target = || -> Result<String> {
        e.target
            .as_ref()
            .map(|t| t.get_ref().clone())
            .ok_or_else(|| {
                src.error_at(
                    e.action.span(),
                    &key("target"),
                    format!("'{}' needs a target node", e.action.get_ref()),
                )
            })
    };
    let action = match e.action.get_ref().as_str() {
        "pause_link" => Action::PauseLink(target()?),
        "resume_link" => Action::ResumeLink(target()?),
        "cut_link" => Action::CutLink(target()?),
        "heal_link" => Action::HealLink(target()?),
        "set_link" => Action::SetLink {
            node: target()?,
            delay: e
                .delay
                .as_ref()
                .map(|d| {
                    parse_duration(d.get_ref())
                        .map_err(|m| src.error_at(d.span(), &key("delay"), m))
                })
                .transpose()?,
            rate: e
                .rate
                .as_ref()
                .map(|r| {
                    parse_rate(r.get_ref()).map_err(|m| src.error_at(r.span(), &key("rate"), m))
                })
                .transpose()?,
        },
        "kill" => Action::Kill(target()?),
        "start" => Action::Start(target()?),
        "promote" => Action::Promote(e.target.as_ref().map(|t| t.get_ref().clone())),
        "rejoin" => Action::Rejoin(target()?),
        "set_sync" => {
            let s = e.sync.as_ref().ok_or_else(|| {
                src.error_at(
                    e.action.span(),
                    &key("sync"),
                    "set_sync needs sync = \"async\" | \"first:N\" | \"any:N\"",
                )
            })?;
            Action::SetSync(
                SyncMode::parse(s.get_ref())
                    .map_err(|m| src.error_at(s.span(), &key("sync"), m))?,
            )
        }
        "exec" => Action::Exec {
            command: e
                .command
                .as_ref()
                .map(|c| c.get_ref().clone())
                .ok_or_else(|| {
                    src.error_at(
                        e.action.span(),
                        &key("command"),
                        "exec needs command = \"...\"",
                    )
                })?,
            undo: e.undo.as_ref().map(|u| u.get_ref().clone()),
        },
        other => {
            let hint = nearest(other, ACTIONS.iter().copied())
                .map(|n| format!(" (did you mean {n}?)"))
                .unwrap_or_default();
            return Err(src.error_at(
                e.action.span(),
                &key("action"),
                format!(
                    "unknown action '{other}'{hint}: expected one of {}",
                    ACTIONS.join(", ")
                ),
            ));
        }
    };
    Ok(Event { at, action, for_ })
}

fn build_expectation(src: &Source, path: &str, cond: &Spanned<String>) -> Result<Expectation> {
    let text = cond.get_ref().trim();
    let op = ["<=", ">=", "==", "!=", "<", ">"]
        .into_iter()
        .find(|op| text.starts_with(op))
        .ok_or_else(|| {
            src.error_at(
                cond.span(),
                &format!("expect.\"{path}\""),
                "expected a comparison such as \"< 1.0\" or \"== 0\"",
            )
        })?;
    let value: f64 = text[op.len()..].trim().parse().map_err(|_| {
        src.error_at(
            cond.span(),
            &format!("expect.\"{path}\""),
            format!("'{}' is not a number", text[op.len()..].trim()),
        )
    })?;
    Ok(Expectation {
        path: path.to_string(),
        op: op.to_string(),
        value,
        text: text.to_string(),
    })
}
