//! `deployments.log` in the log directory — the manual's incident step "Check deployment
//! history" (`cat /var/log/adaptive_regime/deployments.log`): what changed, and when. One
//! line per service start (version, binary, config, state identity, and which of them
//! changed since the previous start), per reload that changed keys, and per restore:
//!
//! ```text
//! 2026-12-06T08:30:00.123Z start version=0.1.0 binary=/opt/adaptive_regime/bin/regime binary_size=31457280 binary_mtime=2026-12-06T08:29:12Z config=/etc/adaptive_regime/config.yaml config_sha256=3f2a… identity="state-v1 layout … detection …" safe_mode=false changed=binary,identity
//! ```
//!
//! Writing it never stops what is being recorded: a failure is logged and passed over.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The file's name in `logging.dir`.
pub const FILE: &str = "deployments.log";

/// What a start is compared on (`changed=` names): the name, and the fields that count.
const TRACKED: [(&str, &[&str]); 4] = [
    ("version", &["version"]),
    ("binary", &["binary", "binary_size", "binary_mtime"]),
    ("config", &["config", "config_sha256"]),
    ("identity", &["identity"]),
];

fn now_iso() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// `k=v`, quoted when the value holds a space (a quote inside becomes `'`).
fn field(k: &str, v: &str) -> String {
    if v.is_empty() || v.contains(char::is_whitespace) {
        format!("{k}=\"{}\"", v.replace('"', "'"))
    } else {
        format!("{k}={v}")
    }
}

/// The `k=v` fields of one line (after its time and event).
fn parse_fields(rest: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut s = rest.trim_start();
    while let Some(eq) = s.find('=') {
        let key = s[..eq].trim().to_string();
        let after = &s[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(' ') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.insert(key, value.to_string());
        s = next.trim_start();
    }
    out
}

/// Append one line: `<time> <event> k=v …`.
pub fn record(dir: &Path, event: &str, fields: &[(&str, String)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut line = format!("{} {event}", now_iso());
    for (k, v) in fields {
        line.push(' ');
        line.push_str(&field(k, v));
    }
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(FILE))?;
    f.write_all(line.as_bytes())
}

/// [`record`], a failure logged rather than returned.
pub fn record_or_warn(dir: &Path, event: &str, fields: &[(&str, String)]) {
    if let Err(e) = record(dir, event, fields) {
        tracing::warn!("{}: not written ({e})", dir.join(FILE).display());
    }
}

/// The fields of the last line of `event` (None: no such line, or no file).
pub fn last(dir: &Path, event: &str) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join(FILE)).ok()?;
    text.lines().rev().find_map(|l| {
        let mut parts = l.splitn(3, ' ');
        let (_, ev, rest) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
        (ev == event).then(|| parse_fields(rest))
    })
}

/// The config file (path, the first 16 hex digits of the SHA-256 of its bytes).
pub fn config_fields(config: Option<&Path>) -> Vec<(&'static str, String)> {
    match config {
        Some(p) => {
            let sha = match std::fs::read(p) {
                Ok(bytes) => Sha256::digest(&bytes)
                    .iter()
                    .take(8)
                    .map(|b| format!("{b:02x}"))
                    .collect(),
                Err(e) => format!("unread ({e})"),
            };
            vec![("config", p.display().to_string()), ("config_sha256", sha)]
        }
        None => vec![
            ("config", "defaults".into()),
            ("config_sha256", "none".into()),
        ],
    }
}

/// What this start is: version, binary (path, size, modification time), config (path,
/// SHA-256 of its bytes), state identity, safe mode.
pub fn start_fields(
    config: Option<&Path>,
    identity: &str,
    safe_mode: bool,
) -> Vec<(&'static str, String)> {
    let mut f = vec![("version", env!("CARGO_PKG_VERSION").to_string())];
    match std::env::current_exe() {
        Ok(exe) => {
            f.push(("binary", exe.display().to_string()));
            if let Ok(m) = std::fs::metadata(&exe) {
                f.push(("binary_size", m.len().to_string()));
                if let Ok(t) = m.modified() {
                    let t: chrono::DateTime<chrono::Utc> = t.into();
                    f.push(("binary_mtime", t.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
                }
            }
        }
        Err(e) => f.push(("binary", format!("unknown ({e})"))),
    }
    f.extend(config_fields(config));
    f.push(("identity", identity.to_string()));
    f.push(("safe_mode", safe_mode.to_string()));
    f
}

/// Record a start in `dir`, with `changed=` naming what differs from the previous start
/// (`first` when there is none on record; `none` for a plain restart).
pub fn record_start(dir: &Path, mut fields: Vec<(&'static str, String)>) {
    let changed = match last(dir, "start") {
        None => "first".to_string(),
        Some(prev) => {
            let now: BTreeMap<&str, &str> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let c: Vec<&str> = TRACKED
                .iter()
                .filter(|(_, keys)| {
                    keys.iter()
                        .any(|k| prev.get(*k).map(String::as_str) != now.get(k).copied())
                })
                .map(|(name, _)| *name)
                .collect();
            if c.is_empty() {
                "none".to_string()
            } else {
                c.join(",")
            }
        }
    };
    fields.push(("changed", changed));
    record_or_warn(dir, "start", &fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_say_what_changed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = tmp.path();
        let cfg = d.join("config.yaml");
        std::fs::write(&cfg, "server: {bind: \"127.0.0.1:1\"}\n").expect("write");
        record_start(
            d,
            start_fields(Some(&cfg), "state-v1 layout a detection b", false),
        );
        record_start(
            d,
            start_fields(Some(&cfg), "state-v1 layout a detection b", false),
        );
        std::fs::write(&cfg, "server: {bind: \"127.0.0.1:2\"}\n").expect("write");
        record_start(
            d,
            start_fields(Some(&cfg), "state-v1 layout a detection c", true),
        );
        record(d, "reload", &[("restart_required", "server.bind".into())]).expect("reload");
        let text = std::fs::read_to_string(d.join(FILE)).expect("log");
        let changed: Vec<String> = text
            .lines()
            .filter(|l| l.contains(" start "))
            .map(|l| parse_fields(l.splitn(3, ' ').nth(2).unwrap_or(""))["changed"].clone())
            .collect();
        assert_eq!(changed, ["first", "none", "config,identity"], "{text}");
        let last_start = last(d, "start").expect("a start");
        assert_eq!(last_start["identity"], "state-v1 layout a detection c");
        assert_eq!(last_start["safe_mode"], "true");
        assert_eq!(
            last(d, "reload").expect("reload")["restart_required"],
            "server.bind"
        );
    }
}
