#!/usr/bin/env python3
"""The lag-accuracy matrix (issue #19, DESIGN section 16): how close each lag measurement
comes to the true one-way delay of the standby's link.

One command:  python3 benches/lag_accuracy.py   (after `cargo build --release`)

For each one-way link delay (0, 5, 20, 50 ms) x write rate (50/s, 1,000/s, and the highest
this machine sustains: a closed-model insert load) x sample_every (10 ms, 100 ms), it runs
an insert-only workload against a lab with one standby and prints, per cell, the median and
p99 of the LSN-timeline lag, the heartbeat lag and PostgreSQL's replay_lag, beside the true
one-way delay.

The true delay is measured through the link, not taken from its setting: the median round
trip of `SELECT 1` over one connection through the standby's link port minus the same
directly to the primary, halved (psql's \\timing, 200 statements each). That is what WAL
crosses on its way to the standby.

Goal: in every cell with at least one write per sample, the LSN-timeline median within
max(1 ms, 5%) of the true delay, the heartbeat's within max(2 ms, 10%). PostgreSQL's
replay_lag is shown as it is: it counts from the primary's flush to the standby's reply,
so it holds the delay twice.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "pgbench-repl")


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def rtt_ms(port, env, n=200):
    """Median round trip of SELECT 1 over one psql connection, in ms."""
    script = "\\timing on\n" + "SELECT 1;\n" * n
    out = run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
               "-d", "postgres"], input=script, env=env).stdout
    times = [float(l.split()[1]) for l in out.splitlines() if l.startswith("Time:")]
    return statistics.median(times)


def workload(rate, every, seconds, clients):
    load = f"clients = {clients}\n" + (f"rate = {rate}\n" if rate else "")
    return f"""name = "lag-accuracy"
[run]
duration = "{seconds}s"
warmup = "1s"
sample_every = "{every}"
heartbeat_every = "100ms"
[setup]
sql = "CREATE TABLE IF NOT EXISTS lag_accuracy (id bigserial PRIMARY KEY, v int NOT NULL); TRUNCATE lag_accuracy"
[[load]]
name = "writers"
{load}mix = {{ ins = 1 }}
[[transaction]]
name = "ins"
sql = "INSERT INTO lag_accuracy (v) VALUES ($client_id)"
"""


def cell(lab, tmp, rate, every, seconds, clients):
    w = os.path.join(tmp, "w.toml")
    with open(w, "w") as f:
        f.write(workload(rate, every, seconds, clients))
    out = os.path.join(tmp, "out")
    shutil.rmtree(out, ignore_errors=True)
    run([BIN, "run", w, "--dir", lab, "--out", out, "--quiet"])
    with open(os.path.join(out, "summary.json")) as f:
        s = json.load(f)
    st = s["standbys"]["standby1"]
    ms = lambda q, scale: None if q.get("p50") is None else (q["p50"] * scale, q["p99"] * scale)
    return {
        "tps": s["total"]["tps"],
        "lsn": ms(st["lag_seconds"], 1000.0),
        "hb": ms(st.get("heartbeat_lag_ms") or {}, 1.0),
        "pg": ms(st["pg_replay_lag_s"], 1000.0),
    }


def fmt(pair):
    return "-" if pair is None else f"{pair[0]:.2f} / {pair[1]:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--delays", default="0,5,20,50", help="one-way link delays in ms")
    ap.add_argument("--rates", default="50,1000,max", help="writes per second; max = closed model")
    ap.add_argument("--samples", default="10ms,100ms", help="sample_every values")
    ap.add_argument("--seconds", type=int, default=10, help="measured seconds per cell")
    ap.add_argument("--port", type=int, default=45500)
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: run `cargo build --release` first")
    tmp = tempfile.mkdtemp(prefix="lag-accuracy-")
    os.chmod(tmp, 0o755)
    lab = os.path.join(tmp, "lab")
    env = dict(os.environ, PGPASSFILE=os.path.join(lab, "credentials", "pgpass"))
    env.pop("PGPASSWORD", None)
    run([BIN, "cluster", "up", "--dir", lab, "--port", str(args.port), "--standbys", "1"])
    link_port = args.port + 11
    rows = []
    try:
        for d in [int(x) for x in args.delays.split(",")]:
            run([BIN, "link", "set", "standby1", "--delay", f"{d}ms", "--dir", lab])
            true = (rtt_ms(link_port, env) - rtt_ms(args.port, env)) / 2
            for rate in args.rates.split(","):
                r = None if rate == "max" else int(rate)
                clients = 8 if r is None else max(1, min(8, r // 50))
                for every in args.samples.split(","):
                    c = cell(lab, tmp, r, every, args.seconds, clients)
                    per_sample = c["tps"] * float(every.rstrip("ms")) / 1000.0
                    lsn_ok = hb_ok = None
                    if c["lsn"]:
                        lsn_ok = abs(c["lsn"][0] - true) <= max(1.0, 0.05 * true)
                    if c["hb"]:
                        hb_ok = abs(c["hb"][0] - true) <= max(2.0, 0.10 * true)
                    rows.append((d, true, rate, round(c["tps"]), every, per_sample, c, lsn_ok, hb_ok))
                    print(f"delay {d} ms (true {true:.2f}) rate {rate} ({c['tps']:.0f}/s) every {every}: "
                          f"LSN {fmt(c['lsn'])}  heartbeat {fmt(c['hb'])}  replay_lag {fmt(c['pg'])}",
                          file=sys.stderr, flush=True)
    finally:
        subprocess.run([BIN, "cluster", "destroy", "--dir", lab], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print("| set one-way | true one-way (ms) | rate (tx/s) | sample_every | writes/sample | "
          "LSN timeline p50 / p99 (ms) | heartbeat p50 / p99 (ms) | PostgreSQL replay_lag p50 / p99 (ms) | "
          "LSN goal | heartbeat goal |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---|---|")
    mark = lambda ok, enough: "-" if ok is None else ("met" if ok else ("**missed**" if enough else "n/a (< 1 write/sample)"))
    for d, true, rate, tps, every, per_sample, c, lsn_ok, hb_ok in rows:
        enough = per_sample >= 1.0
        print(f"| {d} ms | {true:.2f} | {rate if rate != 'max' else f'max ({tps})'} | {every} | {per_sample:.1f} | "
              f"{fmt(c['lsn'])} | {fmt(c['hb'])} | {fmt(c['pg'])} | {mark(lsn_ok, enough)} | {mark(hb_ok, True)} |")


if __name__ == "__main__":
    main()
