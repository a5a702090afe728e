//! `regime backup`, `regime restore` and `regime restore-to-time` on the embedded store,
//! around a real `regime serve`: a backup beside the live service, restores refused while it
//! runs, the table returned exactly to a past second, "latest", undoing a restore, and a
//! point-in-time restore that has to come from a backup because a restore happened since.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{json_bars, Server};

const KEY: &str = "dev-key-for-tests";
const CONFIG: &str = "feeds: {demo: false}\nperformance: {batch_size: 50}\n";

fn regime(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regime"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run regime")
}

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {out}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn fails_with(o: &Output, what: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains(what), "expected {what:?} in: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

/// Rows of the table as `regime export` writes them (header dropped), in (symbol, ts) order.
fn table(dir: &Path) -> Vec<String> {
    exported(dir, &[])
}

/// [`table`] with `regime export`'s filters `args`.
fn exported(dir: &Path, args: &[&str]) -> Vec<String> {
    let out = dir.join("export.csv");
    let _ = std::fs::remove_file(&out);
    let mut all = vec![
        "export",
        "--config",
        "config.yaml",
        "--output",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    ok(&regime(dir, &all));
    let text = std::fs::read_to_string(&out).expect("export");
    text.lines().skip(1).map(str::to_string).collect()
}

fn db_rows(s: &Server) -> u64 {
    s.get("/api/v1/system/database", Some(KEY)).json()["rows"]
        .as_u64()
        .unwrap_or(0)
}

fn ingest(s: &Server, symbol: &str, n: usize, day0: i64, total: u64) {
    let r = s.post_json("/api/v1/bars", Some(KEY), &json_bars(symbol, n, day0));
    assert_eq!(r.status, 202, "{}", r.text());
    s.wait_for("rows stored", 30, |s| db_rows(s) == total);
}

#[test]
fn backup_restore_and_point_in_time() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let mut s = Server::start(dir, CONFIG, &[]);
    ingest(&s, "AAA", 300, 10_000, 300);

    // a backup beside the running service
    let out = ok(&regime(dir, &["backup", "b1", "--config", "config.yaml"]));
    assert!(
        out.contains("backup b1") && out.contains("300 rows"),
        "{out}"
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("backups/b1/manifest.json")).expect("manifest"),
    )
    .expect("json");
    assert_eq!(manifest["rows"], 300);
    assert_eq!(manifest["config_file"], "config.yaml");
    assert!(dir.join("backups/b1/config/config.yaml").is_file());
    assert!(dir.join("backups/b1/regime_history.sqlite").is_file());
    assert!(!dir.join("backups/.b1.partial").exists());
    fails_with(&regime(dir, &["backup", "b1"]), "exists already");
    fails_with(&regime(dir, &["backup", "../up"]), "backup name");

    // restores refuse to run under the live service; so does a second service
    fails_with(&regime(dir, &["restore", "b1"]), "stop it first");
    fails_with(
        &regime(dir, &["restore-to-time", "2020-01-01 00:00:00"]),
        "stop it first",
    );
    let second = regime(
        dir,
        &["serve", "--config", "config.yaml", "--bind", "127.0.0.1:0"],
    );
    fails_with(&second, "another regime serve is running");

    // T: a whole second after the first 300 rows were stored and before the next 200
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let t = (now / 1000 + 1) * 1000;
    std::thread::sleep(Duration::from_millis((t - now + 100) as u64));
    let t_text = chrono::DateTime::from_timestamp_millis(t)
        .expect("time")
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let before_t = table(dir);
    assert_eq!(before_t.len(), 300);
    ingest(&s, "AAA", 200, 10_300, 500);
    ingest(&s, "BBB", 100, 10_000, 600);
    s.signal("TERM");
    assert_eq!(s.wait_exit(30), Some(0));
    let all = table(dir);
    assert_eq!(all.len(), 600);

    fails_with(
        &regime(dir, &["restore-to-time", "yesterday"]),
        "YYYY-MM-DD HH:MM:SS",
    );
    fails_with(
        &regime(dir, &["restore-to-time", "2999-01-01 00:00:00"]),
        "in the future",
    );
    fails_with(&regime(dir, &["restore", "nope"]), "no backup nope");

    // point in time from the live table: exactly the rows stored by T; rows a stop during an
    // outage left in the spool were not in the table at T either (written at the next
    // start, they would be): set aside in the safety backup
    let spool = dir.join("data/spool.jsonl");
    let spooled = "[1577836800000,\"ZZZ\",0,0,0,0,0.5,1,0,0,1,0,0,1,0,1]\n\
                   [1577923200000,\"ZZZ\",0,0,0,0,0.5,1,0,0,1,0,0,1,0,1]\n";
    std::fs::write(&spool, spooled).unwrap();
    let out = ok(&regime(
        dir,
        &["restore-to-time", &t_text, "--config", "config.yaml"],
    ));
    assert!(
        out.contains("300 rows kept, 300 removed, and the spool's 2 acknowledged rows"),
        "{out}"
    );
    assert!(!spool.exists());
    assert_eq!(
        table(dir),
        before_t,
        "the table as it was at T, row for row"
    );
    let safety1 = out
        .split("saved as backup ")
        .nth(1)
        .expect("safety backup named")
        .trim()
        .to_string();

    // undo: the automatic backup taken before that restore has all 600 rows
    let out = ok(&regime(
        dir,
        &["restore", &safety1, "--config", "config.yaml"],
    ));
    assert!(out.contains("600 rows"), "{out}");
    assert_eq!(table(dir), all);
    assert_eq!(
        std::fs::read_to_string(&spool).unwrap(),
        spooled,
        "the undo puts the spool back"
    );
    std::fs::remove_file(&spool).unwrap();

    // T again: a restore happened after T, so the live table cannot say what was there at T;
    // the earliest backup taken after T with no restore in between (safety1) can
    let out = ok(&regime(
        dir,
        &["restore-to-time", &t_text, "--config", "config.yaml"],
    ));
    assert!(
        out.contains(&format!("(from backup {safety1})")) && out.contains("300 rows kept"),
        "{out}"
    );
    assert_eq!(table(dir), before_t);

    // latest = b1 (the newest backup taken on purpose, not the automatic ones); the config
    // file and model files come back too
    std::fs::write(dir.join("config.yaml"), "feeds: {demo: false}\n").expect("write");
    std::fs::write(dir.join("models/stray.v1.json"), "{}").expect("write");
    let out = ok(&regime(
        dir,
        &["restore", "latest", "--config", "config.yaml"],
    ));
    assert!(out.contains("restored backup b1: 300 rows"), "{out}");
    assert_eq!(table(dir), before_t);
    assert_eq!(
        std::fs::read_to_string(dir.join("config.yaml")).expect("config"),
        CONFIG
    );
    let models: Vec<String> = std::fs::read_dir(dir.join("models"))
        .expect("models")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!models.iter().any(|m| m == "stray.v1.json"), "{models:?}");

    // the service starts on the restored data and resumes its learning: b1 holds AAA's bar
    // journal (the service had saved no state yet), so AAA catches up from its first bar and
    // labels its next 200 bars exactly as the first run did
    assert!(dir.join("backups/b1/state/pipelines").is_dir());
    let s = Server::start(dir, CONFIG, &[]);
    assert_eq!(db_rows(&s), 300);
    ingest(&s, "AAA", 200, 10_300, 500);
    let aaa = |rows: &[String]| -> Vec<String> {
        rows.iter()
            .filter(|r| r.contains(",AAA,"))
            .cloned()
            .collect()
    };
    assert_eq!(aaa(&table(dir)), aaa(&all), "AAA's rows after the restore");
    let log = std::fs::read_to_string(dir.join("logs/system.log")).expect("log");
    assert!(log.contains("caught up with 300 journaled bars"), "{log}");
    ingest(&s, "CCC", 50, 10_000, 550);
    let list = ok(&regime(
        dir,
        &["backup", "--list", "--config", "config.yaml"],
    ));
    assert!(list.lines().count() >= 5, "{list}");

    // the manual's scripts, with the service running (no systemd unit here)
    let old = dir.join("backups/20000101");
    std::fs::create_dir_all(&old).expect("mkdir");
    let mut m = manifest.clone();
    m["name"] = "20000101".into();
    m["created_at_ms"] = 946_684_800_000i64.into();
    std::fs::write(old.join("manifest.json"), m.to_string()).expect("write");
    let out = ok(&script(dir, "backup.sh", &["viascript"]));
    assert!(
        out.contains("backup viascript") && out.contains("550 rows"),
        "{out}"
    );
    // named by the host's local date, as the manual's check reads it: a host whose date is
    // not UTC's now (UTC+13 from 11:00 UTC on, UTC-11 before; POSIX TZ strings, no zone
    // files needed)
    use chrono::Timelike;
    let tz = if chrono::Utc::now().hour() >= 11 {
        "EAST-13"
    } else {
        "WEST11"
    };
    let date_in = |tz: &str| {
        let o = Command::new("date")
            .arg("+%Y%m%d")
            .env("TZ", tz)
            .output()
            .expect("date");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let (local, utc) = (date_in(tz), date_in("UTC"));
    let out = ok(&script_env(dir, "daily_backup.sh", &[], &[("TZ", tz)]));
    assert!(out.contains("removing daily backup 20000101"), "{out}");
    assert!(!old.exists());
    let named = |d: &str| dir.join("backups").join(d).join("manifest.json").is_file();
    // (a date turning over between the two reads is the one way this can miss: seconds a day)
    if local == date_in(tz) {
        assert!(named(&local), "{out}");
        assert!(local == utc || !named(&utc), "named by UTC's date: {out}");
    }
    fails_with(
        &script(dir, "restore_to_time.sh", &[&t_text]),
        "stop it first",
    );
    fails_with(&script(dir, "restore_backup.sh", &[]), "usage");

    // the overview and the diagnostics archive against the live service
    let url = format!("http://{}", s.addr);
    let env = [("REGIME_URL", url.as_str())];
    let out = ok(&script_env(dir, "system_status.sh", &[], &env));
    assert!(
        out.contains("status healthy") && out.contains("embedded connected: 550 rows"),
        "{out}"
    );
    let out = ok(&script_env(dir, "collect_diagnostics.sh", &["diag"], &env));
    let archive = dir.join(out.trim());
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(&archive)
        .output()
        .expect("tar");
    let listing = String::from_utf8_lossy(&listing.stdout);
    for want in [
        "api/health.json",
        "api/prometheus.txt",
        "logs/system.log",
        "config.yaml",
        "host/backups.txt",
    ] {
        assert!(listing.contains(want), "{want} missing from {listing}");
    }
}

fn script(dir: &Path, name: &str, args: &[&str]) -> Output {
    script_env(dir, name, args, &[])
}

fn script_env(dir: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name);
    Command::new("bash")
        .arg(path)
        .args(args)
        .current_dir(dir)
        .env("REGIME_BIN", env!("CARGO_BIN_EXE_regime"))
        .env("REGIME_CONFIG", "config.yaml")
        .env("REGIME_UNIT", "regime-test-no-such-unit")
        .env("REGIME_LOG_DIR", dir.join("logs"))
        .envs(env.iter().copied())
        .output()
        .expect("run script")
}

/// `regime export --symbol … --from … --to …`: only those symbols, only that span (a date
/// alone: its start for --from, the whole day for --to), the rows exactly the unfiltered
/// export's; a span that is backwards or a time that does not parse is one clear line.
#[test]
fn export_takes_symbols_and_a_time_range() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let s = Server::start(dir, CONFIG, &[]);
    ingest(&s, "AAA", 60, 10_000, 60);
    ingest(&s, "BBB", 60, 10_000, 120);
    ingest(&s, "CCC", 60, 10_000, 180);
    drop(s);
    let all = table(dir);
    assert_eq!(all.len(), 180);
    // day 10,010 is 1997-05-29, day 10,020 1997-06-08
    let part = exported(
        dir,
        &[
            "--symbol",
            "BBB,CCC",
            "--from",
            "1997-05-29",
            "--to",
            "1997-06-08",
        ],
    );
    let want: Vec<String> = all
        .iter()
        .filter(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1] == "BBB" || f[1] == "CCC") && f[0] >= "1997-05-29" && f[0] < "1997-06-09"
        })
        .cloned()
        .collect();
    assert_eq!(want.len(), 2 * 11, "{:?}", &all[..3]);
    assert_eq!(part, want);
    fails_with(
        &regime(
            dir,
            &[
                "export",
                "--config",
                "config.yaml",
                "--from",
                "1997-06-08",
                "--to",
                "1997-05-29",
            ],
        ),
        "--from is after --to",
    );
    fails_with(
        &regime(
            dir,
            &["export", "--config", "config.yaml", "--from", "yesterday"],
        ),
        "--from",
    );
    // to standard output (a pipe into a compressor, a loader): the same rows, in
    // either format; a file named otherwise than its format is still refused
    let piped = ok(&regime(
        dir,
        &["export", "--config", "config.yaml", "--output", "-"],
    ));
    let lines: Vec<String> = piped.lines().skip(1).map(str::to_string).collect();
    assert_eq!(lines, all);
    let parquet = regime(
        dir,
        &[
            "export",
            "--config",
            "config.yaml",
            "--format",
            "parquet",
            "--output",
            "-",
        ],
    );
    assert!(parquet.status.success());
    assert!(
        parquet.stdout.starts_with(b"PAR1") && parquet.stdout.ends_with(b"PAR1"),
        "{} bytes",
        parquet.stdout.len()
    );
    fails_with(
        &regime(
            dir,
            &["export", "--config", "config.yaml", "--output", "x.txt"],
        ),
        "the extension does not match --format csv",
    );
}

/// Rows the store refused as data (`unwritable.jsonl` beside the spool, acknowledged and
/// kept for an operator) are in the backup; a restore puts them back where there are none
/// (a new host) and leaves a file that is there as it is.
#[test]
fn refused_rows_are_backed_up_and_restored_to_a_new_host() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let s = Server::start(dir, CONFIG, &[]);
    ingest(&s, "AAA", 30, 10_000, 30);
    drop(s);
    let refused = dir.join("data/unwritable.jsonl");
    let line = "{\"row\":[\"AAA\",864000000000],\"error\":\"value out of range\"}\n";
    std::fs::write(&refused, line).expect("write");
    let out = ok(&regime(dir, &["backup", "u1", "--config", "config.yaml"]));
    assert!(out.contains("backup u1"), "{out}");
    let manifest = std::fs::read_to_string(dir.join("backups/u1/manifest.json")).expect("manifest");
    assert!(manifest.contains("state/unwritable.jsonl"), "{manifest}");
    // a new host: the file is gone
    std::fs::remove_file(&refused).expect("remove");
    ok(&regime(dir, &["restore", "u1", "--config", "config.yaml"]));
    assert_eq!(std::fs::read_to_string(&refused).expect("restored"), line);
    // an operator saw to them and emptied it: a restore does not bring them back
    std::fs::write(&refused, "").expect("empty");
    ok(&regime(dir, &["restore", "u1", "--config", "config.yaml"]));
    assert_eq!(std::fs::read_to_string(&refused).expect("kept"), "");
}

/// Overwrite the first 64 bytes of `regime_history`'s root page in an SQLite file: damage
/// SQLite's check finds (a flipped byte inside a row's values need not be).
fn break_table_pages(db: &Path) {
    let (root, page) = {
        let c = rusqlite::Connection::open(db).expect("open");
        let root: i64 = c
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'regime_history'",
                [],
                |r| r.get(0),
            )
            .expect("rootpage");
        let page: i64 = c
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .expect("page_size");
        (root as usize, page as usize)
    };
    let mut bytes = std::fs::read(db).expect("read");
    let at = (root - 1) * page;
    bytes[at..at + 64].fill(0xff);
    std::fs::write(db, bytes).expect("write");
}

/// A restore checks the backup whole before it changes anything — every file its manifest
/// lists, of its size and CRC-32, and an embedded table passing SQLite's check — and a
/// damaged live store, the case a restore is for, is replaced by a good backup (the
/// automatic backup of the state before keeps the damaged table as found, and is itself
/// refused for a restore). Before, a backup with damaged pages was restored as the live
/// store silently, and a damaged live store made every restore fail at its safety backup.
#[test]
fn damaged_backups_are_refused_and_a_damaged_store_is_replaced() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let s = Server::start(dir, CONFIG, &[]);
    ingest(&s, "AAA", 300, 10_000, 300);
    for name in ["good", "flipped", "missing", "older"] {
        ok(&regime(dir, &["backup", name, "--config", "config.yaml"]));
    }
    drop(s);
    let before = table(dir);
    assert_eq!(before.len(), 300);
    let backups = || {
        std::fs::read_dir(dir.join("backups"))
            .expect("backups")
            .count()
    };
    let restore = |name: &str| regime(dir, &["restore", name, "--config", "config.yaml"]);

    // a byte changed anywhere in the table file: its CRC-32
    let p = dir.join("backups/flipped/regime_history.sqlite");
    let mut bytes = std::fs::read(&p).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&p, bytes).expect("write");
    fails_with(
        &restore("flipped"),
        "backup flipped is damaged: regime_history.sqlite has changed since the backup was written",
    );
    // a file gone
    let model = std::fs::read_dir(dir.join("backups/missing/models"))
        .expect("models")
        .next()
        .expect("a model file")
        .expect("entry")
        .path();
    std::fs::remove_file(&model).expect("remove");
    fails_with(&restore("missing"), "is missing; nothing was changed");
    // a backup written before checksums were kept (none in its manifest): SQLite's check
    let m = dir.join("backups/older/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&m).expect("manifest")).expect("json");
    assert!(manifest["crc32"].as_array().is_some_and(|c| !c.is_empty()));
    manifest.as_object_mut().expect("object").remove("crc32");
    std::fs::write(&m, manifest.to_string()).expect("write");
    break_table_pages(&dir.join("backups/older/regime_history.sqlite"));
    fails_with(
        &restore("older"),
        "regime_history.sqlite fails SQLite's check",
    );
    // none of these changed the live state or took a backup of it
    assert_eq!(table(dir), before);
    assert_eq!(backups(), 4);
    // a backup disk that fills (a 40 KB file size limit: above the live store's 32 KB
    // shared-memory file, below the copy) names the copy, not the live store, whose file
    // is as it was; nothing is left of the backup. So does a restore's backup of the current
    // state, which it takes first: the restore stops there, and says that it changed nothing
    for (command, said) in [
        (
            "backup filled",
            "writing the store's copy backups/.filled.partial/regime_history.sqlite",
        ),
        (
            "restore good",
            "nothing was restored or changed: the before-restore backup of the current state failed: writing the store's copy backups/.before-restore-",
        ),
    ] {
        let full = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f 80; exec \"$0\" {command} --config config.yaml"
            ))
            .arg(env!("CARGO_BIN_EXE_regime"))
            .current_dir(dir)
            .output()
            .expect("run sh");
        fails_with(&full, said);
        assert_eq!(backups(), 4);
        assert_eq!(table(dir), before);
    }

    // the live table damaged: the service keeps what it acknowledges in the spool and says
    // what to do, once (not a "reconnected" line a second); the good backup replaces it
    break_table_pages(&dir.join("data/regime.sqlite"));
    let broken = regime(
        dir,
        &["export", "--config", "config.yaml", "--output", "x.csv"],
    );
    assert!(!broken.status.success(), "export of the damaged store");
    // the daily backup and an export fail with the remedy in their one line
    let said = "the store's file is damaged: stop the service and run `regime restore latest`";
    fails_with(&broken, said);
    fails_with(
        &regime(dir, &["backup", "daily", "--config", "config.yaml"]),
        said,
    );
    assert_eq!(backups(), 4);
    let s = Server::start(dir, CONFIG, &[]);
    // the file still opens: the check at start names the damage before any write meets it
    s.wait_for("the store check at start", 30, |s| {
        s.get("/api/v1/system/database", Some(KEY)).json()["integrity"] != "checking"
    });
    let db = s.get("/api/v1/system/database", Some(KEY)).json();
    assert_eq!(db["integrity"], "damaged", "{db}");
    assert_eq!(s.get("/api/v1/health", None).json()["status"], "degraded");
    let c = s
        .get("/api/v1/components/historical_analyzer", Some(KEY))
        .json();
    assert_eq!(c["state"], "degraded", "{c}");
    assert_eq!(c["details"]["store_integrity"], "damaged", "{c}");
    assert!(s
        .get("/metrics", None)
        .text()
        .lines()
        .any(|l| l == "regime_store_damaged 1"));
    let r = s.post_json("/api/v1/bars", Some(KEY), &json_bars("BBB", 20, 20_000));
    assert_eq!(r.status, 202, "{}", r.text());
    s.wait_for("the write refused", 30, |s| {
        s.get("/api/v1/system/database", Some(KEY)).json()["writer_up"] == false
    });
    std::thread::sleep(Duration::from_millis(2500));
    let db = s.get("/api/v1/system/database", Some(KEY)).json();
    let said = db["last_error"].as_str().unwrap_or_default().to_string();
    assert!(
        said.contains("malformed") && said.contains("restore a backup (regime restore latest)"),
        "{said}"
    );
    assert_eq!(s.get("/api/v1/health", None).json()["status"], "degraded");
    drop(s);
    let spool = std::fs::read_to_string(dir.join("data/spool.jsonl")).expect("spool");
    assert_eq!(spool.lines().filter(|l| l.contains("BBB")).count(), 20);
    let log = std::fs::read_to_string(dir.join("logs/error.log")).expect("error.log");
    assert_eq!(
        log.matches("the store's file is damaged").count(),
        1,
        "{log}"
    );
    assert!(!log.contains("store reconnected"), "{log}");
    assert_eq!(log.matches("store check: ").count(), 1, "{log}");
    assert!(
        log.contains("is damaged (SQLite quick_check: ") && log.contains("regime restore latest"),
        "{log}"
    );
    let out = ok(&restore("good"));
    assert!(
        out.contains("restored backup good: 300 rows") && out.contains("kept as found"),
        "{out}"
    );
    assert_eq!(table(dir), before);
    // the restored file passes the check; the service is healthy again
    let s = Server::start(dir, CONFIG, &[]);
    s.wait_for("the store check at start", 30, |s| {
        s.get("/api/v1/system/database", Some(KEY)).json()["integrity"] == "ok"
    });
    assert_eq!(s.get("/api/v1/health", None).json()["status"], "healthy");
    assert!(s
        .get("/metrics", None)
        .text()
        .lines()
        .any(|l| l == "regime_store_damaged 0"));
    drop(s);
    let safety = out
        .split("saved as backup ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .expect("safety backup named")
        .to_string();
    let kept = dir.join("backups").join(&safety);
    assert!(kept.join("regime_history.sqlite").is_file());
    let spooled = std::fs::read_to_string(kept.join("state/spool.jsonl")).expect("spool kept");
    assert_eq!(spooled.lines().filter(|l| l.contains("BBB")).count(), 20);
    fails_with(&restore(&safety), "copied as found");
    let listed = ok(&regime(
        dir,
        &["backup", "--list", "--config", "config.yaml"],
    ));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(safety.as_str()) && l.contains("kept as found")),
        "{listed}"
    );
}

/// The store's file removed (or another copied over it) while the service runs: said once as
/// an error within seconds, and the writer and readers move to the file now at the path.
/// Before, the service kept writing into the removed file — every later row gone at the
/// next start — and answered reads from it.
#[test]
fn a_store_file_removed_under_the_service_is_said_and_left() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let s = Server::start(dir, CONFIG, &[]);
    ingest(&s, "AAA", 40, 10_000, 40);
    for f in ["regime.sqlite", "regime.sqlite-wal", "regime.sqlite-shm"] {
        let _ = std::fs::remove_file(dir.join("data").join(f));
    }
    s.wait_for("the removal said", 10, |s| {
        s.get("/api/v1/system/database", Some(KEY)).json()["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("removed or replaced while the service ran"))
    });
    // the next rows go to a file at the path, which the reads see
    ingest(&s, "BBB", 30, 10_000, 30);
    assert!(dir.join("data/regime.sqlite").is_file());
    drop(s);
    let log = std::fs::read_to_string(dir.join("logs/error.log")).expect("error.log");
    assert_eq!(
        log.matches("removed or replaced while the service ran")
            .count(),
        1,
        "{log}"
    );
    assert_eq!(table(dir).len(), 30);
}
