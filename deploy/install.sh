#!/usr/bin/env bash
# Install or upgrade the service in the layout the manual uses:
#   /opt/adaptive_regime/bin/regime              the binary
#   /opt/adaptive_regime/scripts/                health_check.sh, backup.sh, daily_report.py, …
#   /opt/adaptive_regime/deployment/             validate_deployment.py
#   /opt/adaptive_regime/{data,models}           the store, states and model files
#   /etc/adaptive_regime/config.yaml             from deploy/config.example.yaml on a first
#                                                install only (edit storage.url, auth.keys)
#   /var/log/adaptive_regime, /backup/adaptive_regime
#   /etc/systemd/system/adaptive_regime.service, /etc/logrotate.d/adaptive_regime,
#   /etc/cron.d/adaptive_regime                  daily_backup.sh at 02:00 and health_check.sh
#                                                hourly, as the service user (ops.env: a key)
#
#   deploy/install.sh [--bin PATH] [--root DIR] [--python]
#
# --bin: the binary to install (default: target/release/regime, built when missing).
# --root: install under DIR instead of / (a staging tree: no user, no chown, no systemctl).
# --python: also create /opt/adaptive_regime/venv with the `regime` module and the report
#           scripts' packages (the manual's `source /opt/adaptive_regime/venv/bin/activate`).
#
# An upgrade keeps the config and everything under data/, models/ and the backups; the
# config is checked with the NEW binary before anything is replaced (a key the new release
# refuses stops the install, exit 2, nothing changed); the binary is swapped atomically and
# a running service restarted and checked. Each run adds an `install` line (version, the
# source's commit) to deployments.log beside the service's own start lines.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
ROOT=/
BIN=""
PYTHON=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN="$2"; shift 2 ;;
    --root) ROOT="$2"; shift 2 ;;
    --python) PYTHON=1; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (--help)" >&2; exit 2 ;;
  esac
done
ROOT="${ROOT%/}"
staging=0
[ -n "$ROOT" ] && staging=1
if [ "$staging" = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "installing into / needs root (or --root DIR for a staging tree)" >&2
  exit 2
fi
if [ -z "$BIN" ]; then
  BIN="${CARGO_TARGET_DIR:-$SRC/target}/release/regime"
  if [ ! -x "$BIN" ]; then
    echo "== building the release binary (cargo build --release -p regime-server --bin regime)"
    cargo build --release -p regime-server --bin regime
  fi
fi
[ -x "$BIN" ] || { echo "no executable binary at $BIN" >&2; exit 2; }
version=$("$BIN" --version | awk '{print $NF}')
OPT="$ROOT/opt/adaptive_regime"
ETC="$ROOT/etc/adaptive_regime"
LOG="$ROOT/var/log/adaptive_regime"
BAK="$ROOT/backup/adaptive_regime"
CONFIG="$ETC/config.yaml"

# 1. the config: an existing one must pass the new binary before anything is replaced
first=0
if [ -f "$CONFIG" ]; then
  if ! out=$("$BIN" validate-config "$CONFIG" 2>&1); then
    echo "the installed config does not pass regime $version; nothing was changed:" >&2
    echo "$out" >&2
    exit 2
  fi
else
  first=1
fi

# 2. the user and the directories
if [ "$staging" = 0 ] && ! id regime >/dev/null 2>&1; then
  useradd --system --home-dir /opt/adaptive_regime --shell /usr/sbin/nologin regime
fi
mkdir -p "$OPT/bin" "$OPT/scripts" "$OPT/deployment" "$OPT/data" "$OPT/models" \
  "$ETC" "$LOG" "$BAK" "$ROOT/etc/systemd/system" "$ROOT/etc/logrotate.d" "$ROOT/etc/cron.d"
if [ "$staging" = 0 ]; then
  chown regime:regime "$OPT/data" "$OPT/models" "$LOG" "$BAK"
  chmod 750 "$OPT/data" "$BAK"
fi

# 3. files: scripts and unit files are the release's; the config only on a first install
for f in "$SRC"/scripts/*; do
  [ -f "$f" ] || continue  # files only: running a script in the tree leaves __pycache__/
  case "$(basename "$f")" in
    test.sh|test-postgres.sh|soak.sh) ;;  # development tools
    *) install -m 755 "$f" "$OPT/scripts/" ;;
  esac
done
install -m 755 "$SRC/deploy/validate_deployment.py" "$OPT/deployment/"
install -m 644 "$SRC/deploy/adaptive_regime.service" "$ROOT/etc/systemd/system/adaptive_regime.service"
install -m 644 "$SRC/deploy/logrotate.adaptive_regime" "$ROOT/etc/logrotate.d/adaptive_regime"
cat > "$ROOT/etc/cron.d/adaptive_regime" <<'CRON'
# Adaptive Market Regime System (deploy/install.sh): the manual's daily backup at 02:00 and
# its hourly automated health check (REGIME_KEY / REGIME_URL from ops.env when present)
0 2 * * * regime /opt/adaptive_regime/scripts/daily_backup.sh >> /var/log/adaptive_regime/backup.log 2>&1
0 * * * * regime { [ -r /etc/adaptive_regime/ops.env ] && . /etc/adaptive_regime/ops.env; date -Is; /opt/adaptive_regime/scripts/health_check.sh; } >> /var/log/adaptive_regime/health_check.log 2>&1
CRON
chmod 644 "$ROOT/etc/cron.d/adaptive_regime"
if [ "$first" = 1 ]; then
  install -m 640 "$SRC/deploy/config.example.yaml" "$CONFIG"
  if [ "$staging" = 0 ]; then chgrp regime "$CONFIG"; fi
else
  # the release's example beside it, to compare with
  install -m 644 "$SRC/deploy/config.example.yaml" "$ETC/config.example.yaml"
fi
if [ ! -f "$ETC/ops.env" ]; then
  # what the cron'd checks (and an operator's shell: . /etc/adaptive_regime/ops.env) send
  cat > "$ETC/ops.env" <<'ENV'
# Sourced by the hourly health check in /etc/cron.d/adaptive_regime.
# A read key, when auth.require_key_for_reads is true (a key with the read scope):
# export REGIME_KEY=...
# export REGIME_URL=http://localhost:8080
ENV
  chmod 640 "$ETC/ops.env"
  if [ "$staging" = 0 ]; then chgrp regime "$ETC/ops.env"; fi
fi

# 4. the binary, swapped atomically (a running service keeps its open file until restarted)
install -m 755 "$BIN" "$OPT/bin/.regime.new"
mv -f "$OPT/bin/.regime.new" "$OPT/bin/regime"

commit=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$SRC" status --porcelain 2>/dev/null | grep -q . && echo "+changes" || true)
printf '%s install version=%s commit=%s%s by=%s first=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.000Z)" \
  "$version" "$commit" "$dirty" "${SUDO_USER:-$(id -un)}" "$first" >> "$LOG/deployments.log"
if [ "$staging" = 0 ]; then chown regime:regime "$LOG/deployments.log"; fi

# 5. Python: the module and the report scripts' packages in the manual's venv
if [ "$PYTHON" = 1 ]; then
  python3 -m venv "$OPT/venv"
  "$OPT/venv/bin/pip" install -q --upgrade pip
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SRC/target}" "$OPT/venv/bin/pip" install -q "$SRC/regime-py" pyyaml polars matplotlib
fi

echo "installed regime $version (commit $commit$dirty) under ${ROOT:-/}"
if [ "$staging" = 1 ]; then
  exit 0
fi
if [ ! -d /run/systemd/system ]; then
  echo "no systemd here: start it with /opt/adaptive_regime/bin/regime serve --config $CONFIG"
  exit 0
fi
systemctl daemon-reload
systemctl enable adaptive_regime >/dev/null
if [ "$first" = 1 ]; then
  echo "first install: edit $CONFIG (storage.url, auth.keys), then: systemctl start adaptive_regime"
elif systemctl is-active --quiet adaptive_regime; then
  echo "restarting adaptive_regime on the new binary"
  systemctl restart adaptive_regime
  python3 "$OPT/deployment/validate_deployment.py" --skip-detection || true
fi
