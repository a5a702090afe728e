#!/usr/bin/env bash
# Daily backup (cron, 02:00): a backup named YYYYMMDD — the host's local date, as the
# manual's verification step reads it (`ls -la /backup/adaptive_regime/$(date +%Y%m%d)`;
# a UTC name was yesterday's there on hosts east of UTC, at 02:00 local) — then dated
# backups older than KEEP_DAYS (default 14) are removed; manual and before-restore backups
# are kept.
#   0 2 * * * /opt/adaptive_regime/scripts/daily_backup.sh >> /var/log/adaptive_regime/backup.log 2>&1
set -euo pipefail
. "$(dirname "$0")/opslib.sh"
KEEP_DAYS="${KEEP_DAYS:-14}"
name="$(date +%Y%m%d)"
"$REGIME_BIN" backup "$name" "${CONFIG_ARGS[@]}"
dir=$("$REGIME_BIN" backup --list "${CONFIG_ARGS[@]}" | awk -F'\t' -v n="$name" '$1 == n {print $4}')
if [ -z "$dir" ] || [ ! -f "$dir/manifest.json" ]; then
  echo "backup $name is not listed as complete" >&2
  exit 1
fi
cutoff="$(date -d "-$KEEP_DAYS days" +%Y%m%d)"
"$REGIME_BIN" backup --list "${CONFIG_ARGS[@]}" | while IFS=$'\t' read -r n _ _ path; do
  if [[ "$n" =~ ^[0-9]{8}$ ]] && [[ "$n" < "$cutoff" ]]; then
    echo "removing daily backup $n (older than $KEEP_DAYS days)"
    rm -rf -- "$path"
  fi
done
