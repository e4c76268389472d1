//! Checking `[[event]]`, `[expect]` and `[matrix]`.

use super::file::EventDef;
use super::source::{nearest, Source};
use super::SYNC_COMMIT;
use crate::pg::SyncMode;
use crate::units::{parse_duration, parse_rate};
use crate::workload::*;
use anyhow::Result;
use std::time::Duration;
use toml::Spanned;

pub fn build_matrix(src: &Source, m: &Spanned<super::file::MatrixDef>) -> Result<Matrix> {
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
    let standbys = def
        .standbys
        .iter()
        .map(|n| {
            u32::try_from(*n).ok().filter(|n| *n <= 9).ok_or_else(|| {
                src.error_at(
                    m.span(),
                    "matrix.standbys",
                    format!("{n} is not a number of standbys: expected 0 to 9"),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let settings = def
        .settings
        .iter()
        .map(|(name, values)| {
            let key = format!("matrix.settings.{name}");
            if values.is_empty() {
                return Err(src.error_at(m.span(), &key, "give at least one value"));
            }
            Ok((
                setting_name(src, m.span(), &key, name)?,
                values
                    .iter()
                    .map(|v| setting_value(src, m.span(), &key, v))
                    .collect::<Result<Vec<_>>>()?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut pg_version = Vec::new();
    for n in &def.pg_version {
        let major = u32::try_from(*n).ok().filter(|n| (10..=99).contains(n));
        match major {
            Some(major) if !pg_version.contains(&major) => pg_version.push(major),
            Some(twice) => {
                return Err(src.error_at(
                    m.span(),
                    "matrix.pg_version",
                    format!("{twice} is listed twice"),
                ))
            }
            None => {
                return Err(src.error_at(
                    m.span(),
                    "matrix.pg_version",
                    format!(
                    "{n} is not a PostgreSQL major: expected a list such as [14, 15, 16, 17, 18]"
                ),
                ))
            }
        }
    }
    let rounds = match def.rounds {
        None => 1,
        Some(_) if pg_version.is_empty() => {
            return Err(src.error_at(
                m.span(),
                "matrix.rounds",
                "repeats a pg_version matrix: give pg_version too",
            ))
        }
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| (1..=10).contains(n))
            .ok_or_else(|| {
                src.error_at(
                    m.span(),
                    "matrix.rounds",
                    format!("{n} is not a number of rounds: expected 1 to 10"),
                )
            })?,
    };
    let others = !def.synchronous_commit.is_empty()
        || !sync.is_empty()
        || !link_delay.is_empty()
        || !standbys.is_empty()
        || !settings.is_empty();
    if !pg_version.is_empty() && others {
        return Err(src.error_at(
            m.span(),
            "matrix.pg_version",
            "varies the lab itself (one lab per major): it takes no other matrix key; \
             vary the rest in a matrix of its own, with --pg-version on `cluster up`",
        ));
    }
    if !others && pg_version.is_empty() {
        return Err(src.error_at(
            m.span(),
            "matrix",
            "empty: give synchronous_commit, sync, link_delay, standbys, settings.<name> and/or pg_version lists",
        ));
    }
    Ok(Matrix {
        synchronous_commit: def.synchronous_commit.clone(),
        sync,
        link_delay,
        standbys,
        settings,
        pg_version,
        rounds,
        origin: src.locate(m.span()),
    })
}

pub fn build_event(src: &Source, i: usize, e: &EventDef) -> Result<Event> {
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
        "kill" => Action::Kill {
            node: target()?,
            by: shell(src, e, i, e.command.as_ref())?,
            undo_by: shell(src, e, i, e.undo.as_ref())?,
        },
        "start" => Action::Start {
            node: target()?,
            by: shell(src, e, i, e.command.as_ref())?,
        },
        "promote" => Action::Promote(e.target.as_ref().map(|t| t.get_ref().clone())),
        "switchover" => Action::Switchover(e.target.as_ref().map(|t| t.get_ref().clone())),
        "rejoin" => Action::Rejoin(target()?),
        "rebuild" => Action::Rebuild(target()?),
        "set_sync" => {
            let mode = e
                .sync
                .as_ref()
                .map(|s| {
                    SyncMode::parse(s.get_ref())
                        .map_err(|m| src.error_at(s.span(), &key("sync"), m))
                })
                .transpose()?;
            let commit = e
                .synchronous_commit
                .as_ref()
                .map(|c| {
                    let level = c.get_ref();
                    if SYNC_COMMIT.contains(&level.as_str()) {
                        Ok(level.clone())
                    } else {
                        Err(src.error_at(
                            c.span(),
                            &key("synchronous_commit"),
                            format!(
                                "'{level}' is not a level: expected one of {}",
                                SYNC_COMMIT.join(", ")
                            ),
                        ))
                    }
                })
                .transpose()?;
            if mode.is_none() && commit.is_none() {
                return Err(src.error_at(
                    e.action.span(),
                    &key("sync"),
                    "set_sync needs sync = \"async\" | \"first:N\" | \"any:N\" and/or synchronous_commit = \"on\" | ...",
                ));
            }
            Action::SetSync { mode, commit }
        }
        "set_setting" => {
            let name = e.setting.as_ref().ok_or_else(|| {
                src.error_at(
                    e.action.span(),
                    &key("setting"),
                    "set_setting needs setting = \"name\" and value = ...",
                )
            })?;
            let value = e.value.as_ref().ok_or_else(|| {
                src.error_at(
                    e.action.span(),
                    &key("value"),
                    "set_setting needs value = ...",
                )
            })?;
            Action::SetSetting {
                node: e.target.as_ref().map(|t| t.get_ref().clone()),
                name: setting_name(src, name.span(), &key("setting"), name.get_ref())?,
                value: setting_value(src, value.span(), &key("value"), value.get_ref())?,
            }
        }
        "exec" => {
            let run = shell(src, e, i, e.command.as_ref())?.ok_or_else(|| {
                src.error_at(
                    e.action.span(),
                    &key("command"),
                    "exec needs command = \"...\"",
                )
            })?;
            Action::Exec {
                command: run.command,
                undo: e.undo.as_ref().map(|u| u.get_ref().clone()),
                timeout: run.timeout,
            }
        }
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
    if let (Action::Kill { by: Some(_), .. }, Some(f), None) = (&action, &e.for_, &e.undo) {
        return Err(src.error_at(
            f.span(),
            &key("for"),
            "a kill by command is undone after `for` by another: give undo = \"...\" (e.g. docker start ...)",
        ));
    }
    Ok(Event {
        at,
        action,
        for_,
        origin: src.locate(e.action.span()),
    })
}

/// An event's shell command (`command`, with `timeout`), when it has one.
fn shell(
    src: &Source,
    e: &EventDef,
    i: usize,
    command: Option<&Spanned<String>>,
) -> Result<Option<Shell>> {
    let key = |k: &str| format!("event[{i}].{k}");
    let Some(c) = command else { return Ok(None) };
    if c.get_ref().trim().is_empty() {
        return Err(src.error_at(
            c.span(),
            &key("command"),
            "is empty: give the shell command to run",
        ));
    }
    let timeout = match &e.timeout {
        Some(t) => {
            let d = parse_duration(t.get_ref())
                .map_err(|m| src.error_at(t.span(), &key("timeout"), m))?;
            if d.is_zero() {
                return Err(src.error_at(t.span(), &key("timeout"), "must be longer than 0"));
            }
            d
        }
        None => EXEC_TIMEOUT,
    };
    Ok(Some(Shell {
        command: c.get_ref().clone(),
        timeout,
    }))
}

pub fn build_expectation(src: &Source, path: &str, cond: &Spanned<String>) -> Result<Expectation> {
    build_condition(src, "expect", path, cond)
}

/// A condition on a summary.json path (`[expect]`, `[sweep] slo`), its errors under the key
/// it was written with (`expect."path"`, `sweep.slo."path"`).
pub fn build_condition(
    src: &Source,
    section: &str,
    path: &str,
    cond: &Spanned<String>,
) -> Result<Expectation> {
    Expectation::parse(path, cond.get_ref())
        .map_err(|why| src.error_at(cond.span(), &format!("{section}.\"{path}\""), why))
}

/// A setting's name as ALTER SYSTEM takes it (letters, digits, underscores and dots).
pub fn setting_name(
    src: &Source,
    span: std::ops::Range<usize>,
    key: &str,
    name: &str,
) -> Result<String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if ok {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(src.error_at(span, key, format!("'{name}' is not a setting name")))
    }
}

/// A setting's value: a string, a number or a boolean, as postgresql.conf would take it.
pub fn setting_value(
    src: &Source,
    span: std::ops::Range<usize>,
    key: &str,
    v: &toml::Value,
) -> Result<String> {
    match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) if f.is_finite() => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(if *b { "on" } else { "off" }.into()),
        _ => Err(src.error_at(span, key, "expected a string, a number or true/false")),
    }
}

/// Check `[sweep]` against the groups; the swept group gets an open-model rate per step.
pub fn build_sweep(
    src: &Source,
    def: &Spanned<super::file::SweepDef>,
    groups: &[Group],
) -> Result<Sweep> {
    let d = def.get_ref();
    let key = |k: &str| format!("sweep.{k}");
    let name = d.group.get_ref();
    let group = groups.iter().position(|g| &g.name == name).ok_or_else(|| {
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        src.error_at(
            d.group.span(),
            &key("group"),
            format!(
                "no [[load]] named '{name}' (the groups are {})",
                names.join(", ")
            ),
        )
    })?;
    let rate_ok = |v: f64| (0.001..=10_000_000.0).contains(&v);
    let rates = match d.rates.get_ref() {
        toml::Value::String(s) if s == "auto" => Vec::new(),
        toml::Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                toml::Value::Integer(i) if rate_ok(*i as f64) => Ok(*i as f64),
                toml::Value::Float(f) if rate_ok(*f) => Ok(*f),
                _ => Err(src.error_at(
                    d.rates.span(),
                    &key("rates"),
                    format!("{v} is not a rate: expected transactions per second from 0.001 to 10000000"),
                )),
            })
            .collect::<Result<Vec<_>>>()?,
        _ => {
            return Err(src.error_at(
                d.rates.span(),
                &key("rates"),
                "expected \"auto\" or a list of rates, e.g. [100, 200, 400]",
            ))
        }
    };
    let number = |v: &Option<Spanned<f64>>, k: &str, default: f64| -> Result<f64> {
        match v {
            Some(x) if !rate_ok(*x.get_ref()) => Err(src.error_at(
                x.span(),
                &key(k),
                format!("{} is not a rate: expected 0.001 to 10000000", x.get_ref()),
            )),
            Some(x) => Ok(*x.get_ref()),
            None => Ok(default),
        }
    };
    let dur = |v: &Option<Spanned<String>>, k: &str, default: Duration| -> Result<Duration> {
        v.as_ref()
            .map(|s| parse_duration(s.get_ref()).map_err(|m| src.error_at(s.span(), &key(k), m)))
            .transpose()
            .map(|d| d.unwrap_or(default))
    };
    let step = dur(&d.step, "step", Duration::from_secs(10))?;
    if step < Duration::from_secs(1) {
        return Err(src.error_at(def.span(), &key("step"), "must be 1s or longer"));
    }
    let slo = d
        .slo
        .iter()
        .map(|(path, cond)| build_condition(src, "sweep.slo", path, cond))
        .collect::<Result<Vec<_>>>()?;
    Ok(Sweep {
        group,
        rates,
        start: number(&d.start, "start", groups[group].rate.unwrap_or(100.0))?,
        max_rate: number(&d.max_rate, "max_rate", 100_000.0)?,
        step,
        settle: dur(&d.settle, "settle", Duration::from_secs(60))?,
        slo,
        current: d
            .current
            .as_ref()
            .map(|c| *c.get_ref())
            .filter(|c| *c > 0.0),
        probe: dur(&d.probe, "probe", Duration::from_secs(5))?,
    })
}
