//! A shard's part of the plan: its share of every group's clients, rate and stop_after, its own
//! stride of every `seq()`, and (but for shard 0) no setup, sampler, events or server settings.

use super::ShardSpec;
use crate::workload::{Body, Workload};

/// Shard `index`'s part of `total` split `count` ways: the parts differ by at most one, the
/// lower indexes take the remainder, and they add up to `total`.
pub fn share(total: u64, index: u32, count: u32) -> u64 {
    let (i, n) = (u64::from(index), u64::from(count.max(1)));
    total / n + u64::from(i < total % n)
}

/// The plan shard `spec` runs. An error says why the workload cannot be split so.
pub fn split_plan(plan: &Workload, spec: ShardSpec) -> Result<Workload, String> {
    if plan.sweep.is_some() {
        return Err(format!(
            "--shard {spec}: a workload with [sweep] cannot run as shards (each step judges the \
             whole load, measured in one process); run the sweep from one machine"
        ));
    }
    if plan.matrix.is_some() {
        return Err(format!(
            "--shard {spec}: a workload with [matrix] cannot run as shards (its combinations \
             change the cluster between runs); shard one combination at a time (--set)"
        ));
    }
    let mut out = plan.clone();
    out.groups = plan
        .groups
        .iter()
        .filter_map(|g| {
            let clients = share(u64::from(g.clients), spec.index, spec.count) as u32;
            if clients == 0 {
                return None;
            }
            let mut g = g.clone();
            // The shards that have clients of this group: the lowest indexes.
            let with_clients = spec.count.min(g.clients);
            g.stop_after = g.stop_after.map(|s| share(s, spec.index, with_clients));
            g.rate = g
                .rate
                .map(|r| r * f64::from(clients) / f64::from(g.clients));
            g.first_client_id += (0..spec.index)
                .map(|j| share(u64::from(g.clients), j, spec.count) as u32)
                .sum::<u32>();
            g.clients = clients;
            Some(g)
        })
        .collect();
    if out.groups.is_empty() {
        let most = plan.groups.iter().map(|g| g.clients).max().unwrap_or(0);
        return Err(format!(
            "--shard {spec}: this shard would have no clients: the largest [[load]] group has \
             {most}, so at most {most} shards can run this workload"
        ));
    }
    for t in &mut out.transactions {
        for (_, g) in &mut t.params {
            *g = g.for_shard(spec.index, spec.count);
        }
        if let Body::Copy(c) = &mut t.body {
            for (_, g) in &mut c.columns {
                *g = g.for_shard(spec.index, spec.count);
            }
        }
    }
    if !spec.is_first() {
        out.setup_sql = None;
        out.events.clear();
        out.sample_every = None;
        out.heartbeat_every = None;
        out.server_settings.clear();
        out.verify = false;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for total in [0u64, 1, 2, 7, 10, 64, 1001] {
            for count in 1..=9u32 {
                let parts: Vec<u64> = (0..count).map(|i| share(total, i, count)).collect();
                assert_eq!(parts.iter().sum::<u64>(), total, "{total} in {count}");
                let (lo, hi) = (parts.iter().min().unwrap(), parts.iter().max().unwrap());
                assert!(hi - lo <= 1, "{parts:?}");
            }
        }
    }
}
