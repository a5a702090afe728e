//! The `regime` binary end to end: bad input, formats, causal/ex-post, evaluate.

use std::path::Path;
use std::process::{Command, Output};

fn regime(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regime"))
        .args(args)
        .output()
        .expect("run regime")
}

/// `regime detect --input INPUT --output OUT [EXTRA...]`.
fn detect(input: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regime"))
        .arg("detect")
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(out)
        .args(extra)
        .output()
        .expect("run regime")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const HEADER: &str = "timestamp,symbol,open,high,low,close,volume\n";

fn good_rows(sym: &str, n: usize, start_day: usize) -> String {
    let mut s = String::new();
    let mut c = 100.0f64;
    for i in 0..n {
        let o = c;
        c *= 1.0 + 0.01 * (((i * 7919) % 13) as f64 / 13.0 - 0.5);
        let (h, l) = (o.max(c) * 1.004, o.min(c) * 0.996);
        let day = start_day + i;
        s += &format!(
            "{},{sym},{o:.4},{h:.4},{l:.4},{c:.4},{}\n",
            1_000_000_000 + day * 86_400,
            1000 + i
        );
    }
    s
}

#[test]
fn every_kind_of_bad_row_is_named_and_counted() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("bad.csv");
    let mut csv = String::from(HEADER);
    csv += &good_rows("AAA", 50, 0);
    let bad = [
        "1000086400,AAA,NaN,101,99,100,5",  // non_finite (row 51)
        "1300000000,AAA,100,101,99,-3,5",   // non_positive_price
        "1300000100,AAA,100,98,99,98.5,5",  // high_below_low
        "1300000200,AAA,105,101,99,100,5",  // open_outside_range
        "1300000300,AAA,100,101,99,97,5",   // close_outside_range
        "1300000400,AAA,100,101,99,100,-5", // negative_volume
        "1000000000,AAA,100,101,99,100,5",  // timestamp_not_increasing
        "1300000500,AAA,100,101,99,abc,5",  // unparseable
        "not-a-date,AAA,100,101,99,100,5",  // unparseable timestamp
        ",AAA,100,101,99,100,5",            // missing timestamp
        "1300000600,AAA,100,101,99,100,5,", // a field too many (unparseable)
        "1300000700,AAA,100,101",           // fields missing (unparseable)
    ];
    for b in bad {
        csv += b;
        csv.push('\n');
    }
    csv += &good_rows("BBB", 40, 0);
    std::fs::write(&input, csv).expect("write");
    let out = dir.path().join("out.csv");
    let o = detect(&input, &out, &[]);
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "bad rows without --skip-bad-rows must fail"
    );
    assert!(!out.exists(), "nothing half-written");
    for (row, needle) in [
        (51, "open is not finite"),
        (52, "close must be > 0"),
        (53, "is below low"),
        (54, "open 105 is outside"),
        (55, "close 97 is outside"),
        (56, "volume must be >= 0"),
        (
            57,
            "timestamp 2001-09-09 01:46:40 is not after the previous bar's 2001-10-",
        ),
        (58, "cannot parse close from \"abc\""),
        (59, "cannot parse timestamp from \"not-a-date\""),
        (60, "timestamp is missing"),
        (61, "row has 8 fields where the header has 7"),
        (62, "row has 4 fields where the header has 7"),
    ] {
        let line = format!("row {row} [AAA]: ");
        assert!(
            err.lines().any(|l| l.contains(&line) && l.contains(needle)),
            "expected `{line}...{needle}` in:\n{err}"
        );
    }
    for k in [
        "non_finite=1",
        "non_positive_price=1",
        "high_below_low=1",
        "open_outside_range=1",
        "close_outside_range=1",
        "negative_volume=1",
        "timestamp_not_increasing=1",
        "unparseable=4",
        "missing_field=1",
    ] {
        assert!(err.contains(k), "missing count {k} in:\n{err}");
    }
    // the unreadable timestamp brings the forms that are read
    assert!(
        err.contains("hint: 1 timestamp was not read; timestamps are read as YYYY-MM-DD"),
        "{err}"
    );
    // with --skip-bad-rows the valid rows are labelled
    let o = detect(&input, &out, &["--skip-bad-rows"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).expect("output");
    assert_eq!(text.lines().count(), 1 + 50 + 40);
    assert!(text.starts_with(
        "timestamp,symbol,regime_id,regime_name,volatility,trend,structure,confidence"
    ));
}

#[test]
fn detect_takes_the_regime_settings_of_a_config_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("in.csv");
    std::fs::write(&input, format!("{HEADER}{}", good_rows("A", 600, 0))).expect("write");
    let out = dir.path().join("o.csv");
    let run = |cfg: &Path| {
        detect(
            input.as_ref(),
            out.as_ref(),
            &["--config", cfg.to_str().unwrap()],
        )
    };
    // a missing file: one line naming it (the reason said once), no output
    let o = run(&dir.path().join("absent.yaml"));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(
        e.contains("absent.yaml") && e.matches("No such file").count() == 1,
        "{e}"
    );
    assert!(!out.exists());
    // a setting out of the pipeline's range: refused with its key
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "regime: {switch_margin: 2}\n").expect("write");
    let o = run(&bad);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("regime.switch_margin"),
        "{}",
        stderr(&o)
    );
    // a valid one is used
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "regime: {switch_margin: 0.3}\n").expect("write");
    let o = run(&good);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.exists());
}

#[test]
fn file_level_errors_are_one_clear_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("o.csv");
    // a wrong path in every input format: one line naming it, the reason said once
    for missing in [
        "/nonexistent/x.csv",
        "/nonexistent/x.csv.gz",
        "/nonexistent/x.parquet",
        "/nonexistent/x.arrow",
    ] {
        let o = regime(&[
            "detect",
            "--input",
            missing,
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(!o.status.success());
        let e = stderr(&o);
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        assert!(
            e.contains(missing) && e.matches("No such file").count() == 1,
            "{e}"
        );
    }

    // an empty file says so, rather than that a column is missing
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").expect("write");
    let o = detect(&empty, &out, &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(
        e.contains("empty.csv") && e.contains("the file is empty"),
        "{e}"
    );
    assert!(!out.exists());

    let input = dir.path().join("noclose.csv");
    std::fs::write(&input, "timestamp,open,high,low\n2020-01-01,1,2,0.5\n").expect("write");
    let o = detect(&input, &out, &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("missing required column `close`"), "{e}");

    // text under another extension is read as CSV, and its header found wanting
    let input = dir.path().join("x.txt");
    std::fs::write(&input, "a").expect("write");
    let o = detect(&input, &out, &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("missing required column `timestamp`"), "{e}");

    // UTF-16 text (Excel's "Unicode Text"), under either extension: what it is and what to
    // do, not "invalid utf-8 in field 0"
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(
            "Date,Close\n2024-01-02,1\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    for name in ["u16.csv", "u16.txt"] {
        let input = dir.path().join(name);
        std::fs::write(&input, &utf16).expect("write");
        let e = stderr(&detect(&input, &out, &[]));
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        assert!(
            e.contains(&format!("{name}: the file is UTF-16 text")),
            "{e}"
        );
    }
}

/// Damaged Parquet and Arrow files, each found by changing a byte or two of a small file of
/// ours, on which arrow-rs panics (a schema naming an integer 54,592 bits wide, a timestamp
/// unit or a type tag it does not know) or asks the allocator for a size it takes on trust
/// (a footer block's body, a compressed buffer's length: 10^11–10^19 bytes, an abort rather
/// than a panic). Before, `detect` ended with a backtrace or `memory allocation of … bytes
/// failed` (SIGABRT, its temporary output left behind); now each is one line naming the
/// file, exit 2, and nothing in the output directory — for `evaluate` too.
#[test]
fn corrupt_parquet_and_arrow_files_are_one_clear_line() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corrupt");
    let mut inputs: Vec<_> = std::fs::read_dir(&data)
        .expect("tests/data/corrupt")
        .map(|e| e.expect("entry").path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 6, "{inputs:?}");
    for input in &inputs {
        let name = input.file_name().unwrap().to_str().unwrap();
        let dir = tempfile::tempdir().expect("tmp");
        for out in ["o.parquet", "o.csv"] {
            let o = detect(input, &dir.path().join(out), &[]);
            let e = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{name}: {e}");
            assert_eq!(e.trim().lines().count(), 1, "{name}: {e}");
            assert!(
                e.starts_with("error: ") && e.contains(name) && e.contains("corrupt"),
                "{name}: {e}"
            );
        }
        let o = regime(&["evaluate", "--input", input.to_str().unwrap()]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {e}");
        assert!(e.contains(name) && e.contains("corrupt"), "{name}: {e}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert!(left.is_empty(), "{name}: left behind {left:?}");
    }
}

#[test]
fn an_output_path_naming_the_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("bars.csv");
    let text = format!("{HEADER}{}", good_rows("A", 300, 0));
    std::fs::write(&input, &text).expect("write");
    let link = dir.path().join("link.csv");
    std::fs::hard_link(&input, &link).expect("link");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    let dotted = sub.join("..").join("bars.csv");
    for out in [&input, &link, &dotted] {
        for mode in ["causal", "ex-post"] {
            let o = detect(&input, out, &["--mode", mode]);
            assert!(!o.status.success(), "{}", out.display());
            let e = stderr(&o);
            assert_eq!(e.trim().lines().count(), 1, "{e}");
            assert!(e.contains("is the input file"), "{e}");
            assert_eq!(std::fs::read_to_string(&input).expect("read"), text);
        }
    }
    // another path is written as usual
    let out = dir.path().join("labels.csv");
    let o = detect(&input, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&out).expect("out").lines().count(),
        301
    );
}

#[test]
fn degenerate_bars_and_close_only_series_are_labelled() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("deg.csv");
    let mut s = String::from("date,close\n");
    for i in 0..300 {
        let c = 50.0 + ((i * 37) % 11) as f64 * 0.1;
        s += &format!("2001-{:02}-{:02},{c}\n", 1 + i / 28 % 12, 1 + i % 28);
    }
    // dates repeat after 336 days: keep to 300 rows, strictly increasing within a year
    std::fs::write(&input, s).expect("write");
    let out = dir.path().join("deg.parquet");
    let o = detect(&input, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.exists());

    let flat = dir.path().join("flat.csv");
    let mut s = String::from(HEADER);
    for i in 0..200 {
        s += &format!("{},X,10,10,10,10,0\n", 1_600_000_000 + i * 60);
    }
    std::fs::write(&flat, s).expect("write");
    let out = dir.path().join("flat_out.csv");
    let o = detect(&flat, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&out).expect("out").lines().count(),
        201
    );
}

#[test]
fn generate_detect_evaluate_round_trip_in_both_formats() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("syn.parquet");
    let o = regime(&[
        "generate",
        "--output",
        data.to_str().unwrap(),
        "--symbols",
        "3",
        "--bars",
        "3000",
        "--seed",
        "11",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv_out = dir.path().join("det.csv");
    let pq_out = dir.path().join("det.parquet");
    for out in [&csv_out, &pq_out] {
        let o = detect(&data, out, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let text = std::fs::read_to_string(&csv_out).expect("csv");
    assert_eq!(text.lines().count(), 1 + 9000);
    let evaluate = |extra: &[&str]| {
        let mut args = vec!["evaluate", "--input", data.to_str().unwrap()];
        args.extend_from_slice(extra);
        regime(&args)
    };
    let o = evaluate(&["--score-last", "0.3", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["bars_scored"], 3 * 900);
    let vol = v["accuracy"]["final"]["volatility"]
        .as_f64()
        .expect("number");
    assert!(vol > 0.8, "volatility accuracy {vol}");
    // calibration of the reported probabilities: every scored bar in a bin of its dimension,
    // each bin's mean inside the bin, and over all bars the probability said is the share
    // right within a few points (the generator's own model: the pipeline's probabilities
    // should mean what they say)
    for dim in ["volatility", "trend", "structure", "regime"] {
        let bins = v["calibration"][dim].as_array().expect("bins");
        let (mut bars, mut said, mut right) = (0u64, 0.0, 0.0);
        for b in bins {
            let n = b["bars"].as_u64().expect("bars");
            let p = b["mean_probability"].as_f64().expect("p");
            let (from, to) = (
                b["from"].as_f64().expect("from"),
                b["to"].as_f64().expect("to"),
            );
            assert!(n > 0 && (from..=to).contains(&p), "{dim}: {b}");
            bars += n;
            said += p * n as f64;
            right += b["share_right"].as_f64().expect("share") * n as f64;
        }
        assert_eq!(bars, 3 * 900, "{dim}");
        let (said, right) = (said / bars as f64, right / bars as f64);
        assert!(
            (said - right).abs() < 0.06,
            "{dim}: said {said:.3}, right {right:.3}"
        );
    }
    // the table: per-dimension confusion of the final labels, each true state's row of
    // shares, its bars counted (the same 2,700 bars in every dimension)
    let o = evaluate(&["--score-last", "0.3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(table.contains("confusion of the final labels"), "{table}");
    assert!(table.contains("calibration of the final labels"), "{table}");
    for dim in ["volatility", "trend", "structure"] {
        let block: Vec<&str> = table
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(dim) || !l.contains("bars"))
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .collect();
        let bars: u64 = block
            .iter()
            .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
            .sum();
        assert_eq!(bars, 2700, "{dim}: {block:?}");
        for l in &block {
            let shares: f64 = l
                .split_whitespace()
                .skip(1)
                .take(block.len())
                .filter_map(|x| x.parse::<f64>().ok())
                .sum();
            assert!((shares - 1.0).abs() < 0.003, "{dim}: {l}");
        }
    }
    // the wrong column named as labels: every row refused, and a hint saying what a label is
    let o = evaluate(&["--label-column", "close"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("hint: 9000 labels were not read; a label is a regime id 0-17"),
        "{e}"
    );
    // a label column that is not there: named, with the columns found and how to name another
    let o = evaluate(&["--label-column", "regime_truth"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("missing the label column `regime_truth` (found: timestamp,symbol,open"),
        "{e}"
    );
    assert!(e.contains("--label-column"), "{e}");
    // versioned model files, one per symbol
    let models = dir.path().join("models");
    let o = detect(
        data.as_ref(),
        csv_out.as_ref(),
        &["--models-dir", models.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut files: Vec<String> = std::fs::read_dir(&models)
        .expect("models dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(
        files[0].starts_with("SYN000.v") && files[0].ends_with(".json"),
        "{files:?}"
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(models.join(&files[0])).expect("read"))
            .expect("model json");
    assert_eq!(m["bars_seen"], 3000);
    assert_eq!(m["params"]["sigma"].as_array().map(|a| a.len()), Some(3));
    // ex-post mode is its own, clearly named mode
    let ex = dir.path().join("expost.csv");
    let o = detect(&data, &ex, &["--mode", "ex-post"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(Path::new(&ex).exists());
}

#[test]
fn asking_for_a_missing_gpu_backend_is_an_error() {
    let o = regime(&[
        "detect",
        "--input",
        "a.csv",
        "--output",
        "b.csv",
        "--backend",
        "cuda",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("backend"));
}

/// `regime export`, `backup` and `restore-to-time` where no service has stored anything:
/// one clear line each, and no empty store left behind (opening it used to create one, and
/// export 0 rows or back up an empty table with success).
#[test]
fn store_commands_without_a_store_say_so_and_create_none() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("h.csv");
    for (args, what) in [
        (
            vec!["export", "--output", out.to_str().unwrap()],
            "nothing to export",
        ),
        (vec!["backup"], "nothing to back up"),
        (
            vec!["restore-to-time", "2024-01-02 00:00:00"],
            "nothing to return to a past time",
        ),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_regime"))
            .current_dir(dir.path())
            .args(&args)
            .output()
            .expect("run regime");
        assert!(!o.status.success(), "{args:?}");
        let e = stderr(&o);
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        assert!(e.contains("no such store file") && e.contains(what), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|d| d.expect("entry").file_name())
            .collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
    // no backups: the list is empty on stdout, and stderr says where it looked
    let o = Command::new(env!("CARGO_BIN_EXE_regime"))
        .current_dir(dir.path())
        .args(["backup", "--list"])
        .output()
        .expect("run regime");
    assert!(o.status.success() && o.stdout.is_empty());
    assert!(
        stderr(&o).contains("no complete backups in backups"),
        "{}",
        stderr(&o)
    );
}

/// A generated one-symbol Parquet input of `bars` bars in `dir`, and an empty `out` folder
/// beside it.
fn generated_input(dir: &Path, bars: usize, seed: u64) -> (std::path::PathBuf, std::path::PathBuf) {
    let input = dir.join("in.parquet");
    let o = regime(&[
        "generate",
        "--output",
        input.to_str().unwrap(),
        "--bars",
        &bars.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out_dir = dir.join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    (input, out_dir)
}

/// A file size limit (`ulimit -f`, with SIGXFSZ ignored so that writes fail with EFBIG)
/// stands in for a disk that fills while the output is written (on the writer thread,
/// after the first of several pieces): one clear error line, a non-zero exit, and nothing left
/// in the output folder — no partial file, no temporary file.
#[test]
fn output_that_cannot_be_written_in_full_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let (input, out_dir) = generated_input(dir.path(), 300_000, 3);
    let out = out_dir.join("detections.parquet");
    let o = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 2048; exec \"$0\" detect --input \"$1\" --output \"$2\"")
        .arg(env!("CARGO_BIN_EXE_regime"))
        .arg(&input)
        .arg(&out)
        .output()
        .expect("run sh");
    assert!(!o.status.success());
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(
        e.contains("detections.parquet") && e.contains("File too large"),
        "{e}"
    );
    let left: Vec<_> = std::fs::read_dir(&out_dir)
        .expect("list")
        .map(|d| d.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // a device or stream that fails at the end is the one line too (it was preceded by the
    // run's "detected … -> /dev/full" success line)
    if Path::new("/dev/full").exists() {
        let small = dir.path().join("small.csv");
        std::fs::write(&small, format!("{HEADER}{}", good_rows("A", 50, 0))).expect("write");
        let o = detect(&small, Path::new("/dev/full"), &[]);
        assert_eq!(o.status.code(), Some(2));
        let e = stderr(&o);
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        assert!(e.contains("No space left on device"), "{e}");
    }
}

/// `kill -9` skips a failed write's clean-up: the killed run's hidden temporary file stays
/// (no output appears), and a later run into the same folder removes it once its process
/// is gone and it has lain untouched for ten minutes — but not one of a live process, nor
/// one written recently.
#[test]
fn a_killed_runs_temporary_file_is_removed_by_a_later_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let (input, out_dir) = generated_input(dir.path(), 400_000, 4);
    let out = out_dir.join("labels.parquet");
    let mut child = Command::new(env!("CARGO_BIN_EXE_regime"))
        .args(["detect", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let killed_tmp = out_dir.join(format!(".labels.parquet.tmp{}", child.id()));
    let t0 = std::time::Instant::now();
    while !killed_tmp.exists() && t0.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert!(killed_tmp.exists(), "the killed run's temporary file");
    assert!(!out.exists());

    let age = |p: &Path, secs: u64| {
        let f = std::fs::File::options().write(true).open(p).expect("open");
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(secs))
            .expect("set mtime");
    };
    age(&killed_tmp, 601);
    // a live process's (this test's own), however old; a dead one's written a minute ago
    let live = out_dir.join(format!(".labels.parquet.tmp{}", std::process::id()));
    std::fs::write(&live, "x").expect("write");
    age(&live, 3600);
    let recent = out_dir.join(".labels.parquet.tmp4000000001");
    std::fs::write(&recent, "x").expect("write");
    age(&recent, 60);

    let o = detect(&input, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.exists());
    assert!(!killed_tmp.exists(), "the dead run's idle file is removed");
    assert!(live.exists() && recent.exists());
}

/// On a machine with no display, looking for a wgpu adapter prints nothing that is not
/// ours: Mesa's device-select layer used to ask libwayland for a display, which printed
/// `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` twice.
#[test]
fn a_headless_gpu_probe_prints_no_foreign_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (input, models) = (p("in.parquet"), p("models"));
    let o = regime(&["generate", "--output", &input, "--bars", "600"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = regime(&[
        "detect",
        "--input",
        &input,
        "--output",
        &p("cpu.parquet"),
        "--models-dir",
        &models,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regime"));
    for k in [
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "XDG_RUNTIME_DIR",
        "NODEVICE_SELECT",
        "VK_LOADER_LAYERS_DISABLE",
    ] {
        cmd.env_remove(k);
    }
    let args = ["detect", "--input", &input, "--output", &p("gpu.parquet")];
    let o = cmd
        .args(args)
        .args(["--backend", "wgpu", "--model", &models])
        .output()
        .expect("run regime");
    let err = stderr(&o);
    if !o.status.success() {
        assert!(
            !std::env::var("REGIME_REQUIRE_WGPU").is_ok_and(|v| v == "1"),
            "REGIME_REQUIRE_WGPU=1 but wgpu detection failed: {err}"
        );
        regime_kernels::test_support::record_skip(
            "a_headless_gpu_probe_prints_no_foreign_errors",
            &format!("no wgpu adapter: {err}"),
        );
        return;
    }
    assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
    assert!(!err.contains("error"), "{err}");
}

/// What pandas, polars and pyarrow write by default must read: Parquet with any standard
/// codec (polars' default is ZSTD), Arrow IPC files (Feather v2, LZ4 by default in pyarrow)
/// and streams, and gzip-compressed CSV. Every encoding of the same bars gives byte-identical
/// labels, and `.feather` and `.csv.gz` output hold the same rows as the CSV.
#[test]
fn every_parquet_codec_and_arrow_ipc_and_gzip_csv_give_the_same_labels() {
    use arrow::ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
    use arrow::ipc::CompressionType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
    use parquet::file::properties::WriterProperties;

    let dir = tempfile::tempdir().expect("tmp");
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    // the same bars as Parquet, CSV and gzip-compressed CSV
    for name in ["syn.parquet", "syn.csv", "syn.csv.gz"] {
        let o = regime(&[
            "generate",
            "--output",
            &p(name),
            "--symbols",
            "2",
            "--bars",
            "1500",
            "--seed",
            "5",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let r = ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(p("syn.parquet")).expect("open"),
    )
    .expect("parquet")
    .build()
    .expect("reader");
    let batches: Vec<_> = r.collect::<Result<_, _>>().expect("batches");
    let schema = batches[0].schema();

    let mut inputs = vec![p("syn.parquet")];
    for (name, c) in [
        ("zstd", Compression::ZSTD(ZstdLevel::default())),
        ("lz4raw", Compression::LZ4_RAW),
        ("lz4", Compression::LZ4),
        ("gzip", Compression::GZIP(GzipLevel::default())),
        ("brotli", Compression::BROTLI(BrotliLevel::default())),
        ("none", Compression::UNCOMPRESSED),
    ] {
        let path = p(&format!("{name}.parquet"));
        let props = WriterProperties::builder().set_compression(c).build();
        let f = std::fs::File::create(&path).expect("create");
        let mut w = ArrowWriter::try_new(f, schema.clone(), Some(props)).expect("writer");
        for b in &batches {
            w.write(b).expect("write");
        }
        w.close().expect("close");
        inputs.push(path);
    }
    for (name, c) in [
        ("plain.arrow", None),
        ("lz4.feather", Some(CompressionType::LZ4_FRAME)),
        ("zstd.feather", Some(CompressionType::ZSTD)),
    ] {
        let opts = IpcWriteOptions::default()
            .try_with_compression(c)
            .expect("options");
        let f = std::fs::File::create(p(name)).expect("create");
        let mut w = FileWriter::try_new_with_options(f, &schema, opts).expect("writer");
        for b in &batches {
            w.write(b).expect("write");
        }
        w.finish().expect("finish");
        inputs.push(p(name));
    }
    let f = std::fs::File::create(p("stream.arrows")).expect("create");
    let mut w = StreamWriter::try_new(f, &schema).expect("writer");
    for b in &batches {
        w.write(b).expect("write");
    }
    w.finish().expect("finish");
    inputs.push(p("stream.arrows"));

    let mut first: Option<String> = None;
    for input in &inputs {
        let out = format!("{input}.csv");
        let o = regime(&["detect", "--input", input, "--output", &out]);
        assert!(o.status.success(), "{input}: {}", stderr(&o));
        let text = std::fs::read_to_string(&out).expect("csv");
        assert_eq!(text.lines().count(), 1 + 3000, "{input}");
        match &first {
            None => first = Some(text),
            Some(f) => assert!(
                *f == text,
                "{input}: labels differ from the snappy Parquet's"
            ),
        }
    }

    // Arrow IPC out: the same rows as the CSV
    let o = regime(&[
        "detect",
        "--input",
        &p("lz4.feather"),
        "--output",
        &p("det.feather"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = arrow::ipc::reader::FileReader::try_new(
        std::fs::File::open(p("det.feather")).expect("open"),
        None,
    )
    .expect("an Arrow IPC file");
    let out: Vec<_> = r.collect::<Result<_, _>>().expect("batches");
    let ids: Vec<i64> = out
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name("regime_id").expect("regime_id");
            let c = c
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .expect("int64");
            c.values().to_vec()
        })
        .collect();
    let csv_ids: Vec<i64> = first
        .expect("a CSV")
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(2)
                .and_then(|x| x.parse().ok())
                .expect("regime_id")
        })
        .collect();
    assert_eq!(ids, csv_ids);

    // gzip-compressed CSV in and out: the same text as plain CSV
    let gunzip = |path: &str| {
        use std::io::Read as _;
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open"))
            .read_to_string(&mut text)
            .expect("a gzip file");
        text
    };
    assert_eq!(
        gunzip(&p("syn.csv.gz")),
        std::fs::read_to_string(p("syn.csv")).expect("csv")
    );
    for (input, out) in [("syn.csv", "a.csv"), ("syn.csv.gz", "b.csv.gz")] {
        let o = regime(&["detect", "--input", &p(input), "--output", &p(out)]);
        assert!(o.status.success(), "{input}: {}", stderr(&o));
    }
    assert_eq!(
        gunzip(&p("b.csv.gz")),
        std::fs::read_to_string(p("a.csv")).expect("csv")
    );
    std::fs::write(p("bad.csv.gz"), "hello").expect("write");
    let o = regime(&[
        "detect",
        "--input",
        &p("bad.csv.gz"),
        "--output",
        &p("x.csv"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("bad.csv.gz: not a complete gzip file"),
        "{}",
        stderr(&o)
    );

    // not Arrow at all: one clear line naming the file
    std::fs::write(p("bad.arrow"), "hello").expect("write");
    let o = regime(&[
        "detect",
        "--input",
        &p("bad.arrow"),
        "--output",
        &p("x.csv"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("bad.arrow: not an Arrow IPC file or stream"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "{e}");
}

/// A file whose rows run newest first (as many vendors' downloads do) for some symbols only
/// is refused like any rows out of order, with a hint that says what is wrong with the
/// file as a whole; a CSV file that runs newest first throughout is read oldest first.
#[test]
fn rows_newest_first_get_a_hint() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("desc.csv");
    let mut rows: Vec<String> = good_rows("AAA", 30, 0).lines().map(String::from).collect();
    rows.reverse();
    let ok = good_rows("BBB", 30, 0);
    std::fs::write(&input, format!("{HEADER}{}\n{ok}", rows.join("\n"))).expect("write");
    let out = dir.path().join("out.csv");
    let o = detect(&input, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("timestamp_not_increasing=29"), "{e}");
    assert!(e.contains("hint: the rows of AAA run newest first"), "{e}");
    assert!(!e.contains("BBB run newest first"), "{e}");
    // a CSV file all of whose symbols run newest first (a web page's download) is read
    // oldest first: the labels of the same rows sorted, and said on stderr; a bad row keeps
    // its row number in the file
    let mut both: Vec<String> = ok.lines().map(String::from).collect();
    both.reverse();
    let all_desc = dir.path().join("all_desc.csv");
    std::fs::write(
        &all_desc,
        format!("{HEADER}{}\n{}\n", rows.join("\n"), both.join("\n")),
    )
    .expect("write");
    let sorted = dir.path().join("sorted.csv");
    // read last row first, BBB's rows come first (the output lists symbols as they appear)
    std::fs::write(&sorted, format!("{HEADER}{ok}{}", good_rows("AAA", 30, 0))).expect("write");
    let (o1, o2) = (dir.path().join("o1.csv"), dir.path().join("o2.csv"));
    let o = detect(&all_desc, &o1, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "all_desc.csv: rows run newest first (as web downloads do): read oldest first"
        ),
        "{}",
        stderr(&o)
    );
    assert!(detect(&sorted, &o2, &[]).status.success());
    let (a, b) = (
        std::fs::read_to_string(&o1).unwrap(),
        std::fs::read_to_string(&o2).unwrap(),
    );
    assert!(a == b, "the sorted file's labels");
    let broken = std::fs::read_to_string(&all_desc)
        .unwrap()
        .replacen(",AAA,", ",AAA,x", 1);
    std::fs::write(&all_desc, broken).expect("write");
    let e = stderr(&detect(&all_desc, &o1, &[]));
    assert!(
        e.contains("all_desc.csv: row 1 [AAA]: cannot parse open"),
        "{e}"
    );
    assert!(e.contains("1 of 60 rows rejected"), "{e}");
}

/// Intraday exports that split the time from the date (`Date,Time,Open,...`: Stooq, Kibot,
/// TradeStation) are read with the time added; a day's rows whose time is not read at all
/// get a hint naming that, not the newest-first one their counts alone would suggest.
#[test]
fn a_time_column_beside_the_date_is_read_and_a_missing_one_is_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let (split, dated) = (dir.path().join("split.csv"), dir.path().join("dated.csv"));
    let (mut a, mut b) = (
        String::from("Date,Time,Open,High,Low,Close,Volume\n"),
        String::from("Date,Open,High,Low,Close,Volume\n"),
    );
    for i in 0..60 {
        let c = 100.0 + (i % 7) as f64 * 0.1;
        let (h, m) = (9 + (30 + i) / 60, (30 + i) % 60);
        a += &format!(
            "2024-01-02,{h:02}{m:02},{c},{},{},{c},100\n",
            c + 0.2,
            c - 0.2
        );
        b += &format!("2024-01-02,{c},{},{},{c},100\n", c + 0.2, c - 0.2);
    }
    std::fs::write(&split, a).expect("write");
    std::fs::write(&dated, b).expect("write");
    let out = dir.path().join("out.csv");
    let o = detect(&split, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).expect("out");
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 60);
    assert!(rows[0].starts_with("2024-01-02 09:30:00,"), "{}", rows[0]);
    assert!(rows[59].starts_with("2024-01-02 10:29:00,"), "{}", rows[59]);
    let o = detect(&dated, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("hint: 59 rows repeat the timestamp of the bar before (same symbol)"),
        "{e}"
    );
    assert!(!e.contains("newest first"), "{e}");
}

#[test]
fn an_input_without_a_known_extension_is_read_by_its_content() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    for ext in ["csv", "csv.gz", "parquet", "arrow"] {
        let named = d.join(format!("bars.{ext}"));
        let o = regime(&[
            "generate",
            "--output",
            named.to_str().unwrap(),
            "--bars",
            "400",
            "--symbols",
            "2",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = d.join("out.csv");
        assert!(detect(&named, &out, &[]).status.success());
        let expected = std::fs::read(&out).expect("output");
        // the same bytes under a vendor's extension and under none
        for other in [format!("bars-{ext}.txt"), format!("bars-{ext}")] {
            let renamed = d.join(other);
            std::fs::copy(&named, &renamed).expect("copy");
            let out = d.join("out.csv");
            let o = detect(&renamed, &out, &[]);
            assert!(o.status.success(), "{}: {}", renamed.display(), stderr(&o));
            let labels = std::fs::read(&out).expect("output");
            assert!(expected == labels, "{}: other labels", renamed.display());
        }
    }
    // neither extension nor content known: one line, as before
    let junk = d.join("junk.dat");
    std::fs::write(&junk, [0u8, 1, 2, 3, 0xfe, 0xff, 0, 9]).expect("write");
    let o = detect(&junk, &d.join("o.csv"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("junk.dat: unknown format"),
        "{}",
        stderr(&o)
    );
    // an output still needs an extension naming its format
    let o = detect(&d.join("bars.csv"), &d.join("labels.txt"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("labels.txt: unknown format"));
}

/// Models learned from intraday bars (the pipeline takes the overnight gaps and the
/// time-of-day profile out) score intraday bars the same way under `--model`.
#[test]
fn fixed_models_score_intraday_bars_as_the_pipeline_learned_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let (bars, labels) = datasets::minute_sessions(60, 4, false);
    let mut csv = String::from("timestamp,open,high,low,close,volume\n");
    for b in &bars {
        csv += &format!(
            "{},{},{},{},{},{}\n",
            b.ts / 1000,
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume
        );
    }
    let input = dir.path().join("minutes.csv");
    std::fs::write(&input, csv).expect("write");
    let models = dir.path().join("models");
    let learned = dir.path().join("learned.csv");
    let o = detect(
        &input,
        &learned,
        &["--models-dir", models.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let scored = dir.path().join("scored.csv");
    let o = detect(&input, &scored, &["--model", models.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = volatility_of(&scored);
    assert_eq!(got.len(), bars.len());
    let from = got.len() / 2;
    let right = (from..got.len())
        .filter(|&t| got[t] == labels[t][0] as usize)
        .count() as f64
        / (got.len() - from) as f64;
    println!(
        "fixed-model scoring of minute bars: volatility right on {right:.3} of the second half"
    );
    assert!(right > 0.97, "{right:.3}");
    // the ex-post mode smooths the bars the model was learned on too (it smoothed the raw
    // minutes, overnight gaps and time-of-day profile in: 0.78 right here, 0.92–0.96 and
    // 130–260 switches on `intraday.py`'s 120-session series, where the causal labels were
    // 0.999)
    let smoothed = dir.path().join("smoothed.csv");
    let o = detect(&input, &smoothed, &["--mode", "ex-post"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = volatility_of(&smoothed);
    let right = (from..got.len())
        .filter(|&t| got[t] == labels[t][0] as usize)
        .count() as f64
        / (got.len() - from) as f64;
    println!("ex-post smoothing of minute bars: volatility right on {right:.3} of the second half");
    assert!(right > 0.97, "{right:.3}");
}

/// `good_rows` with every price multiplied by `scale`, written in exponent form.
fn scaled_rows(sym: &str, n: usize, scale: f64) -> String {
    good_rows(sym, n, 0)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let p = |k: usize| f[k].parse::<f64>().expect("price") * scale;
            format!(
                "{},{},{:e},{:e},{:e},{:e},{}\n",
                f[0],
                f[1],
                p(2),
                p(3),
                p(4),
                p(5),
                f[6]
            )
        })
        .collect()
}

/// Prices far beyond `f32` are valid bars: `detect --model` scores them (the panel scales the
/// series into `f32`'s range by a power of two) with the labels of the same series near 100
/// — it stopped with "close[i]: must be finite and > 0, got inf" at 10^41 and scored 10^-49
/// as zero — and a span no `f32` holds is one clear line naming the symbol.
#[test]
fn fixed_models_score_prices_beyond_f32() {
    let dir = tempfile::tempdir().expect("tmp");
    let header = "timestamp,symbol,open,high,low,close,volume\n";
    let file = |name: &str, body: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("{header}{body}")).expect("write");
        p
    };
    let plain = file("plain.csv", scaled_rows("X", 600, 1.0));
    let models = dir.path().join("models");
    let o = detect(
        &plain,
        &dir.path().join("learned.csv"),
        &["--models-dir", models.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let model = ["--model", models.to_str().unwrap()];
    let want_out = dir.path().join("want.csv");
    let o = detect(&plain, &want_out, &model);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = csv_column(&want_out, "regime_id");
    assert_eq!(want.len(), 600);
    for (name, scale) in [("huge.csv", 2f64.powi(130)), ("tiny.csv", 2f64.powi(-170))] {
        let input = file(name, scaled_rows("X", 600, scale));
        let out = dir.path().join(format!("{name}.out.csv"));
        let o = detect(&input, &out, &model);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert_eq!(csv_column(&out, "regime_id"), want, "{name}");
    }
    // 10^-200 beside 10^200 in one series: no f32 holds both
    let mut rows = scaled_rows("X", 600, 1.0);
    rows += &format!(
        "{},X,1e200,1e200,1e200,1e200,5\n",
        1_000_000_000 + 600 * 86_400
    );
    rows += &format!(
        "{},X,1e-200,1e-200,1e-200,1e-200,5\n",
        1_000_000_000 + 601 * 86_400
    );
    let wide = file("wide.csv", rows);
    let out = dir.path().join("wide.out.csv");
    let o = detect(&wide, &out, &model);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("X, bar ") && err.contains("f32"), "{err}");
    assert!(!out.exists());
}

/// Column `name` of a `detect` output CSV, as text.
fn csv_column(path: &Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("read");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("{name} column"));
    lines
        .map(|l| l.split(',').nth(col).expect("field").to_string())
        .collect()
}

/// The volatility column of a `detect` output CSV, as state indices.
fn volatility_of(path: &Path) -> Vec<usize> {
    let names = ["low", "medium", "high"];
    csv_column(path, "volatility")
        .iter()
        .map(|v| {
            names
                .iter()
                .position(|n| n == v)
                .expect("a volatility name")
        })
        .collect()
}

/// A reader that goes away before the report is written (`regime evaluate | head -0`, a
/// pager quit early): the report ends quietly, exit 0 — not a panic with a backtrace.
#[test]
fn a_report_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().expect("tmp");
    let (input, _) = generated_input(dir.path(), 2_000, 3);
    for json in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_regime"));
        cmd.args(["evaluate", "--input", input.to_str().unwrap()]);
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run regime");
        // the read end closed before the child has detected anything: its write meets EPIPE
        drop(child.stdout.take());
        let o = child.wait_with_output().expect("wait");
        let err = stderr(&o);
        assert!(o.status.success(), "json {json}: {:?} {err}", o.status);
        assert!(!err.contains("panicked"), "json {json}: {err}");
    }
}

/// `regime generate` refuses settings whose bars would run past the year 9999 (ten million
/// daily bars from 2000): one line, exit 2, no file — not a file that `detect` then rejects
/// row by row as out of range. The same bars six hours apart fit, and the boundary is exact.
#[test]
fn generate_refuses_bars_past_the_year_9999() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("g.parquet");
    let gen = |bars: &str, step: &str, start: &str| {
        regime(&[
            "generate",
            "--output",
            out.to_str().unwrap(),
            "--bars",
            bars,
            "--step-secs",
            step,
            "--start",
            start,
        ])
    };
    let o = gen("10000000", "86400", "2000-01-03");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(
        e.contains(
            "10000000 bars 86400 s apart from 2000-01-03 00:00:00 run outside the years 1-9999"
        ),
        "{e}"
    );
    assert!(!out.exists());
    // an i64 overflow of the span is the same error, not a wrapped time
    let o = gen("3", &i64::MAX.to_string(), "2000-01-03");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("outside the years 1-9999"),
        "{}",
        stderr(&o)
    );
    // the last second of 9999 holds a bar; one more step does not fit
    let o = gen("2", "1", "9999-12-31 23:59:58");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = gen("3", "1", "9999-12-31 23:59:58");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// Messages into a stderr that has gone (`regime detect ... 2>&1 | head -3`): the run goes
/// on and writes its output. (A panic in the rejected-rows listing used to stop a
/// `--skip-bad-rows` run before its output was written.)
#[test]
fn a_closed_stderr_loses_the_messages_not_the_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("some_bad.csv");
    let mut csv = String::from(HEADER);
    csv += &good_rows("AAA", 100, 0);
    for i in 0..30 {
        csv += &format!("{},AAA,1,1,1,-1,5\n", 2_000_000_000 + i);
    }
    std::fs::write(&input, csv).expect("write");
    let out = dir.path().join("out.csv");
    let mut child = Command::new(env!("CARGO_BIN_EXE_regime"))
        .args(["detect", "--skip-bad-rows", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run regime");
    drop(child.stderr.take());
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    let rows = std::fs::read_to_string(&out)
        .expect("output written")
        .lines()
        .count();
    assert_eq!(rows, 101);
}

/// `regime ARGS` with `input` on its standard input.
fn regime_fed(args: &[&str], input: Vec<u8>) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_regime"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run regime");
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        // the child may stop reading early (an error): a broken pipe here is its answer
        let _ = stdin.write_all(&input);
    });
    let o = child.wait_with_output().expect("wait");
    feeder.join().expect("feeder");
    o
}

/// `--input -` reads standard input and `--output -` writes CSV to standard output, once
/// the run has succeeded: the same bytes as a run on files, for Parquet piped in (its
/// format told by its content) and for a CSV of two symbols (read twice: first and last
/// rows, then whole). A bad row is named under `<stdin>` and nothing reaches standard
/// output; `evaluate` reads standard input too. (A named pipe, as `<(...)` hands over:
/// `streams` unit test.)
#[test]
fn standard_input_and_output_stand_for_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let (input, out_dir) = generated_input(dir.path(), 2_000, 5);
    let file_out = out_dir.join("o.csv");
    let o = detect(&input, &file_out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = std::fs::read(&file_out).expect("output");
    let o = regime_fed(
        &["detect", "--input", "-", "--output", "-"],
        std::fs::read(&input).expect("input"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        o.stdout == expected,
        "stdout differs from the file run's output"
    );
    assert!(stderr(&o).contains("-> <stdout>"), "{}", stderr(&o));

    let two = format!(
        "{HEADER}{}{}",
        good_rows("X", 300, 0),
        good_rows("Y", 300, 0)
    );
    let csv = dir.path().join("two.csv");
    std::fs::write(&csv, &two).expect("write");
    let csv_out = out_dir.join("two_out.csv");
    assert!(detect(&csv, &csv_out, &[]).status.success());
    let o = regime_fed(
        &["detect", "--input", "-", "--output", "-"],
        two.clone().into_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout == std::fs::read(&csv_out).expect("output"));

    let bad = two.replacen(",X,", ",X,abc", 1);
    let o = regime_fed(
        &["detect", "--input", "-", "--output", "-"],
        bad.into_bytes(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "nothing on stdout for a failed run");
    assert!(
        stderr(&o).contains("<stdin>: row 1 [X]"),
        "rows named under <stdin>: {}",
        stderr(&o)
    );

    let e = dir.path().join("e");
    std::fs::create_dir(&e).expect("mkdir");
    let (labelled, _) = generated_input(&e, 1_000, 6);
    let on_file = regime(&["evaluate", "--input", labelled.to_str().unwrap()]);
    let fed = regime_fed(
        &["evaluate", "--input", "-"],
        std::fs::read(&labelled).expect("input"),
    );
    assert!(fed.status.success(), "{}", stderr(&fed));
    assert!(!fed.stdout.is_empty() && fed.stdout == on_file.stdout);

    // generate writes CSV to standard output too: the file's bytes
    let gen_file = dir.path().join("g.csv");
    let args = ["--bars", "500", "--seed", "107603", "--symbols", "2"];
    let o = regime(
        &[
            &["generate", "--output", gen_file.to_str().unwrap()],
            &args[..],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = regime(&[&["generate", "--output", "-"], &args[..]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout == std::fs::read(&gen_file).expect("generated"));
    assert!(stderr(&o).contains("-> <stdout>"), "{}", stderr(&o));
}

/// A spreadsheet's dates (`01/13/2024 9:30:00 AM`, `13/01/2024`) are read in the order the
/// file shows — said on stderr, with the row that shows it — and give the labels of the
/// same bars dated YYYY-MM-DD; a file whose dates never show the order is refused with
/// the hint, as before.
#[test]
fn spreadsheet_dates_are_read_in_the_order_the_file_shows() {
    let dir = tempfile::tempdir().expect("tmp");
    let iso = good_rows("X", 60, 19_723); // from 2024-01-01
    let days: Vec<(String, String)> = iso
        .lines()
        .map(|l| {
            let (ts, rest) = l.split_once(',').expect("row");
            let secs: i64 = ts.parse().expect("ts");
            let d = chrono::DateTime::from_timestamp(secs - 1_000_000_000 + 34_200, 0).expect("d");
            (d.format("%Y-%m-%d %H:%M:%S").to_string(), rest.to_string())
        })
        .collect();
    let write = |name: &str, fmt: &dyn Fn(&str) -> String| {
        let mut t = String::from(HEADER);
        for (d, rest) in &days {
            t += &format!("{},{rest}\n", fmt(d));
        }
        let p = dir.path().join(name);
        std::fs::write(&p, t).expect("write");
        p
    };
    let parse = |d: &str| chrono::NaiveDateTime::parse_from_str(d, "%Y-%m-%d %H:%M:%S").expect("d");
    let plain = write("iso.csv", &|d| d.to_string());
    let us = write("us.csv", &|d| {
        parse(d).format("%m/%d/%Y %-I:%M:%S %p").to_string()
    });
    let uk = write("uk.csv", &|d| parse(d).format("%d/%m/%Y %H:%M").to_string());
    let labels = |p: &Path| {
        let out = p.with_extension("out.csv");
        let o = detect(p, &out, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        (std::fs::read_to_string(&out).expect("out"), stderr(&o))
    };
    let (want, _) = labels(&plain);
    let (got, err) = labels(&us);
    assert_eq!(got, want);
    assert!(
        err.contains("dates read month first, MM/DD/YYYY (row 13's \"01/13/2024 9:30:00 AM\""),
        "{err}"
    );
    let (got, err) = labels(&uk);
    assert_eq!(got, want);
    assert!(err.contains("dates read day first"), "{err}");
    // twelve days, never a field above 12: refused, the hint naming the form
    let short: String = std::fs::read_to_string(&uk)
        .expect("uk")
        .lines()
        .take(13)
        .map(|l| format!("{l}\n"))
        .collect();
    let amb = dir.path().join("amb.csv");
    std::fs::write(&amb, short).expect("write");
    let o = detect(&amb, &dir.path().join("amb.out.csv"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("where one of them shows which"),
        "{}",
        stderr(&o)
    );
}

/// The downloads of two web pages quants use, as they come: Investing.com's (`"Price"`,
/// `"4,697.24"`, `"2.93B"` under `"Vol."`, a `"Change %"`) and Nasdaq.com's (`Close/Last`,
/// `$182.52`), both newest first with month-first dates: the labels of the same bars
/// written plainly (volumes to the three digits the K/M/B form keeps).
#[test]
fn web_page_downloads_are_read_as_they_come() {
    let dir = tempfile::tempdir().expect("tmp");
    // (date, open, high, low, close, volume) oldest first, prices in the thousands
    let bars: Vec<(chrono::NaiveDate, [f64; 4], f64)> = good_rows("X", 40, 0)
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let v: Vec<f64> = l.split(',').skip(2).map(|x| x.parse().unwrap()).collect();
            let day =
                chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap() + chrono::Days::new(i as u64);
            let px = |x: f64| (x * 40.0 * 100.0).round() / 100.0;
            (
                day,
                [px(v[0]), px(v[1]), px(v[2]), px(v[3])],
                2.5e9 + i as f64 * 1e7,
            )
        })
        .collect();
    let grouped = |x: f64| {
        let s = format!("{x:.2}");
        let (int, frac) = s.split_once('.').unwrap();
        let n = int.len();
        let mut g = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (n - i) % 3 == 0 {
                g.push(',');
            }
            g.push(c);
        }
        format!("{g}.{frac}")
    };
    let mut plain = String::from("Date,Open,High,Low,Close,Volume\n");
    let mut inv =
        String::from("\"Date\",\"Price\",\"Open\",\"High\",\"Low\",\"Vol.\",\"Change %\"\n");
    let mut nasdaq = String::from("Date,Close/Last,Volume,Open,High,Low\n");
    for (d, [o, h, l, c], v) in &bars {
        plain += &format!("{},{o:.2},{h:.2},{l:.2},{c:.2},{v}\n", d.format("%Y-%m-%d"));
    }
    for (d, [o, h, l, c], v) in bars.iter().rev() {
        let us = d.format("%m/%d/%Y");
        inv += &format!(
            "\"{us}\",\"{}\",\"{}\",\"{}\",\"{}\",\"{:.2}B\",\"0.10%\"\n",
            grouped(*c),
            grouped(*o),
            grouped(*h),
            grouped(*l),
            v / 1e9
        );
        nasdaq += &format!("{us},${c:.2},{v},${o:.2},${h:.2},${l:.2}\n");
    }
    let run = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        let out = dir.path().join(format!("{name}.out.csv"));
        let o = detect(&p, &out, &[]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        std::fs::read_to_string(&out).expect("out")
    };
    let want = run("plain.csv", &plain);
    assert!(
        run("investing.csv", &inv) == want,
        "Investing.com's download"
    );
    assert!(run("nasdaq.csv", &nasdaq) == want, "Nasdaq.com's download");
}

/// Several files are one panel: `--input AAA.csv BBB.csv` gives the labels of one file
/// holding both symbols (a file without a symbol column is named by its file name), a bad
/// row is named under its own file, and a symbol in two files is refused naming both.
#[test]
fn several_input_files_are_detected_as_one_panel() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let plain = |sym: &str| {
        good_rows(sym, 400, 0)
            .lines()
            .map(|l| l.replacen(&format!(",{sym},"), ",", 1))
            .collect::<Vec<_>>()
            .join("\n")
    };
    std::fs::write(
        d.join("AAA.csv"),
        format!("timestamp,open,high,low,close,volume\n{}\n", plain("AAA")),
    )
    .unwrap();
    std::fs::write(d.join("BBB.csv.gz"), {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(format!("timestamp,open,high,low,close,volume\n{}\n", plain("BBB")).as_bytes())
            .unwrap();
        e.finish().unwrap()
    })
    .unwrap();
    let one = d.join("both.csv");
    std::fs::write(
        &one,
        format!(
            "{HEADER}{}{}",
            good_rows("AAA", 400, 0),
            good_rows("BBB", 400, 0)
        ),
    )
    .unwrap();
    let (o1, o2) = (d.join("o1.csv"), d.join("o2.csv"));
    let o = regime(&[
        "detect",
        "--input",
        d.join("AAA.csv").to_str().unwrap(),
        d.join("BBB.csv.gz").to_str().unwrap(),
        "--output",
        o1.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("detected 800 bars"), "{}", stderr(&o));
    assert!(detect(&one, &o2, &[]).status.success());
    assert!(
        std::fs::read(&o1).unwrap() == std::fs::read(&o2).unwrap(),
        "the one-file panel's labels"
    );
    // a bad row: named under its file, nothing written
    std::fs::write(
        d.join("CCC.csv"),
        "timestamp,close\n2024-01-02,1\n2024-01-03,x\n",
    )
    .unwrap();
    let o3 = d.join("o3.csv");
    let o = regime(&[
        "detect",
        "--input",
        d.join("AAA.csv").to_str().unwrap(),
        d.join("CCC.csv").to_str().unwrap(),
        "--output",
        o3.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("CCC.csv: row 2: cannot parse close"),
        "{}",
        stderr(&o)
    );
    assert!(!o3.exists());
    // one symbol in two files
    let o = regime(&[
        "detect",
        "--input",
        one.to_str().unwrap(),
        d.join("AAA.csv").to_str().unwrap(),
        "--output",
        o3.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("symbol `AAA` is in both"),
        "{}",
        stderr(&o)
    );
    assert!(!o3.exists());
}

/// Yahoo's `null` rows (days without trading): rejected as any unreadable value, with a
/// hint that says what they are and how to leave them out.
#[test]
fn null_rows_get_a_hint() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("yahoo.csv");
    std::fs::write(
        &input,
        "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,1,2,0.5,1.5,1.5,100\n\
         2024-01-03,null,null,null,null,null,null\n2024-01-04,1.5,2,1,1.8,1.8,100\n",
    )
    .expect("write");
    let out = dir.path().join("o.csv");
    let e = stderr(&detect(&input, &out, &[]));
    assert!(
        e.contains("hint: 1 row holds a value as `null` or `N/A` (days without trading"),
        "{e}"
    );
    let o = detect(&input, &out, &["--skip-bad-rows"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 3);
}

/// `evaluate` reads several files as one panel too: two per-symbol files without a symbol
/// column report what the two-symbol file they came from reports.
#[test]
fn evaluate_reads_several_files_as_one_panel() {
    let dir = tempfile::tempdir().expect("tmp");
    let both = dir.path().join("both.csv");
    let o = regime(&[
        "generate",
        "--output",
        both.to_str().unwrap(),
        "--symbols",
        "2",
        "--bars",
        "1500",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&both).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().replacen(",symbol", "", 1);
    let mut files: Vec<(String, String)> = Vec::new();
    for l in lines {
        let mut f: Vec<&str> = l.split(',').collect();
        let sym = f.remove(1).to_string();
        match files.iter_mut().find(|(s, _)| *s == sym) {
            Some((_, body)) => *body += &format!("{}\n", f.join(",")),
            None => files.push((sym, format!("{header}\n{}\n", f.join(",")))),
        }
    }
    assert_eq!(files.len(), 2);
    let mut args = vec!["evaluate".to_string(), "--input".to_string()];
    for (sym, body) in &files {
        let p = dir.path().join(format!("{sym}.csv"));
        std::fs::write(&p, body).unwrap();
        args.push(p.to_str().unwrap().to_string());
    }
    args.extend(["--score-last", "0.3", "--json"].map(String::from));
    let split = Command::new(env!("CARGO_BIN_EXE_regime"))
        .args(&args)
        .output()
        .unwrap();
    assert!(split.status.success(), "{}", stderr(&split));
    let whole = regime(&[
        "evaluate",
        "--input",
        both.to_str().unwrap(),
        "--score-last",
        "0.3",
        "--json",
    ]);
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&split.stdout).unwrap(),
        serde_json::from_slice(&whole.stdout).unwrap(),
    );
    assert_eq!(a["accuracy"], b["accuracy"]);
    assert_eq!(a["bars_scored"], b["bars_scored"]);
}

#[test]
fn a_symbol_whose_closes_often_stay_unchanged_gets_a_note() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("grid.csv");
    // GRID: the same moves as SMOOTH, rounded to a 50-cent grid (about two return sd here)
    let mut csv = String::from(HEADER);
    csv += &good_rows("SMOOTH", 300, 0);
    for line in good_rows("GRID", 300, 0).lines() {
        let f: Vec<&str> = line.split(',').collect();
        let r = |i: usize| (f[i].parse::<f64>().expect("price") * 2.0).round() / 2.0;
        csv += &format!(
            "{},{},{},{},{},{},{}\n",
            f[0],
            f[1],
            r(2),
            r(3),
            r(4),
            r(5),
            f[6]
        );
    }
    std::fs::write(&input, csv).expect("write");
    let o = detect(&input, &dir.path().join("out.csv"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    let notes: Vec<&str> = e.lines().filter(|l| l.contains("exactly 0")).collect();
    assert_eq!(notes.len(), 1, "{e}");
    assert!(
        notes[0].contains("GRID: ") && notes[0].contains("tick grid"),
        "{e}"
    );
    // the rounded closes stay unchanged on a large share of the bars
    let pct: f64 = notes[0]
        .split("GRID: ")
        .nth(1)
        .and_then(|t| t.split('%').next())
        .and_then(|p| p.parse().ok())
        .expect("a percentage");
    assert!((30.0..=100.0).contains(&pct), "{e}");
}

/// `regime generate --tick`: every price a multiple of the tick, the true labels those of
/// the unrounded series; a tick that is no price exits non-zero with one clear line.
#[test]
fn generate_rounds_prices_to_a_tick_and_keeps_the_labels() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let args = ["generate", "--bars", "500", "--seed", "7", "--output"];
    let o = regime(&[&args[..], &[&p("exact.csv")]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = regime(&[&args[..], &[&p("tick.csv"), "--tick", "0.25"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |name: &str| -> Vec<Vec<String>> {
        std::fs::read_to_string(p(name))
            .expect("read")
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let (exact, tick) = (read("exact.csv"), read("tick.csv"));
    assert_eq!(exact.len(), 500);
    assert_eq!(tick.len(), 500);
    let mut moved = 0;
    for (e, t) in exact.iter().zip(&tick) {
        // timestamp, symbol, open, high, low, close, volume, then the true labels
        assert_eq!((&e[..2], &e[6..]), (&t[..2], &t[6..]), "{e:?} / {t:?}");
        for k in 2..6 {
            let (x, y): (f64, f64) = (e[k].parse().expect("price"), t[k].parse().expect("price"));
            assert!(
                (y * 4.0 - (y * 4.0).round()).abs() < 1e-9,
                "{y} is off the tick"
            );
            assert!((x - y).abs() <= 0.125 + 1e-9, "{x} rounded to {y}");
            moved += usize::from(x != y);
        }
    }
    assert!(moved > 1500, "only {moved} prices moved");
    for bad in ["--tick=0", "--tick=-1", "--tick=nan"] {
        let o = regime(&[&args[..], &[&p("bad.csv"), bad]].concat());
        assert!(!o.status.success(), "--tick {bad} accepted");
        let e = stderr(&o);
        assert!(e.contains("tick") && e.lines().count() == 1, "{e}");
        assert!(!dir.path().join("bad.csv").exists());
    }
}

/// An unadjusted 3:1 split (prices ÷3 and volume ×3 from one day on) is read as one: a note
/// names the symbol, the ratio and the day, and the labels — learned, and scored with a
/// fixed model — are the ones the adjusted file gets, row for row.
#[test]
fn an_unadjusted_split_gets_a_note_and_leaves_the_labels() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = datasets::SynthConfig {
        symbols: 1,
        bars: 3_000,
        ..datasets::SynthConfig::default()
    };
    let bars = datasets::generate(&cfg, 4242).remove(0).bars;
    // prices ÷k and volume ×k·v from bar `at` on
    let write = |name: &str, at: usize, k: f64, v: f64| {
        let mut csv = String::from(HEADER);
        for (i, b) in bars.iter().enumerate() {
            let (k, v) = if i >= at { (k, v) } else { (1.0, 1.0) };
            csv += &format!(
                "{},S,{},{},{},{},{}\n",
                b.ts / 1000,
                b.open / k,
                b.high / k,
                b.low / k,
                b.close / k,
                b.volume * k * v
            );
        }
        let path = dir.path().join(name);
        std::fs::write(&path, csv).expect("write");
        path
    };
    let plain = write("plain.csv", usize::MAX, 1.0, 1.0);
    let split = write("split.csv", 2_000, 3.0, 1.0);
    let column = |path: &Path| csv_column(path, "regime_id");
    let models = dir.path().join("models");
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    let o = detect(&plain, &a, &["--models-dir", models.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("split"), "{}", stderr(&o));
    let o = detect(&split, &b, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    let day = datetime_of(bars[2_000].ts);
    assert!(
        e.contains(&format!("S: an unadjusted 3:1 split read at {day}")),
        "{e}"
    );
    assert_eq!(column(&a), column(&b), "learned labels");
    let (c, d) = (dir.path().join("c.csv"), dir.path().join("d.csv"));
    for (input, out) in [(&plain, &c), (&split, &d)] {
        let o = detect(input, out, &["--model", models.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(column(&c), column(&d), "labels scored with the fixed model");
    // the volume alone ×10 from the same day (a change of unit): read five bars in, said
    let tenfold = write("tenfold.csv", 2_000, 1.0, 10.0);
    let o = detect(&tenfold, &dir.path().join("e.csv"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    let day = datetime_of(bars[2_004].ts);
    assert!(
        e.contains(&format!("S: its volume stepped ×10.000 at {day}")),
        "{e}"
    );
}

/// `YYYY-MM-DD HH:MM:SS` of a timestamp in ms.
fn datetime_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("a time")
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}
