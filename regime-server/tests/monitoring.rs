//! The monitoring kit (`monitoring/`): the alert rules pass `promtool check rules` and their
//! unit tests (`promtool test rules`), the scrape config is valid, and every metric the rules
//! and the Grafana dashboard query is one a real `regime serve` exports.
//! Without promtool the promtool part skips with a printed reason (`REGIME_REQUIRE_PROMTOOL=1`,
//! set by `.ci/run`, turns that into a failure); the metric-name check always runs.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::Server;

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../monitoring")
}

fn promtool(args: &[&str]) -> Option<String> {
    let out = match Command::new("promtool")
        .args(args)
        .current_dir(monitoring())
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            if std::env::var("REGIME_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1") {
                panic!("REGIME_REQUIRE_PROMTOOL=1 but promtool cannot run: {e}");
            }
            regime_kernels::test_support::record_skip(
                "promtool_checks",
                &format!("promtool not available ({e}); apt-get install prometheus"),
            );
            return None;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    Some(text)
}

#[test]
fn promtool_checks() {
    let Some(rules) = promtool(&["check", "rules", "alerts.yml"]) else {
        return;
    };
    assert!(rules.contains("SUCCESS: 20 rules found"), "{rules}");
    let tests = promtool(&["test", "rules", "alerts.test.yml"]).expect("promtool ran before");
    assert!(tests.contains("SUCCESS"), "{tests}");
    promtool(&["check", "config", "prometheus.yml"]).expect("promtool ran before");
}

/// Metric names in a PromQL text: `regime_*`, `system_*` (histogram suffixes dropped).
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("regime_") || w.starts_with("system_"))
        .map(|w| w.strip_suffix("_bucket").unwrap_or(w).to_string())
        .collect()
}

#[test]
fn rules_and_dashboard_query_exported_metrics() {
    let rules = std::fs::read_to_string(monitoring().join("alerts.yml")).expect("alerts.yml");
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(monitoring().join("grafana-dashboard.json")).expect("dashboard"),
    )
    .expect("dashboard is JSON");
    let mut exprs = String::new();
    for line in rules
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:"))
    {
        exprs += line;
        exprs.push('\n');
    }
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    for p in panels {
        for t in p["targets"].as_array().expect("targets") {
            exprs += t["expr"].as_str().expect("expr");
            exprs.push('\n');
        }
    }
    let wanted = metric_names(&exprs);
    assert!(wanted.len() >= 12, "{wanted:?}");

    let tmp = tempfile::tempdir().expect("tmp");
    // the demo feed produces detections, current regimes and (after its warm bars) accuracy
    let s = Server::start(tmp.path(), "feeds: {demo: true}\n", &[]);
    let _ = s.get("/api/v1/health", None);
    let mut last = String::new();
    s.wait_for("every queried metric in /metrics", 60, |s| {
        last = s.get("/metrics", None).text();
        wanted.iter().all(|m| {
            last.lines()
                .any(|l| !l.starts_with('#') && l.starts_with(m.as_str()))
        })
    });
    let missing: Vec<_> = wanted
        .iter()
        .filter(|m| !last.lines().any(|l| l.starts_with(m.as_str())))
        .collect();
    assert!(missing.is_empty(), "{missing:?}");
}

/// `scripts/health_check.sh` against `url`, with `key` as REGIME_KEY: (exit code, output).
fn health_check(url: &str, key: Option<&str>) -> (Option<i32>, String) {
    let mut cmd = Command::new("bash");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/health_check.sh"))
        .env("REGIME_URL", url)
        .env_remove("REGIME_KEY");
    if let Some(k) = key {
        cmd.env("REGIME_KEY", k);
    }
    support::run_text(&mut cmd)
}

/// An installation that requires a key for reads: the hourly check sends REGIME_KEY to the
/// metrics and database reads (it had no key to send: "metrics not answering", critical, on
/// a healthy service), and without one says it was refused, not that nothing answers.
#[test]
fn health_check_sends_the_read_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Server::start(tmp.path(), "auth: {require_key_for_reads: true}\n", &[]);
    let url = format!("http://{}", s.addr);
    let (code, out) = health_check(&url, Some("dev-key-for-tests"));
    assert!(out.contains("database: connected"), "{out}");
    assert!(!out.contains("CRIT"), "{out}");
    assert_ne!(code, Some(2), "{out}");
    let (code, out) = health_check(&url, None);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("HTTP 401: missing API key"), "{out}");
    assert!(out.contains("REGIME_KEY"), "{out}");
    assert!(!out.contains("not answering"), "{out}");
}

/// A loopback stand-in for the service that answers health with `health` (status line,
/// body) and the metrics read with `metrics`, for states a real service holds for seconds
/// or only after hours. Bounded: it answers 32 requests, then stops listening.
fn stand_in(health: (&'static str, &'static str), metrics: &'static str) -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(32).flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                match reader.read_line(&mut h) {
                    Ok(n) if n > 2 => {}
                    _ => break,
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = match path {
                "/api/v1/health" => health,
                "/api/v1/metrics" => ("200 OK", metrics),
                "/api/v1/system/database" => ("200 OK", r#"{"status":"connected"}"#),
                _ => (
                    "404 Not Found",
                    r#"{"error":{"code":"not_found","message":"no route"}}"#,
                ),
            };
            let _ = write!(
                &stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// While unhealthy (draining at a stop, a critical component failed) health answers 503
/// with the body that says why: the hourly check and the status overview report it (they
/// took any non-200 for "service not answering"). The state lasts seconds in a real service,
/// so a loopback stand-in answers with a recorded body of that shape.
#[test]
fn ops_scripts_read_an_unhealthy_answer() {
    let addr = stand_in(
        (
            "503 Service Unavailable",
            r#"{"status":"unhealthy","version":"0.1.0","uptime_seconds":5.0,"safe_mode":false,"backend":"cpu","database":"connected","queue_depth":40,"symbols":2,"components":{"base_regime_detector":"running","integration_orchestrator":"stopped"}}"#,
        ),
        r#"{"queue_depth":40,"error_rate":0.0,"regime_accuracy":null}"#,
    );
    let url = format!("http://{addr}");
    let (code, out) = health_check(&url, None);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("status: unhealthy"), "{out}");
    assert!(
        out.contains("component integration_orchestrator: stopped"),
        "{out}"
    );
    assert!(out.contains("CRIT: service unhealthy"), "{out}");
    assert!(!out.contains("not answering"), "{out}");
    let st = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/system_status.sh"))
        .env("REGIME_URL", &url)
        .env("REGIME_UNIT", "regime-test-no-such-unit")
        .output()
        .expect("run system_status.sh");
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(text.contains("status unhealthy"), "{text}");
    assert!(text.contains("integration_orchestrator=stopped"), "{text}");
    assert!(!text.contains("not answering"), "{text}");
    // the incident archive keeps the 503 body (it dropped every non-200 answer)
    let out = tempfile::tempdir().expect("tmp");
    let run = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/collect_diagnostics.sh"))
        .arg(out.path())
        .current_dir(out.path())
        .env("REGIME_URL", &url)
        .env("REGIME_UNIT", "regime-test-no-such-unit")
        .env("REGIME_LOG_DIR", out.path().join("no-logs"))
        .env("REGIME_BIN", env!("CARGO_BIN_EXE_regime"))
        .output()
        .expect("run collect_diagnostics.sh");
    let archive = String::from_utf8_lossy(&run.stdout).trim().to_string();
    let read = |member: &str| {
        let o = Command::new("tar")
            .args(["-xzOf", &archive, "--wildcards", &format!("*/{member}")])
            .output()
            .expect("tar");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(
        read("api/health.json").contains("\"unhealthy\""),
        "{archive}"
    );
    assert!(
        read("MISSING.txt").contains("GET /api/v1/health answered HTTP 503"),
        "{}",
        read("MISSING.txt")
    );
}

/// The hourly check judges regime accuracy on the manual's lines (warning < 85%, critical
/// < 80%; it printed the number and judged nothing) and says when there is none yet.
#[test]
fn health_check_judges_regime_accuracy() {
    const HEALTHY: (&str, &str) = (
        "200 OK",
        r#"{"status":"healthy","components":{"base_regime_detector":"running"}}"#,
    );
    for (metrics, code, says) in [
        (
            r#"{"queue_depth":0,"error_rate":0.0,"regime_accuracy":0.91}"#,
            0,
            "regime accuracy 0.91",
        ),
        (
            r#"{"queue_depth":0,"error_rate":0.0,"regime_accuracy":0.83}"#,
            1,
            "WARN: regime accuracy 0.83 < 0.85",
        ),
        (
            r#"{"queue_depth":0,"error_rate":0.0,"regime_accuracy":0.62}"#,
            2,
            "CRIT: regime accuracy 0.62 < 0.80",
        ),
        (
            r#"{"queue_depth":0,"error_rate":0.0,"regime_accuracy":null}"#,
            0,
            "regime accuracy not measured yet",
        ),
    ] {
        let addr = stand_in(HEALTHY, metrics);
        let (got, out) = health_check(&format!("http://{addr}"), None);
        assert_eq!(got, Some(code), "{out}");
        assert!(out.contains(says), "{out}");
    }
}
