#!/usr/bin/env bash
# The README's test command: everything the tests need on a fresh machine, then the tests.
# Installs Debian's postgresql when it is missing (as root), starts a throwaway cluster on
# loopback for the PostgreSQL tests, runs `cargo test --workspace --release`, stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing postgresql (Debian package) for the store tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
fi
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  eval "$(scripts/test-postgres.sh start)"
  trap 'scripts/test-postgres.sh stop' EXIT
  echo "== PostgreSQL test server: $REGIME_TEST_PG"
else
  echo "== WARNING: no PostgreSQL server; the PostgreSQL tests will print SKIP" >&2
fi
cargo test --workspace --release "$@"
