#!/usr/bin/env python3
"""Full system validation (manual: Quarterly Maintenance step 1, and the "Verify" step of
Complete System Failure after a restore).

Checks, each PASS / WARN / FAIL with what it saw:
  binary      the installed `regime` runs (its version)
  config      the config file passes `regime validate-config` (every problem with its key)
  service     health answers, status healthy, every component running, not in safe mode
  version     the running service is the installed binary's version (a restore or an
              upgrade without a restart leaves the old one running)
  auth        API keys are configured, and ingest without a key is refused
  database    the store is connected (rows, newest row)
  metrics     the manual's thresholds: CPU, memory, disk, p99 latency, error rate, queue
              depth, regime accuracy (warning / critical lines of its table)
  detection   the installed binary on known data (a seeded synthetic panel with true labels,
              last 30% scored) reaches the thresholds of scripts/test_regime_detection.py
  backups     the newest backup is less than 26 hours old (daily_backup.sh runs at 02:00),
              and every file its manifest lists is there with the recorded size
  logs        the log directory's system.log was written in the last 10 minutes
  models      the models directory exists and holds model files

Exit 0: all PASS; 1: warnings; 2: a FAIL. Uses only the standard library.

Where things are (as the other scripts): REGIME_BIN (default /opt/adaptive_regime/bin/regime,
else `regime` on PATH), REGIME_CONFIG (default /etc/adaptive_regime/config.yaml when it
exists, else the defaults), REGIME_URL (default: the config's server.bind on loopback),
REGIME_KEY (sent with reads). Relative paths in the config are taken from --workdir (the
unit's WorkingDirectory, /opt/adaptive_regime, when it exists; else the current directory).

  python /opt/adaptive_regime/deployment/validate_deployment.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

# the operations scripts' shared helpers: scripts/ beside deployment/ (installed) or deploy/
# (the source tree)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import reportlib as rl  # noqa: E402

BACKUP_MAX_AGE_H = 26
LOG_MAX_AGE_S = 600


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, level: str, check: str, what: str) -> None:
        self.rows.append((level, check, what))
        print(f"{level:<4}  {check:<9}  {what}", flush=True)

    def code(self) -> int:
        levels = {r[0] for r in self.rows}
        return 2 if "FAIL" in levels else 1 if "WARN" in levels else 0


def find_bin(arg: str | None) -> str | None:
    # a checkout's build last: a service started from the source tree
    checkout = Path(__file__).resolve().parent.parent
    target = os.environ.get("CARGO_TARGET_DIR") or str(checkout / "target")
    for c in [arg, os.environ.get("REGIME_BIN"), "/opt/adaptive_regime/bin/regime", shutil.which("regime"),
              os.path.join(target, "release", "regime")]:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    return None


def http(url: str, key: str, method: str = "GET", body: bytes | None = None, timeout: float = 5.0):
    """(status, parsed JSON or None); status 0 when nothing answered (the reason as body)."""
    req = urllib.request.Request(url, data=body, method=method)
    if key:
        req.add_header("X-API-Key", key)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return 0, str(getattr(e, "reason", e))
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def error_message(body) -> str:
    try:
        return body["error"]["message"]
    except (TypeError, KeyError):
        return str(body)


def effective_config(rbin: str, config: str | None, rep: Report) -> dict | None:
    """The config with defaults filled in (`regime validate-config --json`)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = config
        if path is None:
            path = os.path.join(tmp, "defaults.yaml")
            Path(path).write_text("")
        r = subprocess.run([rbin, "validate-config", path, "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        rep.add("FAIL", "config", f"{config}: " + (r.stderr.strip() or r.stdout.strip()).replace("\n", "; "))
        return None
    try:
        cfg = json.loads(r.stdout)
    except ValueError:
        rep.add("FAIL", "config", f"`{rbin} validate-config --json` printed no JSON (binary older than this script?)")
        return None
    if config is None:
        rep.add("WARN", "config", "no config file (REGIME_CONFIG, /etc/adaptive_regime/config.yaml): the service runs on defaults")
    else:
        s = cfg["storage"]
        rep.add("PASS", "config", f"{config} valid: storage {s['kind']}, {cfg['performance']['max_workers']} workers, "
                f"{len(cfg['auth']['keys'])} API key(s)")
    return cfg


def check_service(url: str, key: str, rep: Report) -> dict | None:
    status, h = http(url + "/api/v1/health", key)
    if status == 0:
        rep.add("FAIL", "service", f"not answering at {url}: {h} (systemctl status adaptive_regime)")
        return None
    if not isinstance(h, dict) or "status" not in h:
        rep.add("FAIL", "service", f"health answered HTTP {status} without a health body")
        return None
    comps = h.get("components") or {}
    down = sorted(f"{n}={s}" for n, s in comps.items() if s != "running")
    what = f"{h['status']}, {len(comps) - len(down)} of {len(comps)} components running, version {h.get('version')}"
    if down:
        what += " (" + ", ".join(down) + ")"
    if h.get("safe_mode"):
        what += "; SAFE MODE: critical components only"
    level = {"healthy": "PASS", "degraded": "WARN"}.get(h["status"], "FAIL")
    if level == "PASS" and (down or h.get("safe_mode")):
        level = "WARN"
    rep.add(level, "service", what)
    return h


def installed_version(rbin: str, rep: Report) -> str | None:
    r = subprocess.run([rbin, "--version"], capture_output=True, text=True)
    installed = r.stdout.strip().split()[-1] if r.returncode == 0 and r.stdout.strip() else None
    if installed is None:
        rep.add("FAIL", "binary", f"{rbin} --version failed: {r.stderr.strip()}")
    else:
        rep.add("PASS", "binary", f"{rbin}: regime {installed}")
    return installed


def check_version(rbin: str, installed: str | None, health: dict | None, rep: Report) -> None:
    if health is None or installed is None:
        return
    running = health.get("version")
    if running == installed:
        rep.add("PASS", "version", f"the service runs {running}, the installed binary's")
    else:
        rep.add("FAIL", "version", f"the service runs {running} but {rbin} is {installed}: restart the service "
                "(systemctl restart adaptive_regime)")


def check_auth(url: str, cfg: dict | None, rep: Report) -> None:
    keys = (cfg or {}).get("auth", {}).get("keys", [])
    # an empty batch without a key: refused before anything is read when keys are enforced
    status, body = http(url + "/api/v1/bars", "", "POST", b'{"bars": []}')
    if status == 0:
        return
    if status in (401, 403):
        refused = f"ingest without a key refused (HTTP {status})"
        if keys:
            rep.add("PASS", "auth", f"{len(keys)} API key(s) configured; {refused}")
        else:
            rep.add("WARN", "auth", f"no auth.keys: a development key with all scopes is active; {refused}")
    else:
        rep.add("FAIL", "auth", f"ingest without a key answered HTTP {status} ({error_message(body)}): anyone can send bars")


def read(url: str, path: str, key: str, check: str, rep: Report) -> dict | None:
    """A read's JSON object; None (a FAIL said) when it is refused; None silently when nothing
    answers (the service check said so)."""
    status, body = http(url + path, key)
    if status == 0:
        return None
    if status != 200 or not isinstance(body, dict):
        rep.add("FAIL", check, f"HTTP {status}: {error_message(body)} (a key for reads: REGIME_KEY)")
        return None
    return body


def check_database(url: str, key: str, rep: Report) -> None:
    d = read(url, "/api/v1/system/database", key, "database", rep)
    if d is None:
        return
    what = f"{d.get('type')} {d.get('status')}: {d.get('rows')} rows, newest {d.get('latest_timestamp')}"
    rep.add("PASS" if d.get("status") == "connected" else "FAIL", "database", what)


def check_metrics(url: str, key: str, rep: Report) -> None:
    m = read(url, "/api/v1/metrics", key, "metrics", rep)
    if m is None:
        return
    worst, parts = "PASS", []
    for name, v, _, flag in rl.manual_metrics(m):
        if v is None:
            parts.append(f"{name} n/a")
            continue
        if flag == "CRITICAL":
            worst = "FAIL"
        elif flag == "WARNING" and worst == "PASS":
            worst = "WARN"
        mark = {"CRITICAL": " CRITICAL", "WARNING": " warning"}.get(flag, "")
        parts.append(f"{name} {v:.1f}{mark}")
    rep.add(worst, "metrics", ", ".join(parts))


def check_detection(rbin: str, rep: Report) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "known.csv")
        g = subprocess.run([rbin, "generate", "--symbols", "4", "--bars", "4000", "--seed", "20261128", "--output", data],
                           capture_output=True, text=True)
        if g.returncode != 0:
            rep.add("FAIL", "detection", f"regime generate failed: {g.stderr.strip()}")
            return
        t0 = time.time()
        e = subprocess.run([rbin, "evaluate", "--input", data, "--score-last", "0.3", "--json"],
                           capture_output=True, text=True)
        secs = time.time() - t0
    if e.returncode != 0:
        rep.add("FAIL", "detection", f"regime evaluate failed: {e.stderr.strip()}")
        return
    try:
        acc = json.loads(e.stdout)["accuracy"]["final"]
    except (ValueError, KeyError):
        rep.add("FAIL", "detection", "regime evaluate --json printed no accuracy")
        return
    low = [f"{k} {acc.get(k, 0):.2f} < {v}" for k, v in rl.DETECTION_MIN.items() if acc.get(k, 0) < v]
    got = ", ".join(f"{k} {acc.get(k, 0):.2f}" for k in rl.DETECTION_MIN)
    if low:
        rep.add("FAIL", "detection", "known data below the thresholds: " + ", ".join(low))
    else:
        rep.add("PASS", "detection", f"known data (4 x 4,000 bars, last 30%): {got} in {secs:.1f} s")


def resolve(p: str, workdir: Path) -> Path:
    q = Path(p)
    return q if q.is_absolute() else workdir / q


def check_backups(cfg: dict, workdir: Path, rep: Report) -> None:
    d = resolve(cfg["storage"]["backup_dir"], workdir)
    found = []
    for m in sorted(d.glob("*/manifest.json")) if d.is_dir() else []:
        if m.parent.name.startswith("."):
            continue  # a backup being written
        try:
            found.append((json.loads(m.read_text()), m.parent))
        except (OSError, ValueError) as e:
            rep.add("FAIL", "backups", f"{m}: unreadable manifest ({e})")
    if not found:
        rep.add("WARN", "backups", f"no backup in {d} (scripts/backup.sh, or daily_backup.sh from cron)")
        return
    man, folder = max(found, key=lambda x: x[0].get("created_at_ms", 0))
    age_h = (time.time() * 1000 - man.get("created_at_ms", 0)) / 3.6e6
    damaged = []
    for name, size in man.get("files", []):
        f = folder / name
        if not f.is_file():
            damaged.append(f"{name} missing")
        elif f.stat().st_size != size:
            damaged.append(f"{name} {f.stat().st_size} bytes, manifest {size}")
    what = (f"newest {man.get('name')} ({man.get('created_at')}, {age_h:.1f} h old): {man.get('rows')} rows, "
            f"{len(man.get('files', []))} files; {len(found)} backup(s) in {d}")
    if damaged:
        rep.add("FAIL", "backups", f"{what}; DAMAGED: " + "; ".join(damaged[:5]))
    elif age_h > BACKUP_MAX_AGE_H:
        rep.add("WARN", "backups", f"{what}; older than {BACKUP_MAX_AGE_H} h (is daily_backup.sh in cron?)")
    else:
        rep.add("PASS", "backups", what)


def check_logs(cfg: dict, workdir: Path, running: bool, rep: Report) -> None:
    d = resolve(cfg["logging"]["dir"], workdir)
    f = d / "system.log"
    if not f.is_file():
        rep.add("WARN", "logs", f"no {f} (logging.dir; the service writes it from its start)")
        return
    age = time.time() - f.stat().st_mtime
    what = f"{f} written {age:.0f} s ago"
    rep.add("WARN" if running and age > LOG_MAX_AGE_S else "PASS", "logs",
            what + (f" (over {LOG_MAX_AGE_S} s while the service runs)" if running and age > LOG_MAX_AGE_S else ""))


def check_models(cfg: dict, workdir: Path, rep: Report) -> None:
    d = resolve(cfg["regime"]["models_dir"], workdir)
    if not d.is_dir():
        rep.add("WARN", "models", f"no {d} (regime.models_dir; written once symbols are learned)")
        return
    n = len(list(d.glob("*.json")))
    rep.add("PASS" if n else "WARN", "models", f"{d}: {n} model files")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", help="the regime binary (default REGIME_BIN, /opt/adaptive_regime/bin/regime, PATH)")
    p.add_argument("--config", help="config.yaml (default REGIME_CONFIG, /etc/adaptive_regime/config.yaml)")
    p.add_argument("--url", help="the service (default REGIME_URL, else server.bind on loopback)")
    p.add_argument("--workdir", help="where relative config paths start (default /opt/adaptive_regime, else .)")
    p.add_argument("--skip-detection", action="store_true", help="leave out the known-data run (~10 s)")
    a = p.parse_args()
    rep = Report()
    rbin = find_bin(a.bin)
    if rbin is None:
        rep.add("FAIL", "binary", "regime not found: not /opt/adaptive_regime/bin/regime, not on PATH, "
                "not built in this checkout (--bin, REGIME_BIN)")
        return 2
    config = a.config or os.environ.get("REGIME_CONFIG")
    if config is None and Path("/etc/adaptive_regime/config.yaml").is_file():
        config = "/etc/adaptive_regime/config.yaml"
    if config is not None and not Path(config).is_file():
        rep.add("FAIL", "config", f"{config}: no such file")
        return 2
    workdir = Path(a.workdir or ("/opt/adaptive_regime" if Path("/opt/adaptive_regime").is_dir() else "."))
    key = os.environ.get("REGIME_KEY", "")
    installed = installed_version(rbin, rep)
    cfg = effective_config(rbin, config, rep)
    url = a.url or os.environ.get("REGIME_URL")
    if url is None:
        bind = (cfg or {}).get("server", {}).get("bind", "127.0.0.1:8080")
        host, _, port = bind.rpartition(":")
        host = "127.0.0.1" if host in ("0.0.0.0", "", "[::]") else host
        url = f"http://{host}:{port}"
    url = url.rstrip("/")
    health = check_service(url, key, rep)
    check_version(rbin, installed, health, rep)
    if health is not None:
        check_auth(url, cfg, rep)
        check_database(url, key, rep)
        check_metrics(url, key, rep)
    if not a.skip_detection:
        check_detection(rbin, rep)
    if cfg is not None:
        check_backups(cfg, workdir, rep)
        check_logs(cfg, workdir, health is not None, rep)
        check_models(cfg, workdir, rep)
    code = rep.code()
    counts = {lvl: sum(1 for r in rep.rows if r[0] == lvl) for lvl in ("PASS", "WARN", "FAIL")}
    print(f"\n{counts['PASS']} passed, {counts['WARN']} warnings, {counts['FAIL']} failed: "
          + ["deployment valid", "deployment valid, with warnings", "deployment NOT valid"][code])
    return code


if __name__ == "__main__":
    sys.exit(main())
