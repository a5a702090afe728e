#!/usr/bin/env bash
# Full recovery from a backup: scripts/restore_backup.sh NAME|latest
# Table, model files, spool and (with a config file) the config come back; the state before
# is saved as a before-restore-* backup first. The service is stopped for the restore and
# started again when systemd runs it. Binary/config: see scripts/opslib.sh.
set -euo pipefail
. "$(dirname "$0")/opslib.sh"
if [ $# -ne 1 ]; then
  echo "usage: $0 NAME|latest" >&2
  exit 2
fi
with_service_stopped "$REGIME_BIN" restore "$1" "${CONFIG_ARGS[@]}"
