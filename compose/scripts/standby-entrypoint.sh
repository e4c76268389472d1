#!/bin/bash
# Standby start: on first start, clone the primary with pg_basebackup (slot = $STANDBY_NAME),
# then hand over to the official entrypoint, which runs postgres as the postgres user.
set -euo pipefail
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chown -R postgres:postgres "$(dirname "$PGDATA")"
  chmod 700 "$PGDATA"
  until pg_isready -h primary -p 5432 -U postgres; do sleep 1; done
  gosu postgres bash -c "PGPASSWORD='$REPLICATION_PASSWORD' pg_basebackup -h primary -p 5432 \
      -U replicator -D '$PGDATA' -X stream -S '$STANDBY_NAME' -R -c fast"
  echo "primary_conninfo = 'host=primary port=5432 user=replicator password=$REPLICATION_PASSWORD application_name=$STANDBY_NAME'" \
      >> "$PGDATA/postgresql.auto.conf"
fi
exec docker-entrypoint.sh postgres -c hot_standby=on -c hot_standby_feedback=on
