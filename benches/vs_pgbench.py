#!/usr/bin/env python3
"""pgbench-repl against pgbench on the same lab, same SQL, same client count.

Runs A (pgbench) and B (pgbench-repl) alternately, ROUNDS times each, for each script, and
reports medians and the ratio pgbench-repl / pgbench for throughput and for client CPU per
transaction. The machine is shared and noisy: only the ratios measured side by side mean
anything.

    python3 benches/vs_pgbench.py [--seconds 10] [--rounds 5] [--clients 8]
"""
import argparse, json, os, re, resource, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "pgbench-repl")
LAB = os.path.join(ROOT, ".pgbench-repl", "bench-lab")
PORT = "56432"

SCRIPTS = {
    # name: (pgbench arguments, workload file)
    "select-only": (["-S"], "workloads/select-only.toml"),
    "insert-only": (["-f", "INSERT"], "workloads/insert-only.toml"),
    "tpcb-like": ([], "workloads/tpcb-like.toml"),
}
INSERT_SCRIPT = """\\set aid random(1, 100000)
\\set bid random(1, 1)
\\set tid random(1, 10)
\\set delta random(-5000, 5000)
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
"""


def sh(args, env=None, capture=True):
    return subprocess.run(args, env=env, check=True, text=True, capture_output=capture)


def cpu_of(fn):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = fn()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return result, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def lab_env():
    out = sh([BIN, "cluster", "env", "primary", "--dir", LAB]).stdout
    env = dict(os.environ)
    for line in out.splitlines():
        m = re.match(r"export (\w+)=(.*)", line)
        if m:
            env[m.group(1)] = m.group(2).strip("'")
    return env


def pgbench_dir():
    for d in sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: -int(v) if v.isdigit() else 0):
        p = f"/usr/lib/postgresql/{d}/bin/pgbench"
        if os.path.exists(p):
            return p
    return "pgbench"


def run_pgbench(pgbench, args, env, seconds, clients, script_file):
    args = [a if a != "INSERT" else script_file for a in args]
    cmd = [pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds)] + args
    (out, cpu) = cpu_of(lambda: sh(cmd, env=env))
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout).group(1))
    txs = int(re.search(r"number of transactions actually processed: (\d+)", out.stdout).group(1))
    return tps, cpu / max(txs, 1)


def run_repl(workload, seconds, clients, tmp, i):
    out_dir = os.path.join(tmp, f"{os.path.basename(workload)}-{i}")
    cmd = [BIN, "run", os.path.join(ROOT, workload), "--quiet", "--duration", f"{seconds}s",
           "--set", f"load.clients.clients={clients}", "--out", out_dir, "--dir", LAB]
    (_, cpu) = cpu_of(lambda: sh(cmd))
    summary = json.load(open(os.path.join(out_dir, "summary.json")))
    txs = summary["total"]["ok"]
    return summary["total"]["tps"], cpu / max(txs, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--only", nargs="*", default=list(SCRIPTS))
    a = ap.parse_args()
    sh(["cargo", "build", "--release", "--quiet"], capture=False)
    sh([BIN, "cluster", "up", "--dir", LAB, "--port", PORT], capture=False)
    env = lab_env()
    pgbench = pgbench_dir()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script_file = os.path.join(tmp, "insert.sql")
        open(script_file, "w").write(INSERT_SCRIPT)
        for name in a.only:
            pg_args, workload = SCRIPTS[name]
            run_repl(workload, 1, a.clients, tmp, "setup")  # creates pgbench's tables if missing
            A, B = [], []
            for i in range(a.rounds):
                A.append(run_pgbench(pgbench, pg_args, env, a.seconds, a.clients, script_file))
                B.append(run_repl(workload, a.seconds, a.clients, tmp, i))
                print(f"{name} round {i + 1}: pgbench {A[-1][0]:.0f} tps, pgbench-repl {B[-1][0]:.0f} tps", file=sys.stderr)
            tps_a = statistics.median(x[0] for x in A)
            tps_b = statistics.median(x[0] for x in B)
            cpu_a = statistics.median(x[1] for x in A) * 1e6
            cpu_b = statistics.median(x[1] for x in B) * 1e6
            rows.append((name, tps_a, tps_b, tps_b / tps_a, cpu_a, cpu_b, cpu_b / cpu_a))
    print(f"\n{a.clients} clients, {a.seconds} s per run, {a.rounds} rounds alternated, medians\n")
    print("| script | pgbench tps | pgbench-repl tps | ratio | pgbench CPU us/tx | pgbench-repl CPU us/tx | CPU ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.0f} | {r[2]:.0f} | {r[3]:.2f} | {r[4]:.1f} | {r[5]:.1f} | {r[6]:.2f} |")


if __name__ == "__main__":
    main()
