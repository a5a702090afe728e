#!/usr/bin/env bash
# Hourly health check of the manual: service, API latency, components, queue depth, errors.
# Exit 0 healthy, 1 degraded (warnings), 2 down/critical. REGIME_URL overrides the address.
set -uo pipefail
URL="${REGIME_URL:-http://localhost:8080}"
rc=0
warn() { echo "WARN: $*"; [ "$rc" -lt 1 ] && rc=1; }
crit() { echo "CRIT: $*"; rc=2; }
t0=$(date +%s%N)
health=$(curl -fsS --max-time 5 "$URL/api/v1/health") || { crit "service not answering at $URL"; exit 2; }
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "health answered in ${ms} ms"
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
metrics=$(curl -fsS --max-time 5 "$URL/api/v1/metrics") || { crit "metrics not answering"; exit 2; }
read -r q er acc < <(echo "$metrics" | python3 -c '
import json, sys
m = json.load(sys.stdin)
print(m["queue_depth"], m["error_rate"], m["regime_accuracy"] if m["regime_accuracy"] is not None else "nan")')
echo "queue depth $q, error rate $er, regime accuracy $acc"
[ "$q" -gt 1000 ] && crit "queue depth $q > 1000" || { [ "$q" -gt 500 ] && warn "queue depth $q > 500"; }
python3 -c "import sys; sys.exit(0 if float('$er') <= 0.05 else 1)" || crit "error rate $er > 5%"
python3 -c "import sys; sys.exit(0 if float('$er') <= 0.02 else 1)" || warn "error rate $er > 2%"
db=$(curl -fsS --max-time 5 "$URL/api/v1/system/database" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
echo "database: $db"
[ "$db" = connected ] || crit "database $db"
exit $rc
