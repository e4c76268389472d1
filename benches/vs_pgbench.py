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
    # name: (pgbench arguments, workload file, pgbench-repl --set overrides)
    "select-only": (["-S"], "workloads/select-only.toml", []),
    "insert-only": (["-f", "INSERT"], "workloads/insert-only.toml", []),
    "tpcb-like": ([], "workloads/tpcb-like.toml", []),
    # pgbench's \startpipeline against pipeline = true, the same five statements.
    "tpcb-pipelined": (["-f", "PIPELINE"], "workloads/tpcb-like.toml",
                       ["transaction.tpcb_like.pipeline=true"]),
}
PIPELINE_SCRIPT = """\\set aid random(1, 100000)
\\set bid random(1, 1)
\\set tid random(1, 10)
\\set delta random(-5000, 5000)
\\startpipeline
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
\\endpipeline
"""
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


def node_env(node):
    out = sh([BIN, "cluster", "env", node, "--dir", LAB]).stdout
    env = dict(os.environ)
    for line in out.splitlines():
        m = re.match(r"export (\w+)=(.*)", line)
        if m:
            env[m.group(1)] = m.group(2).strip("'")
    return env


def lab_env():
    return node_env("primary")


def pgbench_dir():
    for d in sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: -int(v) if v.isdigit() else 0):
        p = f"/usr/lib/postgresql/{d}/bin/pgbench"
        if os.path.exists(p):
            return p
    return "pgbench"


def run_pgbench(pgbench, args, env, seconds, clients, script_file, pipeline_file):
    args = [{"INSERT": script_file, "PIPELINE": pipeline_file}.get(a, a) for a in args]
    cmd = [pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds)] + args
    (out, cpu) = cpu_of(lambda: sh(cmd, env=env))
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout).group(1))
    txs = int(re.search(r"number of transactions actually processed: (\d+)", out.stdout).group(1))
    return tps, cpu / max(txs, 1)


def run_repl(workload, seconds, clients, tmp, i, sets=()):
    out_dir = os.path.join(tmp, f"{os.path.basename(workload)}-{i}-{len(sets)}")
    cmd = [BIN, "run", os.path.join(ROOT, workload), "--quiet", "--duration", f"{seconds}s",
           "--set", f"load.clients.clients={clients}", "--out", out_dir, "--dir", LAB]
    for s in sets:
        cmd += ["--set", s]
    (_, cpu) = cpu_of(lambda: sh(cmd))
    summary = json.load(open(os.path.join(out_dir, "summary.json")))
    txs = summary["total"]["ok"]
    return summary["total"]["tps"], cpu / max(txs, 1)


BULK_WORKLOAD = """name = "bulk-1m"
[run]
sample_every = "off"
[setup]
sql = "CREATE TABLE IF NOT EXISTS bench_bulk (id bigint, n int, pad text); TRUNCATE bench_bulk"
[[load]]
name = "copy"
clients = 1
mix = { load = 1 }
stop_after = 1000000
[[transaction]]
name = "load"
copy = { table = "bench_bulk", rows_per_tx = 1000000, columns = { id = "seq()", n = "uniform(1, 1000000)", pad = "text(60)" } }
"""


def bulk(a, env, tmp):
    """1M rows (bigint, int, text(60)) by COPY: pgbench-repl generating and streaming them
    against psql \\copy of a file holding the same shape of rows (the file made beforehand:
    psql's side is only the load). Whole commands, wall time, alternated, medians."""
    import random, string, time
    data = os.path.join(tmp, "bulk.csv")
    rnd = random.Random(1)
    with open(data, "w") as f:
        for i in range(1, 1_000_001):
            pad = "".join(rnd.choices(string.ascii_letters, k=60))
            f.write(f"{i},{rnd.randint(1, 1000000)},{pad}\n")
    wl = os.path.join(tmp, "bulk.toml")
    open(wl, "w").write(BULK_WORKLOAD)
    psql = ["psql", "-q", "-c", "CREATE TABLE IF NOT EXISTS bench_bulk (id bigint, n int, pad text); TRUNCATE bench_bulk",
            "-c", f"\\copy bench_bulk FROM '{data}' CSV"]
    A, B = [], []
    for i in range(a.rounds):
        t = time.monotonic(); sh(psql, env=env); A.append(time.monotonic() - t)
        t = time.monotonic()
        sh([BIN, "run", wl, "--quiet", "--out", os.path.join(tmp, f"bulk-{i}"), "--dir", LAB])
        B.append(time.monotonic() - t)
        print(f"bulk round {i + 1}: psql \\copy {A[-1]:.2f} s, pgbench-repl {B[-1]:.2f} s", file=sys.stderr)
    a_s, b_s = statistics.median(A), statistics.median(B)
    print(f"\n1M rows by COPY, whole commands, {a.rounds} rounds alternated, medians: "
          f"psql \\copy {a_s:.2f} s, pgbench-repl {b_s:.2f} s, ratio (time) {b_s / a_s:.2f}")


def scale_run(clients, seconds, out_dir):
    """One select-only run of pgbench-repl: (CPU seconds of the whole process, peak RSS in kB,
    ok transactions, tps)."""
    cmd = [BIN, "run", os.path.join(ROOT, "workloads/select-only.toml"), "--quiet", "--duration",
           f"{seconds}s", "--set", f"load.clients.clients={clients}",
           "--set", 'run.server_settings={max_connections = "1100"}', "--out", out_dir, "--dir", LAB]
    probe = ("import resource, subprocess, sys, json; "
             "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
             "r = resource.getrusage(resource.RUSAGE_CHILDREN); "
             "print(json.dumps([r.ru_utime + r.ru_stime, r.ru_maxrss]))")
    cpu, rss_kb = json.loads(sh([sys.executable, "-c", probe] + cmd).stdout)
    summary = json.load(open(os.path.join(out_dir, "summary.json")))
    return cpu, rss_kb, max(summary["total"]["ok"], 1), summary["total"]["tps"]


def set_max_connections(value):
    """ALTER SYSTEM max_connections on every node, or RESET it with None, and restart the lab.
    A standby may never run with less than the primary's value (recovery stops), so raising
    sets every node at once, and lowering does the primary first, lets the standbys replay
    that, then lowers them."""
    nodes = [n["name"] for n in json.load(open(os.path.join(LAB, "state.json")))["nodes"]]
    sql = "ALTER SYSTEM RESET max_connections" if value is None else f"ALTER SYSTEM SET max_connections = {value}"
    phases = [nodes] if value is not None else [nodes[:1], nodes[1:]]
    for phase in phases:
        for node in phase:
            sh(["psql", "-q", "-c", sql], env=node_env(node))
        sh([BIN, "cluster", "down", "--dir", LAB])
        sh([BIN, "cluster", "up", "--dir", LAB])
        # cluster up returns once every standby streams; give them a moment to replay.
        import time
        time.sleep(2)


def pgbench_scale_run(env, clients, seconds):
    """pgbench -S at `clients`: (CPU seconds, transactions, tps)."""
    cmd = [pgbench_dir(), "-n", "-S", "-M", "prepared", "-j", "2", "-c", str(clients), "-T", str(seconds)]
    (out, cpu) = cpu_of(lambda: sh(cmd, env=env))
    txs = int(re.search(r"number of transactions actually processed: (\d+)", out.stdout).group(1))
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout).group(1))
    return cpu, txs, tps


def scale_marginal(a, tmp):
    """The scale curve of both tools, alternated per client count: each runs `seconds` and 3x
    `seconds`; the CPU difference over the transaction difference is the steady-state CPU per
    transaction, the rest the run's fixed cost (connecting every client, start-up, results)."""
    run_repl("workloads/select-only.toml", 1, 8, tmp, "setup")  # pgbench's tables, if missing
    set_max_connections(1100)
    env = lab_env()
    try:
        print("\n| clients | pgbench tps | pgbench-repl tps | pgbench CPU us/tx (whole run) | "
              "pgbench-repl CPU us/tx (whole run) | pgbench marginal | pgbench-repl marginal | "
              "marginal ratio | pgbench fixed s | pgbench-repl fixed s | pgbench-repl peak RSS MB |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for clients in a.scale:
            a1, at1, _ = pgbench_scale_run(env, clients, a.seconds)
            b1, rss1, bt1, _ = scale_run(clients, a.seconds, os.path.join(tmp, f"m1-{clients}"))
            a3, at3, atps = pgbench_scale_run(env, clients, 3 * a.seconds)
            b3, rss3, bt3, btps = scale_run(clients, 3 * a.seconds, os.path.join(tmp, f"m3-{clients}"))
            am = (a3 - a1) / max(at3 - at1, 1)
            bm = (b3 - b1) / max(bt3 - bt1, 1)
            print(f"| {clients} | {atps:.0f} | {btps:.0f} | {a3 / at3 * 1e6:.1f} | {b3 / bt3 * 1e6:.1f} | "
                  f"{am * 1e6:.1f} | {bm * 1e6:.1f} | {bm / am:.2f} | {a1 - am * at1:.2f} | "
                  f"{b1 - bm * bt1:.2f} | {max(rss1, rss3) / 1024:.1f} |", flush=True)
    finally:
        set_max_connections(None)


def scale(a, tmp):
    """Client CPU per transaction and peak RSS of pgbench-repl from 8 to 512 clients
    (select-only), and the RSS with 1,000 clients; the lab's max_connections raised for it.
    With --marginal: both tools, and the steady-state CPU apart from the fixed cost."""
    if a.marginal:
        return scale_marginal(a, tmp)
    print("\n| clients | tps | CPU us/tx | peak RSS MB |\n|---:|---:|---:|---:|")
    for clients in a.scale:
        cpu, rss_kb, txs, tps = scale_run(clients, a.seconds, os.path.join(tmp, f"scale-{clients}"))
        print(f"| {clients} | {tps:.0f} | {cpu / txs * 1e6:.1f} | {rss_kb / 1024:.1f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--only", nargs="*", default=list(SCRIPTS))
    ap.add_argument("--bulk", action="store_true", help="also 1M rows by COPY against psql \\copy")
    ap.add_argument("--marginal", action="store_true",
                    help="with --scale: pgbench too, alternated, each count also 3x as long: the steady-state "
                         "CPU per transaction apart from each run's fixed cost")
    ap.add_argument("--scale", nargs="*", type=int, default=[],
                    help="also the client-count curve, e.g. --scale 8 64 256 512 1000")
    a = ap.parse_args()
    sh(["cargo", "build", "--release", "--quiet"], capture=False)
    sh([BIN, "cluster", "up", "--dir", LAB, "--port", PORT], capture=False)
    env = lab_env()
    pgbench = pgbench_dir()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script_file = os.path.join(tmp, "insert.sql")
        open(script_file, "w").write(INSERT_SCRIPT)
        pipeline_file = os.path.join(tmp, "pipeline.sql")
        open(pipeline_file, "w").write(PIPELINE_SCRIPT)
        for name in a.only:
            pg_args, workload, sets = SCRIPTS[name]
            run_repl(workload, 1, a.clients, tmp, "setup")  # creates pgbench's tables if missing
            A, B = [], []
            for i in range(a.rounds):
                # ABBA: the tool that goes first alternates, so neither always follows the
                # other (a run can leave the server warmer or busier for the next).
                first_pgbench = i % 2 == 0
                for tool in (("pgbench", "repl") if first_pgbench else ("repl", "pgbench")):
                    if tool == "pgbench":
                        A.append(run_pgbench(pgbench, pg_args, env, a.seconds, a.clients, script_file, pipeline_file))
                    else:
                        B.append(run_repl(workload, a.seconds, a.clients, tmp, i, sets))
                print(f"{name} round {i + 1}: pgbench {A[-1][0]:.0f} tps {A[-1][1] * 1e6:.1f} us/tx, "
                      f"pgbench-repl {B[-1][0]:.0f} tps {B[-1][1] * 1e6:.1f} us/tx", file=sys.stderr)
            tps_a = statistics.median(x[0] for x in A)
            tps_b = statistics.median(x[0] for x in B)
            cpu_a = statistics.median(x[1] for x in A) * 1e6
            cpu_b = statistics.median(x[1] for x in B) * 1e6
            # The median of each round's own ratio: the two runs of a round are next to each
            # other in time, so drift of the machine over minutes cancels in it.
            paired_tps = statistics.median(b[0] / x[0] for x, b in zip(A, B))
            paired_cpu = statistics.median(b[1] / x[1] for x, b in zip(A, B))
            rows.append((name, tps_a, tps_b, tps_b / tps_a, cpu_a, cpu_b, cpu_b / cpu_a, paired_tps, paired_cpu))
        print(f"\n{a.clients} clients, {a.seconds} s per run, {a.rounds} rounds alternated (ABBA), medians\n")
        print("| script | pgbench tps | pgbench-repl tps | ratio | pgbench CPU us/tx | pgbench-repl CPU us/tx | CPU ratio "
              "| median of per-round tps ratios | median of per-round CPU ratios |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r[0]} | {r[1]:.0f} | {r[2]:.0f} | {r[3]:.2f} | {r[4]:.1f} | {r[5]:.1f} | {r[6]:.2f} "
                  f"| {r[7]:.2f} | {r[8]:.2f} |")
        if a.bulk:
            bulk(a, env, tmp)
        if a.scale:
            scale(a, tmp)


if __name__ == "__main__":
    main()
