#!/usr/bin/env bash
# Manual backup: scripts/backup.sh [NAME]   (default manual_YYYYMMDD_HHMMSS, UTC)
# Table, config, model files, spool and recent logs into <storage.backup_dir>/NAME; runs
# beside the live service. Binary/config: see scripts/opslib.sh.
set -euo pipefail
. "$(dirname "$0")/opslib.sh"
name="${1:-manual_$(date -u +%Y%m%d_%H%M%S)}"
exec "$REGIME_BIN" backup "$name" "${CONFIG_ARGS[@]}"
