#!/usr/bin/env bash
# System overview for the on-call engineer: service process, health, key metrics against the
# manual's thresholds, database, components not running, current regimes, disk space and the
# newest backup. Exit 0 when the service answers, 2 when it does not.
#   REGIME_URL (default http://localhost:8080), REGIME_KEY (when reads need a key),
#   REGIME_BIN / REGIME_CONFIG (scripts/opslib.sh; for the backup list).
set -uo pipefail
URL="${REGIME_URL:-http://localhost:8080}"
HDR=()
if [ -n "${REGIME_KEY:-}" ]; then HDR=(-H "X-API-Key: $REGIME_KEY"); fi
get() { curl -fsS --max-time 5 "${HDR[@]}" "$URL$1"; }

echo "== service"
if command -v systemctl >/dev/null 2>&1 && systemctl cat adaptive_regime.service >/dev/null 2>&1; then
  echo "systemd: $(systemctl is-active adaptive_regime 2>/dev/null)"
fi
pgrep -a -f "regime serve" | sed 's/^/process: /' || echo "process: none found"
# not `get`: health answers 503 with its body while unhealthy (draining at a stop, a critical
# component failed), and that body is what says why
HEALTH=$(curl -sS --max-time 5 "$URL/api/v1/health") || { echo "service not answering at $URL"; exit 2; }
export HEALTH
METRICS=$(get /api/v1/metrics || echo '{}') DATABASE=$(get /api/v1/system/database || echo '{}') \
  REGIMES=$(get /api/v1/regimes || echo '{}')
export METRICS DATABASE REGIMES
SCRIPTS="$(cd "$(dirname "$0")" && pwd)" python3 - <<'PY'
import json, os, sys

sys.path.insert(0, os.environ["SCRIPTS"])
import reportlib as rl  # noqa: E402

h = json.loads(os.environ["HEALTH"])
print(f'status {h["status"]}, version {h.get("version")}, up {h.get("uptime_seconds", 0):.0f} s, '
      f'safe_mode {h.get("safe_mode")}, backend {h.get("backend")}')
bad = {k: v for k, v in h.get("components", {}).items() if v != "running"}
print("components not running: " + (", ".join(f"{k}={v}" for k, v in sorted(bad.items())) or "none"))

print("== metrics (manual thresholds)")
m = json.loads(os.environ["METRICS"])


for name, v, fmt, flag in rl.manual_metrics(m):
    print(f"{name:<18} {'n/a':>10}" if v is None else f"{name:<18} {fmt.format(v):>10}   {flag}")
print(f'{"detections":<18} {m.get("detections_total", 0):>10}')

print("== database")
d = json.loads(os.environ["DATABASE"])
lat = d.get("latency_ms")
print(f'{d.get("type")} {d.get("status")}: {d.get("rows")} rows, latest {d.get("latest_timestamp")}, '
      + (f'{lat:.2f} ms' if isinstance(lat, (int, float)) else f'latency {lat}'))
if d.get("integrity") not in (None, "not_run"):
    print(f'store integrity: {d.get("integrity")} ({d.get("integrity_detail")})')

print("== current regimes")
r = json.loads(os.environ["REGIMES"]).get("regimes", [])
for x in sorted(r, key=lambda x: str(x.get("symbol"))):
    print(f'{x.get("symbol", "?"):<12} {x.get("regime_name", "?"):<32} '
          f'confidence {x.get("confidence", 0):.2f}, {x.get("duration_bars", "?")} bars'
          + (' (model warming up)' if x.get("warming_up") else ''))
if not r:
    print("(none yet)")
PY

echo "== disk"
df -h . /var/log/adaptive_regime /backup/adaptive_regime 2>/dev/null | awk 'NR == 1 || !seen[$0]++'

echo "== newest backup"
if ( . "$(dirname "$0")/opslib.sh" ) >/dev/null 2>&1; then
  . "$(dirname "$0")/opslib.sh"
  "$REGIME_BIN" backup --list "${CONFIG_ARGS[@]}" 2>/dev/null | tail -1 | awk -F'\t' '{print $1 "  " $2 "  " $3}'
fi
exit 0
