#!/usr/bin/env bash
# Safe mode (critical components only) for the systemd service — the manual's "If fails, try
# safe mode" (Complete System Failure, Emergency Restart).
#
# `SAFE_MODE=1 systemctl start adaptive_regime`, as the manual writes it, sets the variable
# for systemctl alone: systemd starts the service WITHOUT it (the unit's PassEnvironment=
# passes the service manager's environment, not the caller's), so the service comes up in
# normal mode and fails as before. This sets it in the manager's environment, restarts the
# unit, and confirms from health that the service really runs in safe mode. The setting
# stays for every later restart until `off`. (PROFILE=1 works the same way:
# `systemctl set-environment PROFILE=1; systemctl restart adaptive_regime`, then
# `systemctl unset-environment PROFILE`.)
#
#   scripts/safe_mode.sh on|off|status
#
# REGIME_UNIT (default adaptive_regime), REGIME_URL (default http://localhost:8080),
# REGIME_WAIT_SECS (default 60: how long the restarted service has to answer).
# Exit 0: the service answers in the mode asked for; 2: it does not (or no systemd).
set -uo pipefail
UNIT="${REGIME_UNIT:-adaptive_regime}"
URL="${REGIME_URL:-http://localhost:8080}"
WAIT="${REGIME_WAIT_SECS:-60}"

# health's safe_mode (true/false), or nothing when the service does not answer
safe_mode_now() {
  curl -sS --max-time 3 "$URL/api/v1/health" 2>/dev/null | python3 -c '
import json, sys
try: print(str(json.load(sys.stdin)["safe_mode"]).lower())
except Exception: pass'
}

# wait for the service to answer with safe_mode = $1
expect() {
  local want=$1 got="" i
  for ((i = 0; i < WAIT * 2; i++)); do
    got=$(safe_mode_now)
    [ "$got" = "$want" ] && return 0
    sleep 0.5
  done
  if [ -z "$got" ]; then
    echo "CRIT: $UNIT does not answer at $URL after ${WAIT} s (journalctl -u $UNIT -n 100)"
  else
    echo "CRIT: $UNIT answers with safe_mode $got, not $want"
  fi
  return 2
}

need_systemctl() {
  command -v systemctl >/dev/null || { echo "no systemctl: run the binary as SAFE_MODE=1 regime serve --config ..." >&2; exit 2; }
}

case "${1:-}" in
  on)
    need_systemctl
    systemctl set-environment SAFE_MODE=1 || exit 2
    echo "restarting $UNIT with SAFE_MODE=1 (kept for later restarts until: $0 off)"
    systemctl restart "$UNIT" || { echo "CRIT: systemctl restart $UNIT failed"; exit 2; }
    expect true || exit 2
    echo "safe mode on: $UNIT answers at $URL with critical components only"
    ;;
  off)
    need_systemctl
    systemctl unset-environment SAFE_MODE || exit 2
    echo "restarting $UNIT in normal mode"
    systemctl restart "$UNIT" || { echo "CRIT: systemctl restart $UNIT failed"; exit 2; }
    expect false || exit 2
    echo "safe mode off: $UNIT answers at $URL with every component"
    ;;
  status)
    s=$(safe_mode_now)
    if [ -z "$s" ]; then echo "$UNIT does not answer at $URL"; exit 2; fi
    echo "safe_mode $s"
    ;;
  *)
    echo "usage: $0 on|off|status" >&2
    exit 2
    ;;
esac
