//! Parameter generators (`uniform(a,b)`, `zipf(a,b,s)`, ...): parsed once, sampled per
//! transaction from each client's seeded RNG.

use super::value::Value;
use rand::distributions::{Alphanumeric, Distribution};
use rand::rngs::SmallRng;
use rand::Rng;
use rand_distr::{Exp, Normal, Zipf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// The generators a parameter can use, with an example each (for error messages and docs).
pub const GENERATORS: &[&str] = &[
    "uniform(1, 1000)",
    "zipf(1, 10000, 1.1)",
    "gaussian(1, 1000)",
    "exponential(1, 1000)",
    "seq()",
    "text(100)",
    "choice('a', 'b', 3)",
    "now()",
];

/// A parsed generator.
#[derive(Debug, Clone)]
pub enum Generator {
    Uniform(i64, i64),
    Zipf {
        low: i64,
        high: i64,
        dist: Zipf<f64>,
    },
    Gaussian {
        low: i64,
        high: i64,
        dist: Normal<f64>,
    },
    Exponential {
        low: i64,
        high: i64,
        dist: Exp<f64>,
    },
    /// A counter shared by every client of the run: each value is handed out once. A shard
    /// of N takes every Nth value (`step` = N), starting at its index, so shards never collide.
    Seq {
        next: Arc<AtomicI64>,
        step: i64,
    },
    Text(usize),
    Choice(Vec<Value>),
    Now,
}

impl Generator {
    /// Parse `name(args)`; the error says what was expected.
    pub fn parse(text: &str) -> Result<Generator, String> {
        let t = text.trim();
        let (name, args) = t
            .strip_suffix(')')
            .and_then(|s| s.split_once('('))
            .ok_or_else(|| {
                format!(
                    "'{text}' is not a generator: expected one of {}",
                    GENERATORS.join(", ")
                )
            })?;
        let args: Vec<&str> = if args.trim().is_empty() {
            vec![]
        } else {
            args.split(',').map(str::trim).collect()
        };
        let int = |i: usize| -> Result<i64, String> {
            args.get(i)
                .ok_or_else(|| format!("{name}() needs more arguments: e.g. {}", example(name)))?
                .replace('_', "")
                .parse::<i64>()
                .map_err(|_| format!("argument {} of '{t}' is not an integer", i + 1))
        };
        let float = |i: usize| -> Result<f64, String> {
            args.get(i)
                .ok_or_else(|| format!("{name}() needs more arguments: e.g. {}", example(name)))?
                .parse::<f64>()
                .map_err(|_| format!("argument {} of '{t}' is not a number", i + 1))
        };
        let arity = |n: usize| -> Result<(), String> {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "'{t}' takes {n} argument(s): e.g. {}",
                    example(name)
                ))
            }
        };
        let range = || -> Result<(i64, i64), String> {
            let (a, b) = (int(0)?, int(1)?);
            if a > b {
                return Err(format!(
                    "'{t}': the lower bound {a} is above the upper bound {b}"
                ));
            }
            Ok((a, b))
        };
        match name.trim() {
            "uniform" => {
                arity(2)?;
                let (a, b) = range()?;
                Ok(Generator::Uniform(a, b))
            }
            "zipf" => {
                arity(3)?;
                let (a, b) = range()?;
                let s = float(2)?;
                if !(s.is_finite() && s > 0.0) {
                    return Err(format!("'{t}': the exponent must be a positive number"));
                }
                let n = u64::try_from(i128::from(b) - i128::from(a) + 1)
                    .ok()
                    .filter(|n| *n <= 1 << 53)
                    .ok_or_else(|| format!("'{t}': the range is too wide (at most 2^53 values)"))?;
                let dist = Zipf::new(n, s).map_err(|e| format!("'{t}': {e}"))?;
                Ok(Generator::Zipf {
                    low: a,
                    high: b,
                    dist,
                })
            }
            "gaussian" => {
                arity(2)?;
                let (a, b) = range()?;
                let mean = (a as f64 + b as f64) / 2.0;
                let sd = ((b as f64 - a as f64) / 6.0).max(f64::MIN_POSITIVE);
                let dist = Normal::new(mean, sd).map_err(|e| format!("'{t}': {e}"))?;
                Ok(Generator::Gaussian {
                    low: a,
                    high: b,
                    dist,
                })
            }
            "exponential" => {
                arity(2)?;
                let (a, b) = range()?;
                let mean = ((b as f64 - a as f64) / 5.0).max(1e-9);
                let dist = Exp::new(1.0 / mean).map_err(|e| format!("'{t}': {e}"))?;
                Ok(Generator::Exponential {
                    low: a,
                    high: b,
                    dist,
                })
            }
            "seq" => {
                if args.len() > 1 {
                    return Err(format!(
                        "'{t}' takes at most 1 argument (the first value): e.g. seq() or seq(1000)"
                    ));
                }
                let start = if args.is_empty() { 1 } else { int(0)? };
                Ok(Generator::Seq {
                    next: Arc::new(AtomicI64::new(start)),
                    step: 1,
                })
            }
            "text" => {
                arity(1)?;
                let n = int(0)?;
                if !(0..=1_000_000).contains(&n) {
                    return Err(format!("'{t}': the length must be between 0 and 1000000"));
                }
                Ok(Generator::Text(n as usize))
            }
            "choice" => {
                if args.is_empty() {
                    return Err(format!(
                        "'{t}' needs at least one value: e.g. {}",
                        example(name)
                    ));
                }
                Ok(Generator::Choice(args.iter().map(|a| literal(a)).collect()))
            }
            "now" => {
                arity(0)?;
                Ok(Generator::Now)
            }
            other => Err(format!(
                "unknown generator '{other}': expected one of {}",
                GENERATORS.join(", ")
            )),
        }
    }

    /// Draw one value.
    pub fn sample(&self, rng: &mut SmallRng) -> Value {
        match self {
            Generator::Uniform(a, b) => Value::Int(rng.gen_range(*a..=*b)),
            Generator::Zipf { low, high, dist } => {
                let k = dist.sample(rng) as i64;
                Value::Int(low.saturating_add(k.saturating_sub(1)).clamp(*low, *high))
            }
            Generator::Gaussian { low, high, dist } => {
                Value::Int((dist.sample(rng).round() as i64).clamp(*low, *high))
            }
            Generator::Exponential { low, high, dist } => {
                let k = dist.sample(rng).floor() as i64;
                Value::Int(low.saturating_add(k).clamp(*low, *high))
            }
            Generator::Seq { next, step } => Value::Int(next.fetch_add(*step, Ordering::Relaxed)),
            Generator::Text(n) => Value::Text(
                Alphanumeric
                    .sample_iter(rng)
                    .take(*n)
                    .map(char::from)
                    .collect(),
            ),
            Generator::Choice(values) => values[rng.gen_range(0..values.len())].clone(),
            Generator::Now => Value::now(),
        }
    }
}

impl Generator {
    /// The generator of shard `index` of `count`: a `seq()` hands out `start + index`,
    /// then every `count`th value (a fresh counter); the others are unchanged.
    pub fn for_shard(&self, index: u32, count: u32) -> Generator {
        match self {
            Generator::Seq { next, step } => {
                let start = next.load(Ordering::Relaxed);
                Generator::Seq {
                    next: Arc::new(AtomicI64::new(
                        start.saturating_add(i64::from(index).saturating_mul(*step)),
                    )),
                    step: step.saturating_mul(i64::from(count)),
                }
            }
            other => other.clone(),
        }
    }

    /// Values that stand for everything it can draw: its bounds, every choice, a text of its
    /// length. Preflight binds them to the statement's parameter types, so a range that
    /// cannot fit is found before the run.
    pub fn extremes(&self) -> Vec<Value> {
        match self {
            Generator::Uniform(a, b) => vec![Value::Int(*a), Value::Int(*b)],
            Generator::Zipf { low, high, .. }
            | Generator::Gaussian { low, high, .. }
            | Generator::Exponential { low, high, .. } => vec![Value::Int(*low), Value::Int(*high)],
            Generator::Seq { next, .. } => vec![Value::Int(next.load(Ordering::Relaxed))],
            Generator::Text(n) => vec![Value::Text("x".repeat((*n).min(64)))],
            Generator::Choice(values) => values.clone(),
            Generator::Now => vec![Value::now()],
        }
    }
}

fn example(name: &str) -> &'static str {
    GENERATORS
        .iter()
        .find(|g| g.starts_with(name))
        .copied()
        .unwrap_or("uniform(1, 1000)")
}

/// A literal in `choice(...)`: an integer, a number, or a string (quotes optional).
fn literal(text: &str) -> Value {
    let t = text.trim();
    if let Ok(i) = t.parse::<i64>() {
        Value::Int(i)
    } else if let Ok(f) = t.parse::<f64>() {
        Value::Float(f)
    } else {
        Value::Text(t.trim_matches(|c| c == '\'' || c == '"').to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn shards_of_a_seq_never_collide_and_cover_every_value() {
        let g = Generator::parse("seq(100)").unwrap();
        let mut r = rng();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..3 {
            let s = g.for_shard(i, 3);
            for _ in 0..5 {
                let Value::Int(v) = s.sample(&mut r) else {
                    panic!("seq gives integers")
                };
                assert!(seen.insert(v), "{v} handed out twice");
            }
        }
        assert_eq!(seen, (100..115).collect());
    }

    fn rng() -> SmallRng {
        SmallRng::seed_from_u64(1)
    }

    fn ints(g: &Generator, n: usize) -> Vec<i64> {
        let mut r = rng();
        (0..n)
            .map(|_| match g.sample(&mut r) {
                Value::Int(v) => v,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn every_listed_example_parses() {
        for g in GENERATORS {
            Generator::parse(g).unwrap_or_else(|e| panic!("{g}: {e}"));
        }
    }

    #[test]
    fn ranges_hold() {
        for spec in [
            "uniform(5, 10)",
            "zipf(5, 10, 1.1)",
            "gaussian(5, 10)",
            "exponential(5, 10)",
        ] {
            let v = ints(&Generator::parse(spec).unwrap(), 5000);
            assert!(v.iter().all(|x| (5..=10).contains(x)), "{spec}");
            assert!(v.contains(&5), "{spec} never drew its low end");
        }
    }

    #[test]
    fn zipf_favours_low_values() {
        let v = ints(&Generator::parse("zipf(1, 1000, 1.2)").unwrap(), 10_000);
        let ones = v.iter().filter(|x| **x == 1).count();
        let hundreds = v.iter().filter(|x| **x == 100).count();
        assert!(ones > 10 * hundreds.max(1), "{ones} vs {hundreds}");
    }

    #[test]
    fn seq_is_shared_and_unique() {
        let g = Generator::parse("seq(10)").unwrap();
        let g2 = g.clone();
        let mut r = rng();
        let a = g.sample(&mut r);
        let b = g2.sample(&mut r);
        assert_eq!((a, b), (Value::Int(10), Value::Int(11)));
    }

    #[test]
    fn same_seed_same_values() {
        let g = Generator::parse("uniform(1, 1000000)").unwrap();
        assert_eq!(ints(&g, 10), ints(&g, 10));
    }

    #[test]
    fn errors_say_what_was_expected() {
        assert!(Generator::parse("normal(1,2)")
            .unwrap_err()
            .contains("unknown generator 'normal'"));
        assert!(Generator::parse("uniform(1)")
            .unwrap_err()
            .contains("uniform(1, 1000)"));
        assert!(Generator::parse("uniform(9, 1)")
            .unwrap_err()
            .contains("above"));
        assert!(Generator::parse("text(x)")
            .unwrap_err()
            .contains("not an integer"));
        assert!(Generator::parse("42")
            .unwrap_err()
            .contains("not a generator"));
        let t = Generator::parse("text(12)").unwrap();
        match t.sample(&mut rng()) {
            Value::Text(s) => assert_eq!(s.len(), 12),
            other => panic!("{other:?}"),
        }
        match Generator::parse("choice('a', 2)").unwrap() {
            Generator::Choice(v) => assert_eq!(v, [Value::Text("a".into()), Value::Int(2)]),
            other => panic!("{other:?}"),
        }
    }
}
