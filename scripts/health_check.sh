#!/usr/bin/env bash
# Hourly health check of the manual: service, API latency, components, queue depth, errors,
# regime accuracy (the manual's lines: warning < 85%, critical < 80%).
# Exit 0 healthy, 1 degraded (warnings), 2 down/critical. REGIME_URL overrides the address;
# REGIME_KEY is sent when set (auth.require_key_for_reads: the metrics and database reads).
set -uo pipefail
URL="${REGIME_URL:-http://localhost:8080}"
HDR=()
if [ -n "${REGIME_KEY:-}" ]; then HDR=(-H "X-API-Key: $REGIME_KEY"); fi
rc=0
warn() { echo "WARN: $*"; [ "$rc" -lt 1 ] && rc=1; }
crit() { echo "CRIT: $*"; rc=2; }
# a read: the body on 200; otherwise the HTTP status and the error's message, and failure
get() {
  local out code
  out=$(curl -sS --max-time 5 "${HDR[@]}" -w '\n%{http_code}' "$URL$1") || return 2
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  if [ "$code" = 200 ]; then printf '%s' "$out"; return 0; fi
  echo "HTTP $code: $(printf '%s' "$out" | python3 -c 'import json,sys
try: print(json.load(sys.stdin)["error"]["message"])
except Exception: print("(no JSON error body)")')" >&2
  return 1
}
t0=$(date +%s%N)
# health answers 503 with its body while the service is unhealthy (draining at a stop, a
# critical component failed): that body says why, so it is read rather than taken as down
health=$(curl -sS --max-time 5 -w '\n%{http_code}' "$URL/api/v1/health") || {
  crit "service not answering at $URL (systemctl status adaptive_regime; journalctl -u adaptive_regime -n 100)"
  exit 2
}
code=${health##*$'\n'}
health=${health%$'\n'*}
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "health answered HTTP $code in ${ms} ms"
if [ "$code" != 200 ] && [ "$code" != 503 ]; then
  crit "health answered HTTP $code: $health"
  exit 2
fi
[ "$ms" -gt 200 ] && warn "health took ${ms} ms (> 200 ms)"
status=$(echo "$health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
echo "status: $status"
case "$status" in
  healthy) ;;
  degraded) warn "service degraded" ;;
  *) crit "service $status" ;;
esac
echo "$health" | python3 -c '
import json, sys
for name, state in sorted(json.load(sys.stdin)["components"].items()):
    if state != "running":
        print(f"component {name}: {state}")'
metrics=$(get /api/v1/metrics) || { crit "metrics not read (above; a key for reads: REGIME_KEY)"; exit 2; }
read -r q er acc < <(echo "$metrics" | python3 -c '
import json, sys
m = json.load(sys.stdin)
print(m["queue_depth"], m["error_rate"], m["regime_accuracy"] if m["regime_accuracy"] is not None else "nan")')
echo "queue depth $q, error rate $er, regime accuracy $acc"
[ "$q" -gt 1000 ] && crit "queue depth $q > 1000" || { [ "$q" -gt 500 ] && warn "queue depth $q > 500"; }
python3 -c "import sys; sys.exit(0 if float('$er') <= 0.05 else 1)" || crit "error rate $er > 5%"
python3 -c "import sys; sys.exit(0 if float('$er') <= 0.02 else 1)" || warn "error rate $er > 2%"
# nan: no bar evaluated yet (a fresh start: the ex-post reference needs ~130 later bars)
if [ "$acc" = nan ]; then
  echo "regime accuracy not measured yet"
else
  python3 -c "import sys; sys.exit(0 if float('$acc') >= 0.80 else 1)" || crit "regime accuracy $acc < 0.80 (which symbols, by dimension: curl $URL/api/v1/components/performance_feedback_system)"
  python3 -c "import sys; sys.exit(0 if float('$acc') >= 0.80 and float('$acc') < 0.85 else 1)" && warn "regime accuracy $acc < 0.85"
fi
dbj=$(get /api/v1/system/database || echo '{}')
db=$(printf %s "$dbj" | python3 -c 'import json,sys
try: print(json.load(sys.stdin)["status"])
except Exception: print("unknown (not read)")')
echo "database: $db"
[ "$db" = connected ] || crit "database $db"
# the embedded store's integrity check at start (SQLite quick_check): a damaged file still
# opens and answers until a write or a query meets the damage
integrity=$(printf %s "$dbj" | python3 -c 'import json,sys
try:
    d = json.load(sys.stdin)
    print(d.get("integrity", "not_run") + ("" if d.get("integrity") != "damaged" else ": " + str(d.get("integrity_detail"))))
except Exception: print("unknown")')
case "$integrity" in
  damaged*) crit "store file $integrity (stop the service, regime restore latest)" ;;
  *) echo "store integrity: $integrity" ;;
esac
exit $rc
