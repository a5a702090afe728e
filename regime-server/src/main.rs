//! The `regime` command line (SPEC §4).

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use regime_core::pipeline::PipelineConfig;
use regime_server::commands::{self, Mode};
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

#[derive(Subcommand)]
enum Cmd {
    /// Detect regimes for every bar of a CSV/Parquet file (multi-symbol, in parallel).
    Detect {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[arg(long, value_enum, default_value = "causal")]
        mode: ModeArg,
        /// Compute backend; only `cpu` exists so far (`auto` picks it).
        #[arg(long, value_enum, default_value = "auto")]
        backend: BackendArg,
        /// Write labels for the valid rows even when some rows are rejected.
        #[arg(long)]
        skip_bad_rows: bool,
        /// Save each symbol's learned model as DIR/<symbol>.v<version>.json (causal mode).
        #[arg(long)]
        models_dir: Option<PathBuf>,
    },
    /// Accuracy against a label column: per dimension and all 18, per method, confusion matrix.
    Evaluate {
        #[arg(long)]
        input: PathBuf,
        #[arg(long, default_value = "true_regime_id")]
        label_column: String,
        /// Score only the last fraction of each series (the first part is learning time).
        #[arg(long, default_value_t = 1.0)]
        score_last: f64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write a synthetic OHLCV panel with known regimes (true labels included).
    Generate {
        #[arg(long)]
        output: PathBuf,
        #[arg(long, default_value_t = 1)]
        symbols: usize,
        #[arg(long, default_value_t = 2000)]
        bars: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = PipelineConfig::default();
    match cli.cmd {
        Cmd::Detect {
            input,
            output,
            mode,
            backend,
            skip_bad_rows,
            models_dir,
        } => {
            match backend {
                BackendArg::Auto | BackendArg::Cpu => {}
                BackendArg::Cuda | BackendArg::Wgpu => anyhow::bail!(
                    "backend not compiled into this build (the GPU backends are not implemented yet); use --backend cpu"
                ),
            }
            let mode = match mode {
                ModeArg::Causal => Mode::Causal,
                ModeArg::ExPost => Mode::ExPost,
            };
            let t = std::time::Instant::now();
            let (n, bad) = commands::detect(
                &input,
                &output,
                mode,
                skip_bad_rows,
                models_dir.as_deref(),
                &cfg,
            )?;
            let s = t.elapsed().as_secs_f64();
            eprintln!(
                "detected {n} bars ({bad} rejected) in {s:.3} s ({:.0} bars/s), backend cpu -> {}",
                n as f64 / s.max(1e-9),
                output.display()
            );
        }
        Cmd::Evaluate {
            input,
            label_column,
            score_last,
            json,
        } => {
            let v = commands::evaluate(&input, &label_column, score_last, &cfg)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v).context("json")?);
            } else {
                commands::print_evaluation(&v);
            }
        }
        Cmd::Generate {
            output,
            symbols,
            bars,
            seed,
        } => {
            anyhow::ensure!(
                symbols >= 1 && bars >= 1,
                "--symbols and --bars must be >= 1"
            );
            let cfg = datasets::SynthConfig {
                symbols,
                bars,
                ..Default::default()
            };
            let n = commands::generate_file(&output, &cfg, seed)?;
            eprintln!(
                "wrote {n} bars ({symbols} symbols, seed {seed}) -> {}",
                output.display()
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
