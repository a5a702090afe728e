#!/usr/bin/env bash
# Start (or stop) a throwaway PostgreSQL cluster on loopback for the tests, as CI does.
#   eval "$(scripts/test-postgres.sh start)"   # prints: export REGIME_TEST_PG=...
#   scripts/test-postgres.sh stop
# Needs Debian's postgresql package (apt-get install -y postgresql). Runs the server as the
# `postgres` user when started as root (initdb refuses root).
set -euo pipefail
PGPORT="${REGIME_PG_PORT:-55432}"
PGDATA="${REGIME_PG_DATA:-/var/tmp/regime-test-pg}"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$PGBIN" ]; then
  echo "postgresql server not installed (apt-get install -y postgresql)" >&2
  exit 1
fi
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-start}" in
  start)
    if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
      rm -rf "$PGDATA"
      mkdir -p "$PGDATA"
      [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA"
      as_pg "$PGBIN/initdb" -D "$PGDATA" -A trust -U regime >/dev/null
      as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w \
        -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
    fi
    # one database per test binary (they run concurrently); created when missing, so a
    # cluster left running by an earlier checkout gains the ones added since
    for db in regime_unit regime_it regime_py regime_backup regime_full regime_spool regime_lost; do
      if [ -z "$(psql -h 127.0.0.1 -p "$PGPORT" -U regime -d postgres -tAc \
          "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
        psql -h 127.0.0.1 -p "$PGPORT" -U regime -d postgres -qc "CREATE DATABASE $db" >/dev/null
      fi
    done
    echo "export REGIME_TEST_PG='host=127.0.0.1 port=$PGPORT user=regime'"
    ;;
  stop)
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
