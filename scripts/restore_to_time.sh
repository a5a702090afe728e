#!/usr/bin/env bash
# Point-in-time recovery: scripts/restore_to_time.sh "YYYY-MM-DD HH:MM:SS"   (UTC)
# Returns regime_history to exactly its state at that time (the state before is saved as a
# before-restore-* backup first). The service is stopped for it and started again when
# systemd runs it. Binary/config: see scripts/opslib.sh.
set -euo pipefail
. "$(dirname "$0")/opslib.sh"
if [ $# -ne 1 ]; then
  echo "usage: $0 \"YYYY-MM-DD HH:MM:SS\"" >&2
  exit 2
fi
with_service_stopped "$REGIME_BIN" restore-to-time "$1" "${CONFIG_ARGS[@]}"
