#!/usr/bin/env python3
"""What the replication sampler costs.

1. insert-only tps with sample_every = off, 100ms and 10ms, run alternately on the same lab,
   medians and ratios against "off" (noisy on a shared 2-core machine: several percent per run).
2. The CPU the sampler itself uses, measured directly: an idle run (one client, 1 tx/s) with each
   setting, CPU seconds of the servers (the postmasters and all their processes, exited ones
   included) plus the pgbench-repl process, per second of run, minus the same with sampling off.

    python3 benches/sampler_cost.py [--seconds 10] [--rounds 5] [--workload workloads/insert-only.toml]
"""
import argparse, json, os, resource, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "pgbench-repl")
LAB = os.path.join(ROOT, ".pgbench-repl", "bench-lab")
SETTINGS = ["off", "100ms", "10ms"]


def run(workload, every, seconds, out):
    subprocess.run([BIN, "run", workload, "--quiet", "--duration", f"{seconds}s", "--set", f"run.sample_every={every}",
                    "--out", out, "--dir", LAB], check=True, capture_output=True)
    return json.load(open(os.path.join(out, "summary.json")))["total"]["tps"]


CLK = os.sysconf("SC_CLK_TCK")


def stat_cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    # utime, stime, cutime, cstime are fields 14-17 (1-based); after the comm they start at index 11.
    return [int(x) / CLK for x in f[11:15]]


def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p))
            except OSError:
                pass
    return out


def servers_cpu():
    total = 0.0
    for node in os.listdir(os.path.join(LAB, "data")):
        pid = int(open(os.path.join(LAB, "data", node, "postmaster.pid")).readline())
        u, s_, cu, cs = stat_cpu(pid)
        total += u + s_ + cu + cs
        for c in children(pid):
            try:
                cu_, cs_ = stat_cpu(c)[:2]
                total += cu_ + cs_
            except OSError:
                pass
    return total


IDLE = """name = "idle"
[run]
duration = "{seconds}s"
[[load]]
name = "trickle"
clients = 1
rate = 1
mix = {{ ping = 1 }}
[[transaction]]
name = "ping"
sql = "SELECT 1"
"""


def idle_cpu(every, seconds, tmp, i):
    path = os.path.join(tmp, "idle.toml")
    open(path, "w").write(IDLE.format(seconds=seconds))
    before_s = servers_cpu()
    before_c = resource.getrusage(resource.RUSAGE_CHILDREN)
    run(path, every, seconds, os.path.join(tmp, f"idle-{every}-{i}"))
    after_c = resource.getrusage(resource.RUSAGE_CHILDREN)
    tool = (after_c.ru_utime - before_c.ru_utime) + (after_c.ru_stime - before_c.ru_stime)
    return (servers_cpu() - before_s) / seconds, tool / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workload", default=os.path.join(ROOT, "workloads", "insert-only.toml"))
    ap.add_argument("--cpu-only", action="store_true", help="only the idle-lab CPU measurement")
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], check=True)
    subprocess.run([BIN, "cluster", "up", "--dir", LAB, "--port", "56432"], check=True)
    tps = {s: [] for s in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        run(a.workload, "off", 1, os.path.join(tmp, "setup"))
        for i in range(0 if a.cpu_only else a.rounds):
            for s in SETTINGS:
                tps[s].append(run(a.workload, s, a.seconds, os.path.join(tmp, f"{s}-{i}")))
            print(f"round {i + 1}: " + ", ".join(f"{s} {tps[s][-1]:.0f}" for s in SETTINGS), file=sys.stderr)
        cpu = {s: [] for s in SETTINGS}
        for i in range(3):
            for s in SETTINGS:
                cpu[s].append(idle_cpu(s, a.seconds, tmp, i))
    if not a.cpu_only:
        throughput_table(a, tps)
    cpu_table(a, cpu)


def throughput_table(a, tps):
    base = statistics.median(tps["off"])
    print(f"\n{os.path.basename(a.workload)}, {a.seconds} s per run, {a.rounds} rounds alternated, medians\n")
    print("| sample_every | tps | ratio to off | cost |")
    print("|---|---:|---:|---:|")
    for s in SETTINGS:
        m = statistics.median(tps[s])
        print(f"| {s} | {m:.0f} | {m / base:.3f} | {(1 - m / base) * 100:+.1f}% |")


def cpu_table(a, cpu):
    total = {s: [sv + t for sv, t in cpu[s]] for s in SETTINGS}
    off = statistics.median(total["off"])
    print(f"\nCPU used by sampling, idle lab, {a.seconds} s runs, medians of 3 (2 cores = 200%)\n")
    print("| sample_every | servers | tool | CPU (servers + tool) | above off |")
    print("|---|---:|---:|---:|---:|")
    for s in SETTINGS:
        m = statistics.median(total[s])
        sv = statistics.median(x[0] for x in cpu[s])
        t = statistics.median(x[1] for x in cpu[s])
        print(f"| {s} | {sv * 100:.2f}% | {t * 100:.2f}% | {m * 100:.2f}% | {(m - off) * 100:+.2f}% of one core |")


if __name__ == "__main__":
    main()

