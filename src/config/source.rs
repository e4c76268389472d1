//! Reading a workload file: TOML errors with file, line and column; the nearest valid key for
//! an unknown one; `--set KEY=VALUE` overrides.

use super::file::WorkloadFile;
use crate::error::usage;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// A workload file's text, for turning spans into line numbers.
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    /// Set when `--set` rewrote the document: spans then point into the rewritten text.
    pub overridden: Vec<String>,
}

impl Source {
    pub fn read(path: &Path) -> Result<Source> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            usage(format!(
                "cannot read the workload file {}: {e}",
                path.display()
            ))
        })?;
        Ok(Source {
            path: path.to_path_buf(),
            text,
            overridden: vec![],
        })
    }

    pub fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    /// An error (exit 2) at a span: `file:line: key: message`.
    pub fn error_at(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        msg: impl std::fmt::Display,
    ) -> anyhow::Error {
        if self.overridden.is_empty() {
            usage(format!(
                "{}:{}: {key}: {msg}",
                self.path.display(),
                self.line_of(span.start)
            ))
        } else {
            usage(format!(
                "{}: {key}: {msg} (after --set {})",
                self.path.display(),
                self.overridden.join(" --set ")
            ))
        }
    }

    /// Where a span is, for an error found later (once the lab is known): `file:line`, or the
    /// file alone when `--set` rewrote it.
    pub fn locate(&self, span: std::ops::Range<usize>) -> String {
        if self.overridden.is_empty() {
            format!("{}:{}", self.path.display(), self.line_of(span.start))
        } else {
            self.path.display().to_string()
        }
    }

    /// An error that belongs to the file as a whole.
    pub fn error(&self, key: &str, msg: impl std::fmt::Display) -> anyhow::Error {
        usage(format!("{}: {key}: {msg}", self.path.display()))
    }

    /// Parse into the file structs; syntax and type errors name the line and column.
    pub fn parse(&self) -> Result<WorkloadFile> {
        toml::from_str(&self.text).map_err(|e| {
            let msg = plain_types(e.message());
            let at = e
                .span()
                .map(|s| {
                    let line = self.line_of(s.start);
                    let line_start = self.text[..s.start].rfind('\n').map_or(0, |p| p + 1);
                    format!(":{line}:{}", s.start - line_start + 1)
                })
                .unwrap_or_default();
            let hint = nearest_key_hint(&msg);
            let after = if self.overridden.is_empty() {
                String::new()
            } else {
                format!(" (after --set {})", self.overridden.join(" --set "))
            };
            usage(format!("{}{at}: {msg}{hint}{after}", self.path.display()))
        })
    }

    /// Apply `--set KEY=VALUE` overrides; `[[load]]`, `[[transaction]]` and `[[event]]` entries
    /// are addressed by name (`load.shoppers.clients=16`) or index (`event.0.at=5s`).
    pub fn apply_sets(&mut self, sets: &[String]) -> Result<()> {
        if sets.is_empty() {
            return Ok(());
        }
        let mut doc: toml::Table = toml::from_str(&self.text)
            .map_err(|e| usage(format!("{}: {}", self.path.display(), e.message())))?;
        for set in sets {
            let (key, value) = set.split_once('=').ok_or_else(|| {
                usage(format!(
                    "--set {set}: expected KEY=VALUE, e.g. --set load.shoppers.clients=16"
                ))
            })?;
            let value = parse_value(value.trim());
            let path: Vec<&str> = key.trim().split('.').collect();
            set_path(&mut doc, &path, value).map_err(|e| usage(format!("--set {set}: {e}")))?;
        }
        self.text = toml::to_string(&doc).map_err(|e| usage(format!("--set: {e}")))?;
        self.overridden = sets.to_vec();
        Ok(())
    }
}

/// A TOML value if it parses as one (`16`, `true`, `"x"`, `[1, 2]`), else a plain string.
fn parse_value(text: &str) -> toml::Value {
    let probe = format!("v = {text}");
    toml::from_str::<toml::Table>(&probe)
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

fn set_path(table: &mut toml::Table, path: &[&str], value: toml::Value) -> Result<(), String> {
    let (first, rest) = path.split_first().ok_or("the key is empty")?;
    if rest.is_empty() {
        table.insert(first.to_string(), value);
        return Ok(());
    }
    let entry = table
        .entry(first.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match entry {
        toml::Value::Table(t) => set_path(t, rest, value),
        toml::Value::Array(items) => {
            let (sel, rest) = rest.split_first().expect("rest is not empty");
            let pos = match sel.parse::<usize>() {
                Ok(i) if i < items.len() => i,
                _ => items
                    .iter()
                    .position(|it| it.get("name").and_then(|n| n.as_str()) == Some(sel))
                    .ok_or_else(|| {
                        let names: Vec<&str> = items
                            .iter()
                            .filter_map(|i| i.get("name")?.as_str())
                            .collect();
                        format!(
                            "no [[{first}]] named '{sel}' (there are: {})",
                            names.join(", ")
                        )
                    })?,
            };
            match &mut items[pos] {
                toml::Value::Table(t) if !rest.is_empty() => set_path(t, rest, value),
                _ => Err(format!(
                    "{first}.{sel} needs a key after it, e.g. {first}.{sel}.name"
                )),
            }
        }
        _ => Err(format!("'{first}' is not a table")),
    }
}

/// serde's type names in words a user knows.
fn plain_types(msg: &str) -> String {
    msg.replace("expected i64", "expected an integer")
        .replace("expected u64", "expected a positive integer")
        .replace("expected f64", "expected a number")
        .replace("expected a string", "expected a string (in quotes)")
        .replace(
            "data did not match any variant of untagged enum SqlList",
            "expected a string or an array of strings",
        )
}

/// For "unknown field `x`, expected one of `a`, `b`": the closest of the expected keys.
fn nearest_key_hint(msg: &str) -> String {
    let Some(rest) = msg.strip_prefix("unknown field `") else {
        return String::new();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return String::new();
    };
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|cand| (edit_distance(unknown, cand), cand))
        .min();
    match best {
        Some((d, cand)) if d <= unknown.len().max(2) / 2 + 1 => {
            format!(" (did you mean `{cand}`?)")
        }
        _ => String::new(),
    }
}

/// The closest of `candidates` to `word`, if any is close.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .min()
        .filter(|(d, _)| *d <= word.len().max(2) / 2 + 1)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_picks_the_nearest_key() {
        let m = "unknown field `clientz`, expected one of `name`, `clients`, `rate`";
        assert_eq!(nearest_key_hint(m), " (did you mean `clients`?)");
        assert_eq!(
            nearest_key_hint("unknown field `zzzzzzzz`, expected `name`"),
            ""
        );
    }

    #[test]
    fn sets_reach_named_array_entries() {
        let mut s = Source {
            path: "w.toml".into(),
            text: "name = \"w\"\n[[load]]\nname = \"a\"\nclients = 1\n".into(),
            overridden: vec![],
        };
        s.apply_sets(&["load.a.clients=16".into(), "run.duration=2s".into()])
            .unwrap();
        let t: toml::Table = toml::from_str(&s.text).unwrap();
        assert_eq!(t["load"][0]["clients"].as_integer(), Some(16));
        assert_eq!(t["run"]["duration"].as_str(), Some("2s"));
        let err = s
            .apply_sets(&["load.b.clients=1".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no [[load]] named 'b'"), "{err}");
    }
}
