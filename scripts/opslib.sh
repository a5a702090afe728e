#!/usr/bin/env bash
# Shared by the backup and restore scripts (source it). Finds the binary and the config:
#   REGIME_BIN     default /opt/adaptive_regime/bin/regime, else `regime` on PATH, else the
#                  executable of a running `regime serve` (a service started from a checkout)
#   REGIME_CONFIG  default /etc/adaptive_regime/config.yaml when it exists, else none
#                  (the defaults: everything under the working directory)
#   REGIME_UNIT    systemd unit (default adaptive_regime)
if [ -z "${REGIME_BIN:-}" ]; then
  if [ -x /opt/adaptive_regime/bin/regime ]; then REGIME_BIN=/opt/adaptive_regime/bin/regime
  else REGIME_BIN=$(command -v regime || true); fi
  if [ -z "$REGIME_BIN" ]; then
    for pid in $(pgrep -x regime 2>/dev/null); do
      if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q ' serve'; then
        REGIME_BIN=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
        [ -n "$REGIME_BIN" ] && break
      fi
    done
  fi
fi
if [ -z "$REGIME_BIN" ] || [ ! -x "$REGIME_BIN" ]; then
  echo "regime binary not found: not /opt/adaptive_regime/bin/regime, not on PATH, no running 'regime serve' (set REGIME_BIN)" >&2
  exit 2
fi
if [ -z "${REGIME_CONFIG+x}" ] && [ -f /etc/adaptive_regime/config.yaml ]; then
  REGIME_CONFIG=/etc/adaptive_regime/config.yaml
fi
REGIME_UNIT="${REGIME_UNIT:-adaptive_regime}"
CONFIG_ARGS=()
if [ -n "${REGIME_CONFIG:-}" ]; then CONFIG_ARGS=(--config "$REGIME_CONFIG"); fi

# Run "$@" with the systemd service stopped when it is running under systemd, and start it
# again afterwards (also when the command fails). Without systemd the regime command itself
# refuses to restore under a live service.
with_service_stopped() {
  local was_active=0 rc=0
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$REGIME_UNIT" 2>/dev/null; then
    was_active=1
    echo "stopping $REGIME_UNIT"
    systemctl stop "$REGIME_UNIT"
  fi
  "$@" || rc=$?
  if [ "$was_active" = 1 ]; then
    echo "starting $REGIME_UNIT"
    systemctl start "$REGIME_UNIT" || rc=2
  fi
  return "$rc"
}
