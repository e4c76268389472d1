#!/usr/bin/env python3
"""A/B two builds of pgbench-repl on one lab: alternated runs, medians of tps and client CPU.

    target/release/pgbench-repl cluster up --dir .pgbench-repl/bench-lab
    cp target/release/pgbench-repl /tmp/pbr-a    # build A; then change, rebuild, copy to /tmp/pbr-b
    python3 benches/ab_builds.py /tmp/pbr-a /tmp/pbr-b 6 [workloads/select-only.toml]

CPU is user + system of the whole child process per committed transaction (getrusage). The
build that goes first alternates each round, so neither always follows the other.
"""
import json, os, resource, statistics, subprocess, sys, tempfile


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    bins = sys.argv[1:3]
    rounds = int(sys.argv[3])
    workload = sys.argv[4] if len(sys.argv) > 4 else "workloads/select-only.toml"
    res = {b: [] for b in bins}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for i, b in enumerate(bins if r % 2 == 0 else bins[::-1]):
                out = os.path.join(tmp, f"{r}-{i}")
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run([b, "run", workload, "--quiet", "--duration", "5s", "--out", out,
                                "--dir", ".pgbench-repl/bench-lab"], check=True, capture_output=True)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                total = json.load(open(os.path.join(out, "summary.json")))["total"]
                res[b].append((total["tps"], cpu / total["ok"] * 1e6))
                print(f"{b} round {r}: {total['tps']:.0f} tps {cpu / total['ok'] * 1e6:.2f} us/tx", flush=True)
    for b in bins:
        print(f"{b}: median {statistics.median(t for t, _ in res[b]):.0f} tps, "
              f"{statistics.median(c for _, c in res[b]):.2f} us/tx")


if __name__ == "__main__":
    main()
