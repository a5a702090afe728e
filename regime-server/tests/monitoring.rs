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
    assert!(rules.contains("SUCCESS: 19 rules found"), "{rules}");
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
