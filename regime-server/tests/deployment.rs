//! `deploy/validate_deployment.py`, the manual's full system validation (quarterly, and the
//! "Verify" after a full system recovery): it passes a healthy keyed install with a fresh
//! backup, and fails — naming what — a damaged backup, a stopped service and a bad config.

mod support;

use std::path::Path;
use std::process::Command;
use support::Server;

/// sha256 of "validate-ops-key"
const OPS_KEY_SHA: &str = "8bc82c13aa1a8d3e5fde6a9566ebae37cfc450aaf97c4907e0beba8582c4c297";

fn validate(dir: &Path, config: &str, url: &str, extra: &[&str]) -> (Option<i32>, String) {
    support::run_text(
        Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/validate_deployment.py"))
            .args(["--bin", env!("CARGO_BIN_EXE_regime"), "--config", config])
            .args(["--url", url, "--workdir"])
            .arg(dir)
            .args(extra)
            .env_remove("REGIME_KEY")
            .env_remove("REGIME_URL")
            .current_dir(dir),
    )
}

#[test]
fn validate_deployment_passes_a_healthy_install_and_names_what_is_broken() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let config = format!(
        "storage: {{type: embedded, path: data/regime.sqlite, backup_dir: backups}}\n\
         logging: {{dir: logs}}\n\
         regime: {{models_dir: models}}\n\
         auth: {{keys: [{{name: ops, sha256: \"{OPS_KEY_SHA}\", scopes: [read, ingest, admin]}}]}}\n\
         feeds: {{demo: true}}\n"
    );
    let s = Server::start(dir, &config, &[]);
    let url = format!("http://{}", s.addr);
    s.wait_for("the demo's rows stored and models written", 60, |s| {
        let db = s.get("/api/v1/system/database", None).json();
        db["rows"].as_u64().unwrap_or(0) > 0
            && std::fs::read_dir(s.dir.join("models")).is_ok_and(|d| d.count() > 0)
    });
    let b = Command::new(env!("CARGO_BIN_EXE_regime"))
        .args(["backup", "--config", "config.yaml", "q1"])
        .current_dir(dir)
        .output()
        .expect("regime backup");
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));

    let (code, out) = validate(dir, "config.yaml", &url, &[]);
    println!("{out}");
    // Warnings may come from the host (disk free, CPU, memory), and so may a critical one:
    // the validator must then fail `metrics`, naming it (a build machine's disk at 7% free
    // did). Every check of the install itself passes, and no other line fails.
    let host_critical = out.lines().any(|l| {
        let critical: Vec<&str> = l
            .split(", ")
            .filter(|part| part.ends_with("CRITICAL"))
            .collect();
        l.starts_with("FAIL  metrics")
            && !critical.is_empty()
            && critical.iter().all(|part| {
                ["cpu %", "memory %", "disk free %"]
                    .iter()
                    .any(|m| part.contains(m))
            })
    });
    if host_critical {
        println!(
            "NOTE: this host has a critical resource metric; the validator failed `metrics` for it"
        );
    } else {
        assert_ne!(code, Some(2), "{out}");
    }
    for line in out.lines().filter(|l| l.starts_with("FAIL")) {
        assert!(
            host_critical && line.starts_with("FAIL  metrics"),
            "{line}\n{out}"
        );
    }
    for check in [
        "binary",
        "config",
        "service",
        "version",
        "auth",
        "database",
        "detection",
        "backups",
        "logs",
        "models",
    ] {
        assert!(out.contains(&format!("PASS  {check:<9}")), "{check}: {out}");
    }
    assert!(
        out.contains("ingest without a key refused (HTTP 401)"),
        "{out}"
    );

    // a backup whose table file is not what its manifest says
    let table = dir.join("backups/q1/regime_history.sqlite");
    let mut bytes = std::fs::read(&table).expect("backup table");
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&table, bytes).expect("damage it");
    let (code, out) = validate(dir, "config.yaml", &url, &["--skip-detection"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("FAIL  backups"), "{out}");
    assert!(out.contains("DAMAGED: regime_history.sqlite"), "{out}");

    // the service stopped
    drop(s);
    let (code, out) = validate(dir, "config.yaml", &url, &["--skip-detection"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("FAIL  service    not answering"), "{out}");

    // a config the service would refuse: the key named
    std::fs::write(dir.join("bad.yaml"), "performance: {max_workers: many}\n").expect("write");
    let (code, out) = validate(dir, "bad.yaml", &url, &["--skip-detection"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("FAIL  config"), "{out}");
    assert!(out.contains("performance.max_workers"), "{out}");
}

/// `scripts/safe_mode.sh`: the manual's `SAFE_MODE=1 systemctl start adaptive_regime` starts
/// the service in normal mode (systemd passes its own environment, not the caller's); the
/// script sets the variable in the manager, restarts, and confirms from health. systemd is
/// not run here: a `systemctl` on PATH records what it is asked, and real services (one in
/// safe mode, one not) answer health as the restarted unit would.
#[test]
fn safe_mode_script_sets_the_managers_environment_and_confirms_from_health() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let calls = tmp.path().join("calls.txt");
    let stub = bin.join("systemctl");
    std::fs::write(
        &stub,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\n", calls.display()),
    )
    .expect("stub");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = |arg: &str, url: &str| {
        support::run_text(
            Command::new("bash")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/safe_mode.sh"))
                .arg(arg)
                .env("PATH", &path)
                .env("REGIME_URL", url)
                .env("REGIME_WAIT_SECS", "3")
                .env_remove("REGIME_UNIT"),
        )
    };

    let safe_dir = tempfile::tempdir().expect("tmp");
    let safe = Server::start(
        safe_dir.path(),
        "feeds: {demo: false}\n",
        &[("SAFE_MODE", "1")],
    );
    let (code, out) = script("on", &format!("http://{}", safe.addr));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("safe mode on"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&calls).expect("calls"),
        "set-environment SAFE_MODE=1\nrestart adaptive_regime\n"
    );
    let (code, out) = script("status", &format!("http://{}", safe.addr));
    assert_eq!((code, out.trim()), (Some(0), "safe_mode true"));

    // what the manual's own command leads to: the unit back in normal mode, said loudly
    let normal_dir = tempfile::tempdir().expect("tmp");
    let normal = Server::start(normal_dir.path(), "feeds: {demo: false}\n", &[]);
    let url = format!("http://{}", normal.addr);
    let (code, out) = script("on", &url);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("answers with safe_mode false, not true"),
        "{out}"
    );
    std::fs::write(&calls, "").expect("reset");
    let (code, out) = script("off", &url);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        std::fs::read_to_string(&calls).expect("calls"),
        "unset-environment SAFE_MODE\nrestart adaptive_regime\n"
    );
    drop(normal);
    let (code, out) = script("status", &url);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("does not answer"), "{out}");
}

/// `deployments.log` (the manual: "Check deployment history"): every start says what changed
/// since the previous one — nothing, the binary (a deploy), the config — and reloads that
/// change keys and restores are there too, in order.
#[test]
fn deployments_log_records_starts_reloads_and_restores() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let config = "storage: {type: embedded, path: data/regime.sqlite, backup_dir: backups}\n\
                  logging: {dir: logs}\n\
                  feeds: {demo: true}\n";
    let s = Server::start(dir, config, &[]);
    s.wait_for("the demo's rows stored", 60, |s| {
        s.get("/api/v1/system/database", None).json()["rows"]
            .as_u64()
            .unwrap_or(0)
            > 0
    });
    let regime = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_regime"))
            .args(args)
            .current_dir(dir)
            .output()
            .expect("regime");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    regime(&["backup", "--config", "config.yaml", "q1"]);
    drop(s);
    // a plain restart
    drop(Server::start(dir, config, &[]));
    // a deploy: a new binary file, and a changed config
    let exe = dir.join("regime-new");
    std::fs::copy(env!("CARGO_BIN_EXE_regime"), &exe).expect("copy the binary");
    let changed = format!("{config}caching: {{ttl: 60}}\n");
    let s = Server::start_exe(&exe, dir, &changed, &[]);
    // a reload: one hot key and one that needs a restart
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "{changed}server: {{request_timeout_ms: 5000}}\nregime: {{default_symbol: SYN001}}\n"
        ),
    )
    .expect("write");
    let r = s.post_json("/api/v1/admin/reload", Some("dev-key-for-tests"), "");
    assert_eq!(r.status, 200, "{}", r.text());
    drop(s);
    regime(&["restore", "latest", "--config", "config.yaml"]);

    let log = std::fs::read_to_string(dir.join("logs/deployments.log")).expect("deployments.log");
    println!("{log}");
    let lines: Vec<&str> = log.lines().collect();
    let event = |l: &str| l.split(' ').nth(1).unwrap_or("").to_string();
    assert_eq!(
        lines.iter().map(|l| event(l)).collect::<Vec<_>>(),
        ["start", "start", "start", "reload", "restore"],
        "{log}"
    );
    assert!(lines[0].ends_with("changed=first"), "{log}");
    assert!(lines[1].ends_with("changed=none"), "{log}");
    assert!(lines[2].ends_with("changed=binary,config"), "{log}");
    assert!(lines[2].contains("regime-new"), "{log}");
    assert!(
        lines[3].contains("applied=regime.default_symbol restart_required=server"),
        "{log}"
    );
    assert!(lines[4].contains("backup=q1"), "{log}");
    assert!(
        lines[4].contains("before_restore_backup=before-restore-"),
        "{log}"
    );
}

/// `deploy/install.sh --root DIR`: the manual's layout (binary, scripts, deployment/,
/// config, unit, logrotate, the 02:00 backup in cron), a config the installed binary
/// passes; an upgrade keeps the operator's config; a config the new binary refuses stops
/// the upgrade before anything is replaced.
#[test]
fn install_lays_out_the_manuals_paths_and_an_upgrade_keeps_the_config() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let install = |bin: &Path| {
        support::run_text(
            Command::new("bash")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/install.sh"))
                .arg("--root")
                .arg(&root)
                .arg("--bin")
                .arg(bin),
        )
    };
    let built = Path::new(env!("CARGO_BIN_EXE_regime"));
    let (code, out) = install(built);
    assert_eq!(code, Some(0), "{out}");
    let opt = root.join("opt/adaptive_regime");
    for f in [
        "bin/regime",
        "scripts/health_check.sh",
        "scripts/daily_backup.sh",
        "scripts/system_status.sh",
        "scripts/daily_report.py",
        "scripts/safe_mode.sh",
        "deployment/validate_deployment.py",
    ] {
        assert!(opt.join(f).is_file(), "{f} missing: {out}");
    }
    assert!(
        !opt.join("scripts/test.sh").exists(),
        "development tools stay out"
    );
    for d in ["data", "models"] {
        assert!(opt.join(d).is_dir(), "{d}");
    }
    assert!(root.join("var/log/adaptive_regime").is_dir());
    assert!(root.join("backup/adaptive_regime").is_dir());
    assert!(root
        .join("etc/systemd/system/adaptive_regime.service")
        .is_file());
    assert!(root.join("etc/logrotate.d/adaptive_regime").is_file());
    let cron = std::fs::read_to_string(root.join("etc/cron.d/adaptive_regime")).expect("cron");
    assert!(
        cron.contains("0 2 * * * regime /opt/adaptive_regime/scripts/daily_backup.sh"),
        "{cron}"
    );
    // the hourly check as cron runs it (/bin/sh, the staged paths for the real ones),
    // against a live service named in ops.env
    let hourly = cron
        .lines()
        .find(|l| l.starts_with("0 * * * * regime "))
        .expect("an hourly line")
        .trim_start_matches("0 * * * * regime ")
        .replace("/opt/adaptive_regime", &opt.display().to_string())
        .replace(
            "/etc/adaptive_regime",
            &root.join("etc/adaptive_regime").display().to_string(),
        )
        .replace(
            "/var/log/adaptive_regime",
            &root.join("var/log/adaptive_regime").display().to_string(),
        );
    let svc_dir = tempfile::tempdir().expect("tmp");
    let svc = Server::start(svc_dir.path(), "feeds: {demo: false}\n", &[]);
    let env_file = root.join("etc/adaptive_regime/ops.env");
    let mut env = std::fs::read_to_string(&env_file).expect("ops.env");
    env.push_str(&format!("export REGIME_URL=http://{}\n", svc.addr));
    std::fs::write(&env_file, env).expect("ops.env");
    let (code, out) = support::run_text(Command::new("sh").arg("-c").arg(&hourly));
    // (a warning, exit 1, is the host's: a slow answer on a loaded machine)
    assert!(matches!(code, Some(0 | 1)), "{hourly}: {out}");
    let log = std::fs::read_to_string(root.join("var/log/adaptive_regime/health_check.log"))
        .expect("health_check.log");
    assert!(log.contains("status: healthy"), "{log}");
    drop(svc);

    let config = root.join("etc/adaptive_regime/config.yaml");
    let v = Command::new(opt.join("bin/regime"))
        .arg("validate-config")
        .arg(&config)
        .output()
        .expect("installed binary");
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));

    // an upgrade: the operator's config stays, the release's example goes beside it
    let mut mine = std::fs::read_to_string(&config).expect("config");
    mine.push_str("# edited by the operator\n");
    std::fs::write(&config, &mine).expect("edit");
    let (code, out) = install(built);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(std::fs::read_to_string(&config).expect("config"), mine);
    assert!(root
        .join("etc/adaptive_regime/config.example.yaml")
        .is_file());

    // a config the new binary refuses: nothing replaced
    let installed = std::fs::read(opt.join("bin/regime")).expect("installed binary");
    // the next release: a different file that runs the same code
    let newer = tmp.path().join("regime-next");
    std::fs::write(
        &newer,
        format!("#!/bin/sh\nexec '{}' \"$@\"\n", built.display()),
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&newer, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert!(mine.contains("max_workers: 4"), "{mine}");
    std::fs::write(&config, mine.replace("max_workers: 4", "max_workers: many")).expect("edit");
    let (code, out) = install(&newer);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    assert!(out.contains("performance.max_workers"), "{out}");
    assert!(std::fs::read(opt.join("bin/regime")).expect("binary") == installed);

    let log = std::fs::read_to_string(root.join("var/log/adaptive_regime/deployments.log"))
        .expect("deployments.log");
    let installs: Vec<&str> = log.lines().filter(|l| l.contains(" install ")).collect();
    assert_eq!(installs.len(), 2, "{log}");
    assert!(
        installs[0].contains("first=1") && installs[1].contains("first=0"),
        "{log}"
    );
}
