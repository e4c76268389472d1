//! Property test of the shards' plans: for any workload and shard count, the shards' clients,
//! rates and stop_after add up to the workload's exactly, every `$client_id` of the whole run
//! belongs to exactly one shard, and no two shards draw the same `seq()` value.

use pgbench_repl::config::load_workload;
use pgbench_repl::shard::{split_plan, ShardSpec};
use proptest::prelude::*;
use rand::SeedableRng;
use std::collections::BTreeSet;

fn workload(clients: (u32, u32), rate: f64, stop: u64) -> String {
    format!(
        r#"name = "split"
[[load]]
name = "open"
clients = {}
rate = {rate}
mix = {{ a = 1 }}
stop_after = {stop}
[[load]]
name = "closed"
clients = {}
mix = {{ a = 1 }}
[[transaction]]
name = "a"
params = {{ id = "seq(100)" }}
sql = "SELECT $id"
"#,
        clients.0, clients.1
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shares_add_up_and_never_collide(
        open in 1u32..40,
        closed in 1u32..40,
        rate in 1.0f64..5000.0,
        stop in 1u64..100_000,
        count in 1u32..12,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, workload((open, closed), rate, stop)).unwrap();
        let plan = load_workload(&path, &[]).unwrap();
        let mut clients = [0u32; 2];
        let mut rates = 0.0;
        let mut stops = 0u64;
        let mut ids = BTreeSet::new();
        let mut seqs = BTreeSet::new();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        for index in 0..count {
            let shard = match split_plan(&plan, ShardSpec { index, count }) {
                Ok(s) => s,
                Err(e) => {
                    // Only a shard beyond the largest group's clients has none.
                    prop_assert!(index >= open.max(closed), "{e}");
                    continue;
                }
            };
            for g in &shard.groups {
                let gi = usize::from(g.name == "closed");
                clients[gi] += g.clients;
                if let Some(r) = g.rate {
                    rates += r;
                }
                stops += g.stop_after.unwrap_or(0);
                for k in 0..g.clients {
                    prop_assert!(ids.insert(g.first_client_id + k), "client id twice");
                }
            }
            let (_, id) = &shard.transactions[0].params[0];
            for _ in 0..50 {
                let v = format!("{:?}", id.sample(&mut rng));
                prop_assert!(seqs.insert(v), "a seq() value drawn by two shards");
            }
        }
        prop_assert_eq!(clients, [open, closed]);
        prop_assert!((rates - rate).abs() <= rate * 1e-9, "{} vs {}", rates, rate);
        prop_assert_eq!(stops, stop);
        // The ids are those of the whole run: 1 to the number of clients.
        let all: BTreeSet<u32> = (1..=open + closed).collect();
        prop_assert_eq!(ids, all);
    }
}
