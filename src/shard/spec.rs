//! `--shard I/N` and `--shard auto/N` (the index from `JOB_COMPLETION_INDEX`, as an Indexed
//! Job gives each pod).

use std::fmt;

/// Shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
}

/// The most shards a run may have.
pub const MAX_SHARDS: u32 = 1000;

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl ShardSpec {
    /// Parse `I/N` or `auto/N`; `job_index` is the value of `JOB_COMPLETION_INDEX`, if set.
    pub fn parse(text: &str, job_index: Option<&str>) -> Result<ShardSpec, String> {
        let (i, n) = text.split_once('/').ok_or_else(|| {
            format!("--shard '{text}': expected I/N (e.g. 0/4) or auto/N (e.g. auto/4)")
        })?;
        let count: u32 = n.trim().parse().map_err(|_| {
            format!(
                "--shard '{text}': '{n}' is not a shard count (a whole number, 1 to {MAX_SHARDS})"
            )
        })?;
        if !(1..=MAX_SHARDS).contains(&count) {
            return Err(format!(
                "--shard '{text}': the shard count must be between 1 and {MAX_SHARDS}"
            ));
        }
        let index: u32 = if i.trim() == "auto" {
            let v = job_index.ok_or_else(|| {
                format!(
                    "--shard '{text}': auto takes the index from JOB_COMPLETION_INDEX, which is not set \
                     (it is in the pods of a Kubernetes Indexed Job); give the index instead, e.g. 0/{count}"
                )
            })?;
            v.trim().parse().map_err(|_| {
                format!("--shard '{text}': JOB_COMPLETION_INDEX='{v}' is not a shard index")
            })?
        } else {
            i.trim().parse().map_err(|_| {
                format!(
                    "--shard '{text}': '{i}' is not a shard index (0 to {})",
                    count - 1
                )
            })?
        };
        if index >= count {
            return Err(format!(
                "--shard '{text}': the index must be below the count (0 to {})",
                count - 1
            ));
        }
        Ok(ShardSpec { index, count })
    }

    /// Shard 0 runs `[setup]`, the sampler and the events.
    pub fn is_first(&self) -> bool {
        self.index == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_index_and_auto() {
        assert_eq!(
            ShardSpec::parse("2/3", None),
            Ok(ShardSpec { index: 2, count: 3 })
        );
        assert_eq!(
            ShardSpec::parse("auto/4", Some("3")),
            Ok(ShardSpec { index: 3, count: 4 })
        );
        for (bad, env, says) in [
            ("3/3", None, "below the count"),
            ("1", None, "expected I/N"),
            ("0/0", None, "between 1 and"),
            ("x/2", None, "not a shard index"),
            ("auto/2", None, "JOB_COMPLETION_INDEX"),
            ("auto/2", Some("7"), "below the count"),
            ("auto/2", Some("-1"), "not a shard index"),
        ] {
            let e = ShardSpec::parse(bad, env).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
