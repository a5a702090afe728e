//! The `regime` command line (SPEC §4).

// The doc comments of the arguments are the command line's help text, written for a terminal
// (`<symbol>.v<N>.json`, `[HH:MM:SS]`), not for rustdoc's HTML and links.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use regime_core::pipeline::PipelineConfig;
use regime_server::commands::{self, Mode};
use regime_server::config::Config;
use regime_server::serve;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "regime", version, about = "Adaptive Market Regime System")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    /// Real-time labels: bar t uses bars up to t only.
    Causal,
    /// Historical analysis: smoothed with later bars.
    ExPost,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    Auto,
    Cpu,
    Cuda,
    Wgpu,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Parquet,
    Csv,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the service (HTTP API, feeds, store). Runs with no config at all.
    Serve {
        /// config.yaml (SPEC §6); defaults when absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address, overrides server.bind.
        #[arg(long)]
        bind: Option<String>,
    },
    /// Check a config file against the schema; every problem is listed with its key path.
    ValidateConfig {
        /// The file.
        file: PathBuf,
        /// Print the effective settings (defaults filled in, connection-string passwords
        /// masked) as JSON, for scripts (`deploy/validate_deployment.py`)
        #[arg(long)]
        json: bool,
    },
    /// Write regime_history to a file HeavyDB's COPY FROM loads (or Parquet).
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
        /// Output file (default regime_history.csv / .parquet).
        #[arg(long)]
        output: Option<PathBuf>,
        /// config.yaml naming the store; defaults when absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Only these symbols (repeat the flag, or separate with commas).
        #[arg(long, value_delimiter = ',')]
        symbol: Vec<String>,
        /// Only rows at or after this time, UTC: "YYYY-MM-DD" (the day's start) or
        /// "YYYY-MM-DD HH:MM:SS".
        #[arg(long)]
        from: Option<String>,
        /// Only rows at or before this time, UTC: "YYYY-MM-DD" (the whole day) or
        /// "YYYY-MM-DD HH:MM:SS".
        #[arg(long)]
        to: Option<String>,
    },
    /// Detect regimes for every bar of a CSV, Parquet or Arrow IPC (Feather) file (multi-symbol, in parallel).
    Detect {
        /// Bars: CSV (also .csv.gz), Parquet or Arrow IPC/Feather, by extension or content;
        /// columns timestamp|date, open, high, low, close (required), volume, symbol|ticker.
        /// `-` reads standard input (a pipe, `<(...)`, works too). Several files
        /// (`--input data/*.csv`) are detected as one panel, each file's bars named by its
        /// symbol column or, without one, by its file name (`AAPL.csv` → AAPL).
        #[arg(long, num_args = 1.., required = true)]
        input: Vec<PathBuf>,
        /// Labels and probabilities per bar, in the format its extension names (.csv,
        /// .csv.gz, .parquet, .arrow/.feather); written atomically, never over the input.
        /// `-` writes CSV to standard output once the run has succeeded (nothing on failure).
        #[arg(long)]
        output: PathBuf,
        #[arg(long, value_enum, default_value = "causal")]
        mode: ModeArg,
        /// Compute backend for `--model` scoring: auto = CUDA, then wgpu, then the CPU
        /// (`REGIME_DEVICE` when not given). The adaptive pipeline (no `--model`) runs on the CPU.
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        /// Score with fixed models instead of the adaptive pipeline: a model file for every
        /// symbol, or a directory of <symbol>.v<N>.json (newest per symbol), e.g. from --models-dir.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Write labels for the valid rows even when some rows are rejected.
        #[arg(long)]
        skip_bad_rows: bool,
        /// Save each symbol's learned model as DIR/<symbol>.v<version>.json (learned causally in
        /// either mode: with `--mode ex-post`, the model the series is smoothed with).
        #[arg(long)]
        models_dir: Option<PathBuf>,
        /// config.yaml whose `regime` settings (confidence_threshold, switch_margin,
        /// feedback_lag, ensemble_learning_rate) the pipeline uses, as the service would;
        /// defaults when absent.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Accuracy against a label column: per dimension and all 18, per method, confusion matrix.
    Evaluate {
        /// Bars with a label column (e.g. `regime generate`'s output); formats as `detect`
        /// (`-`: standard input; several files: one panel, as `detect` reads them).
        #[arg(long, num_args = 1.., required = true)]
        input: Vec<PathBuf>,
        /// The true regime id (0–17) of each bar.
        #[arg(long, default_value = "true_regime_id")]
        label_column: String,
        /// Score only the last fraction of each series (the first part is learning time).
        #[arg(long, default_value_t = 1.0)]
        score_last: f64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// config.yaml whose `regime` settings the pipeline uses (as `detect --config`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Back up the table, config, model files, state and recent logs to
    /// <storage.backup_dir>/NAME (default: the UTC time, YYYYMMDD_HHMMSS). Runs beside a
    /// live service.
    Backup {
        /// Backup name.
        name: Option<String>,
        /// config.yaml (it is saved in the backup too); defaults when absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// List the backups instead.
        #[arg(long)]
        list: bool,
    },
    /// Restore a backup (NAME or `latest`): table, model files, spool, and the config file
    /// when --config names where it goes. The service must be stopped; the current state is
    /// first saved as a before-restore-… backup.
    Restore {
        /// Backup name or `latest`.
        name: String,
        /// The service's config.yaml (where the store, models and backups are); the
        /// backup's copy of the config is restored to this path.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Return the table to exactly its state at a past time, "YYYY-MM-DD HH:MM:SS" UTC (the
    /// service must be stopped; the current state is first saved as a backup).
    RestoreToTime {
        /// The time, UTC.
        time: String,
        /// The service's config.yaml (where the store and backups are); defaults when absent.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write a synthetic OHLCV panel with known regimes (true labels included).
    Generate {
        /// Where to write (.csv, .csv.gz, .parquet, .arrow/.feather; `-`: CSV to standard
        /// output).
        #[arg(long)]
        output: PathBuf,
        /// Number of instruments (SYN000, SYN001, …).
        #[arg(long, default_value_t = 1)]
        symbols: usize,
        /// Bars per instrument.
        #[arg(long, default_value_t = 2000)]
        bars: usize,
        /// Random seed: the same seed gives the same file.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Bar spacing in seconds (default one day; 60 = minute bars).
        #[arg(long, default_value_t = 86_400)]
        step_secs: i64,
        /// First bar's time, "YYYY-MM-DD[ HH:MM:SS]" UTC (default 2000-01-03).
        #[arg(long)]
        start: Option<String>,
        /// Round every price to a multiple of this tick, as a market quotes it (0.01: a
        /// cent). Prices start near 100 and wander far over thousands of bars, so the grid
        /// is coarser beside a bar's move where the price has fallen. The true labels are
        /// the unrounded series'.
        #[arg(long)]
        tick: Option<f64>,
    },
}

/// Write to stdout; a reader that has gone (`regime evaluate | head`) ends the output
/// quietly instead of a panic with a backtrace.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

/// `println!` through [`emit`] (inside functions returning `anyhow::Result`).
macro_rules! out {
    ($($arg:tt)*) => {
        emit(&format!("{}\n", format_args!($($arg)*)))?
    };
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Serve { config, bind } => {
            let opts = serve::ServeOptions {
                config,
                bind,
                dry_run: env_flag("DRY_RUN"),
                safe_mode: env_flag("SAFE_MODE"),
            };
            if opts.dry_run {
                out!("{}", serve::dry_run(&opts)?);
                return Ok(());
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(serve::run(opts))?;
        }
        Cmd::ValidateConfig { file, json } => {
            let mut c = Config::load(&file)?;
            // the ranges the pipeline itself holds (`regime.confidence_threshold` >= 0.34)
            c.pipeline()
                .validate()
                .with_context(|| format!("{}", file.display()))?;
            // a replay file `serve` could not open stops it at start: say so now (an absolute
            // path only; a relative one is the service's working directory's, not this shell's)
            for (i, r) in c.feeds.replay.iter().enumerate() {
                if r.path.is_absolute() {
                    if let Err(e) = std::fs::File::open(&r.path) {
                        anyhow::bail!(
                            "{}: feeds.replay[{i}].path {}: {e} (`regime serve` would stop at start)",
                            file.display(),
                            r.path.display()
                        );
                    }
                }
            }
            if json {
                c.storage.url = regime_server::config::mask_password(&c.storage.url);
                out!("{}", serde_json::to_string_pretty(&c)?);
                return Ok(());
            }
            out!(
                "{}: valid (storage {:?}, {} workers, {} API keys, {} replay feeds)",
                file.display(),
                c.storage.kind,
                c.performance.max_workers,
                c.auth.keys.len(),
                c.feeds.replay.len()
            );
        }
        Cmd::Export {
            format,
            output,
            config,
            symbol,
            from,
            to,
        } => {
            // a date alone: its first millisecond for --from, its last for --to
            let when = |s: &str, end_of_day: bool| -> anyhow::Result<i64> {
                let t = s.trim();
                if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
                    let start = d
                        .and_hms_opt(0, 0, 0)
                        .map(|n| n.and_utc().timestamp_millis());
                    return start
                        .map(|ms| if end_of_day { ms + 86_399_999 } else { ms })
                        .ok_or_else(|| anyhow::anyhow!("{s}: not a date"));
                }
                regime_server::backup::parse_time(t).map_err(|_| {
                    anyhow::anyhow!(
                        "{s:?}: expected \"YYYY-MM-DD\" or \"YYYY-MM-DD HH:MM:SS\" (UTC)"
                    )
                })
            };
            let filter = commands::ExportFilter {
                symbols: symbol
                    .iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                from: from
                    .as_deref()
                    .map(|s| when(s, false))
                    .transpose()
                    .context("--from")?,
                to: to
                    .as_deref()
                    .map(|s| when(s, true))
                    .transpose()
                    .context("--to")?,
            };
            if let (Some(a), Some(b)) = (filter.from, filter.to) {
                anyhow::ensure!(a <= b, "--from is after --to: nothing to export");
            }
            let c = match &config {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            let output = output.unwrap_or_else(|| match format {
                ExportFormat::Csv => "regime_history.csv".into(),
                ExportFormat::Parquet => "regime_history.parquet".into(),
            });
            let want = match format {
                ExportFormat::Csv => "csv",
                ExportFormat::Parquet => "parquet",
            };
            // `-` and pipes (`| gzip`, a loader reading standard input): written through a copy in
            // the chosen format
            let streamed = regime_server::streams::StreamedOutput::new_as(
                &output,
                match format {
                    ExportFormat::Csv => regime_server::io::Format::Csv,
                    ExportFormat::Parquet => regime_server::io::Format::Parquet,
                },
            )?;
            let ext = output
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            anyhow::ensure!(
                streamed.is_stream() || ext == want || (want == "parquet" && ext == "pq"),
                "--output {}: the extension does not match --format {want}",
                output.display()
            );
            let t = std::time::Instant::now();
            let n = commands::export(&c.storage, streamed.path(), &filter)?;
            let shown = streamed.shown();
            streamed.deliver()?;
            regime_server::say!(
                "exported {n} rows in {:.2} s -> {shown}",
                t.elapsed().as_secs_f64(),
            );
        }
        Cmd::Detect {
            input,
            output,
            mode,
            backend,
            skip_bad_rows,
            models_dir,
            model,
            config,
        } => {
            let cfg = pipeline_settings(config.as_deref())?;
            // `-`, pipes and devices: read through a copy, written through one
            let spooled = spool_inputs(&input)?;
            let inputs: Vec<PathBuf> = spooled.iter().map(|s| s.path().to_path_buf()).collect();
            let streamed = regime_server::streams::StreamedOutput::new(&output)?;
            let output = streamed.path();
            let shown = streamed.shown();
            let pref = match backend {
                Some(BackendArg::Auto) => regime_kernels::Preference::Auto,
                Some(BackendArg::Cpu) => regime_kernels::Preference::Cpu,
                Some(BackendArg::Cuda) => regime_kernels::Preference::Cuda,
                Some(BackendArg::Wgpu) => regime_kernels::Preference::Wgpu,
                None => regime_kernels::Preference::from_env()?,
            };
            if let Some(model) = model {
                anyhow::ensure!(
                    matches!(mode, ModeArg::Causal),
                    "--model scores causally (the forward filter); --mode ex-post needs the adaptive pipeline"
                );
                let models = commands::ModelSource::open(&model)?;
                let selected = regime_kernels::select(pref)?;
                regime_server::say!("{}", selected.reason);
                let t = std::time::Instant::now();
                let scored = commands::detect_with_models(
                    &inputs,
                    output,
                    skip_bad_rows,
                    &models,
                    selected.backend.as_ref(),
                )?;
                let s = t.elapsed().as_secs_f64();
                let (n, bad) = (scored.bars, scored.rejected);
                let device = if scored.streamed {
                    "one thread, scored while read".to_string()
                } else {
                    selected.backend.device()
                };
                // delivered first: a stream or device that fails (`--output /dev/full`) is
                // the one line, not a success line followed by an error
                streamed.deliver()?;
                regime_server::say!(
                    "detected {n} bars ({bad} rejected) in {s:.3} s ({:.0} bars/s), backend {} [{device}] -> {}",
                    n as f64 / s.max(1e-9),
                    selected.backend.name(),
                    shown
                );
                return Ok(());
            }
            anyhow::ensure!(
                matches!(
                    pref,
                    regime_kernels::Preference::Auto | regime_kernels::Preference::Cpu
                ),
                "--backend {pref}: the adaptive pipeline (online learning, ensemble, transition manager) runs on the CPU; \
                 the GPU backends score fixed models: pass --model FILE|DIR (e.g. models saved with --models-dir)"
            );
            let mode = match mode {
                ModeArg::Causal => Mode::Causal,
                ModeArg::ExPost => Mode::ExPost,
            };
            let t = std::time::Instant::now();
            let (n, bad) = commands::detect(
                &inputs,
                output,
                mode,
                skip_bad_rows,
                models_dir.as_deref(),
                &cfg,
            )?;
            let s = t.elapsed().as_secs_f64();
            streamed.deliver()?;
            regime_server::say!(
                "detected {n} bars ({bad} rejected) in {s:.3} s ({:.0} bars/s), backend cpu -> {}",
                n as f64 / s.max(1e-9),
                shown
            );
        }
        Cmd::Backup { name, config, list } => {
            let c = load_or_default(config.as_deref())?;
            if list {
                let backups = regime_server::backup::list(&c)?;
                if backups.is_empty() {
                    // on stderr: a script reading the list still reads an empty one
                    regime_server::say!(
                        "no complete backups in {} (storage.backup_dir; --config names the service's)",
                        c.storage.backup_dir.display()
                    );
                }
                for (dir, m) in backups {
                    let rows = match &m.damaged {
                        None => format!("{} rows", m.rows),
                        Some(_) => "table kept as found (damaged; not restorable)".to_string(),
                    };
                    out!("{}\t{}\t{rows}\t{}", m.name, m.created_at, dir.display());
                }
                return Ok(());
            }
            let t = std::time::Instant::now();
            let m = regime_server::backup::create(&c, config.as_deref(), name.as_deref())?;
            let bytes: u64 = m.files.iter().map(|f| f.1).sum();
            out!(
                "backup {} written to {}: {} rows, {} files, {} bytes, {:.2} s",
                m.name,
                c.storage.backup_dir.join(&m.name).display(),
                m.rows,
                m.files.len(),
                bytes,
                t.elapsed().as_secs_f64()
            );
        }
        Cmd::Restore { name, config } => {
            let c = load_or_default(config.as_deref())?;
            let r = regime_server::backup::restore(&c, config.as_deref(), &name)?;
            note_deployment(
                &c.logging.dir,
                "restore",
                &[
                    ("backup", r.from.clone().unwrap_or_default()),
                    ("rows", r.rows.to_string()),
                    ("before_restore_backup", r.safety.clone()),
                ],
            );
            out!(
                "restored backup {}: {} rows, {} model files, {} symbol states{}; the state before is saved as backup {}",
                r.from.as_deref().unwrap_or("?"),
                r.rows,
                r.models,
                r.states,
                r.config
                    .as_ref()
                    .map(|p| format!(", config -> {}", p.display()))
                    .unwrap_or_default(),
                safety_said(&r)
            );
        }
        Cmd::RestoreToTime { time, config } => {
            let c = load_or_default(config.as_deref())?;
            let t = regime_server::backup::parse_time(&time)?;
            let r = regime_server::backup::restore_to_time(&c, t)?;
            note_deployment(
                &c.logging.dir,
                "restore-to-time",
                &[
                    ("to", time.clone()),
                    ("rows", r.rows.to_string()),
                    ("removed", r.removed.to_string()),
                    ("before_restore_backup", r.safety.clone()),
                ],
            );
            out!(
                "table returned to {time} UTC{}: {} rows kept, {} removed{}; the state before is saved as backup {}",
                r.from
                    .as_ref()
                    .map(|b| format!(" (from backup {b})"))
                    .unwrap_or_default(),
                r.rows,
                r.removed,
                match r.spool_set_aside {
                    0 => String::new(),
                    n => format!(
                        ", and the spool's {n} acknowledged rows not yet in the table then set aside (in that backup)"
                    ),
                },
                safety_said(&r)
            );
        }
        Cmd::Evaluate {
            input,
            label_column,
            score_last,
            json,
            config,
        } => {
            let cfg = pipeline_settings(config.as_deref())?;
            let spooled = spool_inputs(&input)?;
            let inputs: Vec<PathBuf> = spooled.iter().map(|s| s.path().to_path_buf()).collect();
            let v = commands::evaluate(&inputs, &label_column, score_last, &cfg)?;
            if json {
                out!("{}", serde_json::to_string_pretty(&v).context("json")?);
            } else {
                emit(&commands::format_evaluation(&v))?;
            }
        }
        Cmd::Generate {
            output,
            symbols,
            bars,
            seed,
            step_secs,
            start,
            tick,
        } => {
            let start_ms = match start {
                Some(s) => Some(regime_server::io::parse_timestamp(&s).ok_or_else(|| {
                    anyhow::anyhow!("--start {s:?}: expected YYYY-MM-DD or YYYY-MM-DD HH:MM:SS")
                })?),
                None => None,
            };
            let cfg = commands::synth_config(symbols, bars, step_secs, start_ms)
                .map_err(|e| anyhow::anyhow!("generate: {e}"))?;
            // `-` (CSV) and pipes: through a copy, as `detect` writes them
            let streamed = regime_server::streams::StreamedOutput::new(&output)?;
            let n = commands::generate_file(streamed.path(), &cfg, seed, tick)?;
            let shown = streamed.shown();
            streamed.deliver()?;
            regime_server::say!("wrote {n} bars ({symbols} symbols, seed {seed}) -> {shown}");
        }
    }
    Ok(())
}

/// The pipeline settings of `config` (its `regime` section), checked; the defaults without one.
fn pipeline_settings(config: Option<&std::path::Path>) -> anyhow::Result<PipelineConfig> {
    let cfg = load_or_default(config)?.pipeline();
    cfg.validate()?;
    Ok(cfg)
}

fn load_or_default(config: Option<&std::path::Path>) -> anyhow::Result<Config> {
    Ok(match config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    })
}

/// On a machine with no display (no `DISPLAY`, no `WAYLAND_DISPLAY`: a server), keep Mesa's
/// `VK_LAYER_MESA_device_select` from looking for one. That implicit Vulkan layer picks the
/// GPU that drives the display, and while the wgpu backend looks for an adapter it asks
/// libwayland-client for a display, which prints `error: XDG_RUNTIME_DIR is invalid or not
/// set in the environment.` twice on stderr — not our error, but read as one at 3 a.m.
/// With no display there is nothing for the layer to choose by; wgpu picks the adapter
/// itself. An operator's own `NODEVICE_SELECT` or `VK_LOADER_LAYERS_DISABLE` is left alone.
fn quiet_vulkan_display_probe() {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if !set("DISPLAY")
        && !set("WAYLAND_DISPLAY")
        && !set("NODEVICE_SELECT")
        && !set("VK_LOADER_LAYERS_DISABLE")
    {
        // before any thread exists: nothing else reads the environment concurrently
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

fn main() -> ExitCode {
    if let Err(e) = regime_core::check_cpu() {
        regime_server::say!("error: {e}");
        return ExitCode::from(2);
    }
    quiet_vulkan_display_probe();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let hint = if damaged_store(&e) {
                "; the store's file is damaged: stop the service and run `regime restore latest` \
                 (the damaged file is kept in the before-restore backup, for `sqlite3 … .recover`)"
            } else {
                ""
            };
            regime_server::say!("error: {}{hint}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

/// Whether `e` is SQLite reporting the embedded store's file damaged (a `backup` or `export`
/// of it): the line then says what to do.
fn damaged_store(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<rusqlite::Error>()
            .is_some_and(regime_server::store::sqlite_damage)
    })
}

/// The `--input` files, a stream among them (`-`, a pipe) copied aside to be read as a file
/// ([`regime_server::streams`]) while the result lives.
fn spool_inputs(paths: &[PathBuf]) -> anyhow::Result<Vec<regime_server::streams::SpooledInput>> {
    anyhow::ensure!(
        paths.iter().filter(|p| p.as_os_str() == "-").count() <= 1,
        "--input -: standard input can be read once"
    );
    Ok(paths
        .iter()
        .map(|p| regime_server::streams::SpooledInput::new(p))
        .collect::<Result<Vec<_>, _>>()?)
}

/// The error and its causes on one line, each said once: most messages already quote their
/// cause (`{path}: {source}`), and `{e:#}` would repeat it ("x.csv: No such file or
/// directory (os error 2): No such file or directory (os error 2)").
fn one_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !line.contains(&c) {
            line.push_str(": ");
            line.push_str(&c);
        }
    }
    line
}

/// A line in `deployments.log` (the manual's deployment history); a failure is said on
/// stderr, and what was recorded stands.
/// The name of the backup a restore took of the state it replaced, and, when the live table
/// could not be read, that it holds that table as found.
fn safety_said(r: &regime_server::backup::Restored) -> String {
    match &r.safety_damaged {
        None => r.safety.clone(),
        Some(why) => format!(
            "{} (the table there was damaged — {why} — and is kept as found, for recovery by hand)",
            r.safety
        ),
    }
}

fn note_deployment(dir: &std::path::Path, event: &str, fields: &[(&str, String)]) {
    if let Err(e) = regime_server::deployments::record(dir, event, fields) {
        regime_server::say!(
            "warning: {}: not written ({e})",
            dir.join(regime_server::deployments::FILE).display()
        );
    }
}
