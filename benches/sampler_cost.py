#!/usr/bin/env python3
"""What the replication sampler costs: insert-only tps with sample_every = off, 100ms and 10ms,
run alternately on the same lab, medians and ratios against "off".

    python3 benches/sampler_cost.py [--seconds 10] [--rounds 5] [--workload workloads/insert-only.toml]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "pgbench-repl")
LAB = os.path.join(ROOT, ".pgbench-repl", "bench-lab")
SETTINGS = ["off", "100ms", "10ms"]


def run(workload, every, seconds, out):
    subprocess.run([BIN, "run", workload, "--quiet", "--duration", f"{seconds}s", "--set", f"run.sample_every={every}",
                    "--out", out, "--dir", LAB], check=True, capture_output=True)
    return json.load(open(os.path.join(out, "summary.json")))["total"]["tps"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workload", default=os.path.join(ROOT, "workloads", "insert-only.toml"))
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], check=True)
    subprocess.run([BIN, "cluster", "up", "--dir", LAB, "--port", "56432"], check=True)
    tps = {s: [] for s in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        run(a.workload, "off", 1, os.path.join(tmp, "setup"))
        for i in range(a.rounds):
            for s in SETTINGS:
                tps[s].append(run(a.workload, s, a.seconds, os.path.join(tmp, f"{s}-{i}")))
            print(f"round {i + 1}: " + ", ".join(f"{s} {tps[s][-1]:.0f}" for s in SETTINGS), file=sys.stderr)
    base = statistics.median(tps["off"])
    print(f"\n{os.path.basename(a.workload)}, {a.seconds} s per run, {a.rounds} rounds alternated, medians\n")
    print("| sample_every | tps | ratio to off | cost |")
    print("|---|---:|---:|---:|")
    for s in SETTINGS:
        m = statistics.median(tps[s])
        print(f"| {s} | {m:.0f} | {m / base:.3f} | {(1 - m / base) * 100:+.1f}% |")


if __name__ == "__main__":
    main()
