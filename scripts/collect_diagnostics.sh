#!/usr/bin/env bash
# Incident diagnostics in one archive: scripts/collect_diagnostics.sh [OUT_DIR]
# Writes OUT_DIR/diagnostics_<host>_<UTC time>.tar.gz (OUT_DIR default: the working
# directory) with the service's API answers (health, components, metrics, Prometheus text,
# database, data quality, ensemble, current regimes, transitions), the last 5000 lines of each
# log, the config with passwords masked, the backup list, and host facts (versions, df, free,
# processes, listening sockets, the unit's journal when systemd runs it). Anything that cannot
# be collected is noted in MISSING.txt; the archive is always written.
#   REGIME_URL (default http://localhost:8080), REGIME_KEY, REGIME_LOG_DIR (default
#   /var/log/adaptive_regime, else ./logs), REGIME_BIN / REGIME_CONFIG (scripts/opslib.sh).
set -uo pipefail
URL="${REGIME_URL:-http://localhost:8080}"
OUT_DIR="${1:-.}"
stamp="$(date -u +%Y%m%d_%H%M%S)"
name="diagnostics_$(hostname -s 2>/dev/null || echo host)_$stamp"
work="$(mktemp -d)"
dest="$work/$name"
mkdir -p "$dest/api" "$dest/logs" "$dest/host"
missing() { echo "$*" >> "$dest/MISSING.txt"; }
HDR=()
if [ -n "${REGIME_KEY:-}" ]; then HDR=(-H "X-API-Key: $REGIME_KEY"); fi

for path in health components metrics system/database data/quality asl/metrics regimes \
            regime/current regime/transitions; do
  f="$dest/api/$(echo "$path" | tr / _).json"
  # kept whatever the status: an unhealthy service's 503 health body says why, an error
  # body names what was refused (HTTP status noted in MISSING.txt)
  code=$(curl -sS --max-time 10 "${HDR[@]}" -w '%{http_code}' "$URL/api/v1/$path" -o "$f" 2>/dev/null)
  if [ -z "$code" ] || [ "$code" = 000 ]; then
    rm -f "$f"; missing "GET /api/v1/$path failed: no answer ($URL)"
  elif [ "$code" != 200 ]; then
    missing "GET /api/v1/$path answered HTTP $code (body kept in api/$(basename "$f"))"
  fi
done
curl -fsS --max-time 10 "${HDR[@]}" "$URL/metrics" -o "$dest/api/prometheus.txt" 2>/dev/null \
  || { rm -f "$dest/api/prometheus.txt"; missing "GET /metrics failed ($URL)"; }

logdir="${REGIME_LOG_DIR:-}"
if [ -z "$logdir" ]; then
  if [ -d /var/log/adaptive_regime ]; then logdir=/var/log/adaptive_regime; else logdir=logs; fi
fi
found=0
for f in "$logdir"/*.log; do
  [ -f "$f" ] || continue
  tail -n 5000 "$f" > "$dest/logs/$(basename "$f")"
  found=1
done
[ "$found" = 1 ] || missing "no *.log in $logdir"

if ( . "$(dirname "$0")/opslib.sh" ) >/dev/null 2>&1; then
  . "$(dirname "$0")/opslib.sh"
  "$REGIME_BIN" --version > "$dest/host/regime_version.txt" 2>&1
  "$REGIME_BIN" backup --list "${CONFIG_ARGS[@]}" > "$dest/host/backups.txt" 2>&1
  if [ -n "${REGIME_CONFIG:-}" ] && [ -f "$REGIME_CONFIG" ]; then
    # connection-string passwords masked; API keys are stored as SHA-256 already
    sed -E 's/(password=)[^ "]*/\1***/g; s#(://[^:/@"]*:)[^@"]*@#\1***@#g' "$REGIME_CONFIG" \
      > "$dest/config.yaml"
    "$REGIME_BIN" validate-config "$REGIME_CONFIG" > "$dest/host/validate_config.txt" 2>&1
  else
    missing "no config file (service on defaults, or set REGIME_CONFIG)"
  fi
else
  missing "regime binary not found (REGIME_BIN)"
fi

{ uname -a; date -u; uptime; } > "$dest/host/system.txt" 2>&1
df -h > "$dest/host/df.txt" 2>&1
free -m > "$dest/host/free.txt" 2>&1 || missing "free"
ps aux --sort=-%cpu 2>/dev/null | head -40 > "$dest/host/ps.txt"
if command -v ss >/dev/null; then ss -tulpn > "$dest/host/sockets.txt" 2>&1
elif command -v netstat >/dev/null; then netstat -tulpn > "$dest/host/sockets.txt" 2>&1
else missing "ss/netstat"; fi
if command -v journalctl >/dev/null 2>&1 && systemctl cat "${REGIME_UNIT:-adaptive_regime}.service" >/dev/null 2>&1; then
  journalctl -u "${REGIME_UNIT:-adaptive_regime}" -n 2000 --no-pager > "$dest/host/journal.txt" 2>&1
fi

mkdir -p "$OUT_DIR"
tar -czf "$OUT_DIR/$name.tar.gz" -C "$work" "$name"
rm -rf "$work"
echo "$OUT_DIR/$name.tar.gz"
