#!/usr/bin/env bash
# pgbench-repl against the tools a user would pick instead, side by side on one lab: pgbench
# (select-only, insert-only, tpcb-like: tps and client CPU per transaction), psql \copy (1M
# rows by COPY), and the client-count curve (CPU per transaction and peak RSS, 8 to 1000
# clients). Alternated runs, medians, ratios. See benches/README.md.
#
#   scripts/bench-vs-pgbench.sh                 # the defaults below
#   scripts/bench-vs-pgbench.sh --seconds 5 --rounds 3
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 benches/vs_pgbench.py --bulk --scale 8 64 256 512 1000 "$@"
