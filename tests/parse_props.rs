//! Property tests: no workload file and no generator argument makes the parser or a generator
//! panic; every refusal is an error that names the file.

use pgbench_repl::config::load_workload;
use pgbench_repl::workload::generators::Generator;
use proptest::prelude::*;
use rand::SeedableRng;

const TEMPLATE: &str = r#"name = "p"
[run]
duration = "DURATION"
warmup = "WARMUP"
sample_every = "EVERY"
seed = SEED
[[load]]
name = "g"
clients = CLIENTS
rate = RATE
mix = { a = WEIGHT }
stop_after = STOP
max_tries = TRIES
[[transaction]]
name = "a"
params = { x = "GEN" }
sql = "SELECT $x"
[[event]]
at = "AT"
action = "exec"
command = "true"
for = "FOR"
"#;

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        Just("1e400".to_string()),
        Just("-0".to_string()),
        Just("18446744073709551616".to_string()),
        (0u32..5).prop_map(|v| v.to_string()),
    ]
}

fn duration() -> impl Strategy<Value = String> {
    let units = prop_oneof![
        Just("us"),
        Just("ms"),
        Just("s"),
        Just("m"),
        Just("h"),
        Just(""),
        Just("x")
    ];
    (number(), units).prop_map(|(n, u)| format!("{n}{u}"))
}

fn generator() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("uniform"),
        Just("zipf"),
        Just("gaussian"),
        Just("exponential"),
        Just("seq"),
        Just("text"),
        Just("choice"),
        Just("now"),
        Just("nope")
    ];
    (name, prop::collection::vec(number(), 0..4))
        .prop_map(|(n, args)| format!("{n}({})", args.join(", ")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_parser_never_panics(
        d in duration(), w in duration(), e in duration(), at in duration(), f in duration(),
        seed in number(), clients in number(), rate in number(), weight in number(),
        stop in number(), tries in number(), gen in generator(),
    ) {
        let text = TEMPLATE
            .replace("DURATION", &d).replace("WARMUP", &w).replace("EVERY", &e)
            .replace("SEED", &seed).replace("CLIENTS", &clients).replace("RATE", &rate)
            .replace("WEIGHT", &weight).replace("STOP", &stop).replace("TRIES", &tries)
            .replace("GEN", &gen).replace("AT", &at).replace("FOR", &f);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, &text).unwrap();
        if let Err(e) = load_workload(&path, &[]) {
            prop_assert!(format!("{e:#}").contains("p.toml"), "{e:#}");
        }
    }

    #[test]
    fn generators_never_panic_when_drawn(gen in generator()) {
        if let Ok(g) = Generator::parse(&gen) {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
            for _ in 0..50 {
                let _ = g.sample(&mut rng);
            }
            let _ = g.extremes();
        }
    }
}
