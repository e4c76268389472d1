//! The orchestrators' timeouts a user may set with `--ha-setting NAME=VALUE`: which names each
//! stack knows, of what type, and their values in a form each stack takes. Checked before
//! anything touches the lab, so a typo exits 2 with the list of names.

use super::HaKind;
use crate::units::{format_duration, parse_duration, parse_rate};
use indexmap::IndexMap;
use std::time::Duration;

/// What a setting holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A duration the stack takes in milliseconds (pg_auto_failover's GUCs).
    Millis,
    /// A duration the stack takes in whole seconds (Patroni's DCS settings).
    Seconds,
    /// A count.
    Count,
    /// A size in bytes (`16MB`).
    Bytes,
    /// true or false.
    Bool,
}

/// One setting of a stack.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    pub what: &'static str,
}

const PG_AUTO_FAILOVER: &[Def] = &[
    Def {
        name: "health_check_period",
        kind: Kind::Millis,
        what: "how often the monitor checks each node",
    },
    Def {
        name: "health_check_timeout",
        kind: Kind::Millis,
        what: "connect timeout of a health check",
    },
    Def {
        name: "health_check_max_retries",
        kind: Kind::Count,
        what: "failed checks before a node is unhealthy",
    },
    Def {
        name: "health_check_retry_delay",
        kind: Kind::Millis,
        what: "pause between retries of a check",
    },
    Def {
        name: "node_considered_unhealthy_timeout",
        kind: Kind::Millis,
        what: "silence before a node that stopped reporting is unhealthy",
    },
    Def {
        name: "primary_demote_timeout",
        kind: Kind::Millis,
        what: "how long the old primary gets to demote itself before the new one takes writes",
    },
    Def {
        name: "startup_grace_period",
        kind: Kind::Millis,
        what: "after the monitor starts, how long it waits before judging health",
    },
    Def {
        name: "promote_wal_log_threshold",
        kind: Kind::Bytes,
        what: "a standby further behind than this is no failover candidate",
    },
    Def {
        name: "enable_sync_wal_log_threshold",
        kind: Kind::Bytes,
        what: "a standby joins the synchronous quorum once within this",
    },
    Def {
        name: "number_sync_standbys",
        kind: Kind::Count,
        what: "standbys every commit waits for (0: asynchronous)",
    },
];

const PATRONI: &[Def] = &[
    Def {
        name: "ttl",
        kind: Kind::Seconds,
        what: "the leader key's lifetime: a dead leader is replaced after it",
    },
    Def {
        name: "loop_wait",
        kind: Kind::Seconds,
        what: "seconds between two runs of each Patroni's loop",
    },
    Def {
        name: "retry_timeout",
        kind: Kind::Seconds,
        what: "how long DCS and PostgreSQL operations are retried",
    },
    Def {
        name: "maximum_lag_on_failover",
        kind: Kind::Bytes,
        what: "a replica further behind than this is not promoted",
    },
    Def {
        name: "synchronous_mode",
        kind: Kind::Bool,
        what: "commits wait for a synchronous replica; only it may be promoted",
    },
];

/// The settings a stack takes.
pub fn defs(kind: HaKind) -> &'static [Def] {
    match kind {
        HaKind::PgAutoFailover => PG_AUTO_FAILOVER,
        HaKind::Patroni => PATRONI,
    }
}

/// A checked value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Duration(Duration),
    Count(u64),
    Bytes(u64),
    Bool(bool),
}

impl Value {
    /// The value in the unit the stack takes: milliseconds or seconds, bytes, a count, a bool.
    pub fn native(&self, kind: Kind) -> String {
        match (self, kind) {
            (Value::Duration(d), Kind::Seconds) => d.as_secs().to_string(),
            (Value::Duration(d), _) => d.as_millis().to_string(),
            (Value::Count(n), _) | (Value::Bytes(n), _) => n.to_string(),
            (Value::Bool(b), _) => b.to_string(),
        }
    }

    /// As a person reads it: `5s`, `500ms`, `16MB`, `2`, `true`.
    pub fn display(&self) -> String {
        match self {
            Value::Duration(d) => format_duration(*d),
            Value::Count(n) => n.to_string(),
            Value::Bytes(b) => format_bytes(*b),
            Value::Bool(b) => b.to_string(),
        }
    }
}

fn format_bytes(b: u64) -> String {
    // Decimal, as `parse_rate` reads them (16MB = 16,000,000 bytes); binary sizes as MiB.
    const UNITS: [(u64, &str); 5] = [
        (1_000_000_000, "GB"),
        (1_000_000, "MB"),
        (1 << 20, "MiB"),
        (1_000, "kB"),
        (1 << 10, "kiB"),
    ];
    for (size, unit) in UNITS {
        if b >= size && b.is_multiple_of(size) {
            return format!("{}{unit}", b / size);
        }
    }
    format!("{b}B")
}

/// Parse `NAME=VALUE` for a stack: the definition and the checked value, or what is wrong.
pub fn parse(kind: HaKind, text: &str) -> Result<(Def, Value), String> {
    let (name, value) = text
        .split_once('=')
        .map(|(n, v)| (n.trim(), v.trim()))
        .ok_or_else(|| {
            format!(
                "--ha-setting '{text}': write it as NAME=VALUE, e.g. {}",
                example(kind)
            )
        })?;
    let def = defs(kind)
        .iter()
        .find(|d| d.name == name)
        .copied()
        .ok_or_else(|| {
            let names: Vec<&str> = defs(kind).iter().map(|d| d.name).collect();
            format!(
                "--ha-setting {name}: {} has no such setting; it takes {}",
                kind.name(),
                names.join(", ")
            )
        })?;
    let bad = |expected: &str| {
        format!(
            "--ha-setting {name}={value}: expected {expected} ({})",
            def.what
        )
    };
    let v = match def.kind {
        Kind::Millis => Value::Duration(
            parse_duration(value)
                .ok()
                .filter(|d| *d <= Duration::from_secs(86_400))
                .ok_or_else(|| bad("a duration such as 500ms or 5s, at most 24h"))?,
        ),
        Kind::Seconds => {
            let d = parse_duration(value)
                .ok()
                .filter(|d| *d <= Duration::from_secs(86_400))
                .ok_or_else(|| bad("a duration in whole seconds such as 10s, at most 24h"))?;
            if d.subsec_nanos() != 0 || d.is_zero() {
                return Err(bad(
                    "a whole number of seconds, at least 1s (Patroni counts in seconds)",
                ));
            }
            Value::Duration(d)
        }
        Kind::Count => Value::Count(
            value
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= 1000)
                .ok_or_else(|| bad("a whole number from 0 to 1000"))?,
        ),
        Kind::Bytes => {
            Value::Bytes(parse_rate(value).map_err(|_| bad("a size such as 1MB or 16MB"))?)
        }
        Kind::Bool => Value::Bool(match value {
            "true" | "on" | "1" => true,
            "false" | "off" | "0" => false,
            _ => return Err(bad("true or false")),
        }),
    };
    Ok((def, v))
}

fn example(kind: HaKind) -> &'static str {
    match kind {
        HaKind::PgAutoFailover => "node_considered_unhealthy_timeout=5s",
        HaKind::Patroni => "ttl=10",
    }
}

/// Every `--ha-setting` of a command line, checked, by name (a later one wins), and the
/// combination checked: Patroni needs loop_wait + 2 x retry_timeout <= ttl.
pub fn parse_all(kind: HaKind, given: &[String]) -> Result<IndexMap<String, String>, String> {
    let mut out = IndexMap::new();
    let mut values = IndexMap::new();
    for text in given {
        let (def, v) = parse(kind, text)?;
        out.insert(def.name.to_string(), v.display());
        values.insert(def.name, v);
    }
    if kind == HaKind::Patroni {
        check_patroni(&values)?;
    }
    Ok(out)
}

/// Patroni's defaults (ttl 30, loop_wait 10, retry_timeout 10) where none is given.
fn check_patroni(values: &IndexMap<&str, Value>) -> Result<(), String> {
    let secs = |name: &str, default: u64| match values.get(name) {
        Some(Value::Duration(d)) => d.as_secs(),
        _ => default,
    };
    let (ttl, loop_wait, retry) = (
        secs("ttl", 30),
        secs("loop_wait", 10),
        secs("retry_timeout", 10),
    );
    if loop_wait + 2 * retry > ttl {
        return Err(format!(
            "--ha-setting: Patroni needs loop_wait + 2 x retry_timeout <= ttl, and {loop_wait}s + \
             2 x {retry}s > {ttl}s: lower loop_wait or retry_timeout, or raise ttl"
        ));
    }
    Ok(())
}

/// A value as saved (`display`), read back for the stack: its native form.
pub fn native(kind: HaKind, name: &str, shown: &str) -> Option<String> {
    let (def, v) = parse(kind, &format!("{name}={shown}")).ok()?;
    Some(v.native(def.kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_numbers_and_sizes_are_checked_and_shown_back() {
        let (d, v) = parse(HaKind::PgAutoFailover, "primary_demote_timeout=5s").unwrap();
        assert_eq!(d.kind, Kind::Millis);
        assert_eq!(v.native(d.kind), "5000");
        assert_eq!(v.display(), "5s");
        let (d, v) = parse(HaKind::Patroni, "maximum_lag_on_failover=1MB").unwrap();
        assert_eq!(v.native(d.kind), "1000000");
        let (d, v) = parse(HaKind::Patroni, "ttl = 20s").unwrap();
        assert_eq!(v.native(d.kind), "20");
        assert_eq!(
            native(HaKind::PgAutoFailover, "health_check_period", "500ms").as_deref(),
            Some("500")
        );
    }

    #[test]
    fn bad_names_types_and_combinations_say_what_is_expected() {
        let e = parse(HaKind::PgAutoFailover, "ttl=10s").unwrap_err();
        assert!(
            e.contains("no such setting") && e.contains("primary_demote_timeout"),
            "{e}"
        );
        let e = parse(HaKind::Patroni, "ttl=1.5s").unwrap_err();
        assert!(e.contains("whole number of seconds"), "{e}");
        let e = parse(HaKind::Patroni, "loop_wait=abc").unwrap_err();
        assert!(e.contains("expected a duration"), "{e}");
        let e = parse(HaKind::PgAutoFailover, "health_check_max_retries=-1").unwrap_err();
        assert!(e.contains("whole number"), "{e}");
        let e = parse(HaKind::Patroni, "ttl").unwrap_err();
        assert!(e.contains("NAME=VALUE"), "{e}");
        let e = parse_all(HaKind::Patroni, &["ttl=10s".into()]).unwrap_err();
        assert!(e.contains("loop_wait + 2 x retry_timeout"), "{e}");
        let ok = parse_all(
            HaKind::Patroni,
            &[
                "ttl=10s".into(),
                "loop_wait=2s".into(),
                "retry_timeout=4s".into(),
            ],
        )
        .unwrap();
        assert_eq!(ok["ttl"], "10s");
    }
}
