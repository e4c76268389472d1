#!/usr/bin/env bash
# Clone this repository into a temporary directory and do what a newcomer (and CI) does there:
# `.ci/run` (installs, fmt, clippy, the README's test command), then the README's main command.
# Usage: scripts/check-fresh-clone.sh [--no-tests]
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
dest="$(mktemp -d /tmp/pgbench-repl-fresh.XXXXXX)"
chmod 755 "$dest"
git clone --quiet "$src" "$dest/repo"
cd "$dest/repo"
if [ "${1:-}" != "--no-tests" ]; then
  CI=true bash .ci/run
fi
cargo run --release -- run workloads/heavy-write.toml --quiet
ls results/heavy-write/*/charts
cargo run --release --quiet -- cluster destroy
echo "fresh clone OK: $dest/repo"
