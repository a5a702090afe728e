//! The three backends agree (SPEC §8, CONVENTIONS §9): features, emission log-likelihoods,
//! the forward filter and fused detection on panels and on a single long series, against
//! the CPU reference in `f64`. GPU variants skip with a printed reason when no device is
//! present (`REGIME_REQUIRE_GPU=1` / `REGIME_REQUIRE_WGPU=1` turn a skip into a failure).

use regime_core::backend::testing::*;
use regime_core::backend::*;
use regime_core::bars::Bar;
use regime_core::model::{state_ar, JointParams, ObsExtractor};
use regime_kernels::plan::GpuOptions;
use regime_kernels::test_support::{cuda_or_skip, wgpu_or_skip};

fn seed() -> u64 {
    let s = std::env::var("REGIME_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    println!("seed {s}");
    s
}

/// Series of different lengths with their true models, a close-only series, a series
/// with gaps in its volume (its range read as log-gamma), one with bars that saw no trade or were one print, and an
/// empty one.
fn panel(seed: u64, symbols: usize, bars: usize) -> (Panel, ParamTable) {
    let cfg = datasets::SynthConfig {
        symbols,
        bars,
        ..Default::default()
    };
    let data = datasets::generate(&cfg, seed);
    let mut series: Vec<Vec<Bar>> = data
        .iter()
        .enumerate()
        .map(|(k, d)| d.bars[..bars - (k * 97) % (bars / 2)].to_vec())
        .collect();
    let mut models: Vec<JointParams> = data.iter().map(|d| d.true_params.clone()).collect();
    series.push(
        series[0]
            .iter()
            .map(|b| Bar::close_only(b.ts, b.close))
            .collect(),
    );
    models.push(models[0].clone());
    let mut holes = series[1].clone();
    for (i, b) in holes.iter_mut().enumerate() {
        if i % 7 == 3 {
            b.volume = f64::NAN;
        }
    }
    series.push(holes);
    // scored with the range read as log-gamma, as learned models of market bars read it
    let mut log_gamma = models[1].clone();
    log_gamma.range_log_gamma = true;
    models.push(log_gamma);
    // bars with no trade (open, high, low, close all the previous close; no volume, or
    // none given), in runs of two: every channel absent, and the next bar has no previous
    // return — chunk hand-offs land on them too; and bars made of one print (no gap)
    let mut quiet = series[2].clone();
    for i in 1..quiet.len() {
        if i % 5 == 3 {
            let c = quiet[i].close;
            (quiet[i].open, quiet[i].high, quiet[i].low) = (c, c, c);
        } else if i % 5 == 1 || i % 5 == 2 {
            let c = quiet[i - 1].close;
            let volume = if i % 2 == 0 { 0.0 } else { f64::NAN };
            quiet[i] = Bar {
                open: c,
                high: c,
                low: c,
                close: c,
                volume,
                ..quiet[i]
            };
        }
    }
    series.push(quiet);
    models.push(models[2].clone());
    // a model of prices seen through noise (a tick grid, a bid-ask bounce): each volatility
    // state's lag-1 coefficient differs (`model::state_ar`)
    let mut noisy = models[1].clone();
    noisy.noise = 0.25 * noisy.sigma[1].powi(2);
    assert!(
        (0..3).any(|v| noisy.phi[0] != state_ar(&noisy, 1.0 / noisy.sigma[v])[0]),
        "the noisy model's coefficients differ from phi"
    );
    series.push(series[1].clone());
    models.push(noisy);
    // prices on a grid of about one return sd (log step 0.02): a third of the bars' excess
    // ranges are exactly 0, read as half a step once the grid shows (`model::PriceGrid`);
    // a chunk's grid state is the host's
    let grid = datasets::quote::on_log_grid(&series[2], 0.02);
    let mut ex = ObsExtractor::new();
    let read_as_half_a_step = grid
        .iter()
        .map(|b| (b, ex.update(b)))
        .filter(|(b, o)| {
            b.high == b.open.max(b.close) && b.low == b.open.min(b.close) && !o.log_range.is_nan()
        })
        .count();
    assert!(
        read_as_half_a_step > 100,
        "the grid series reads {read_as_half_a_step} zero excess ranges as half a step"
    );
    series.push(grid);
    models.push(models[2].clone());
    series.push(Vec::new());
    models.push(models[0].clone());
    let refs: Vec<&[Bar]> = series.iter().map(|s| s.as_slice()).collect();
    (
        Panel::from_series(&refs).expect("panel"),
        ParamTable::new(&models).expect("models"),
    )
}

fn small_chunks(warmup_chunks: usize) -> GpuOptions {
    GpuOptions {
        chunk_len: 512,
        warmup_chunks,
        ..Default::default()
    }
}

/// Everything a GPU backend must match.
fn equal_to_cpu(gpu: &dyn ComputeBackend, panel: &Panel, params: &ParamTable) {
    let cpu = CpuBackend::new();
    // features: f32 logs of f32 prices; the slow volume average is a recurrence, hence the
    // recursive tolerance with an absolute floor of 2e-5 (ln of a volume near 1e6 in f32
    // is only good to ~1e-6, and the average accumulates that)
    let fc = cpu.features(panel).expect("cpu features");
    let fg = gpu.features(panel).expect("gpu features");
    let tol = Tolerance {
        rel: 1e-3,
        abs: 2e-5,
    };
    assert_close(&fg.values, &fc.values, tol);
    // emission from the same (CPU) features
    let lc = cpu.emission_log_likelihood(&fc, params).expect("cpu ll");
    let lg = gpu.emission_log_likelihood(&fc, params).expect("gpu ll");
    // each log-likelihood is a sum of terms of size ~5 (ln 1/σ ≈ 4.6, the Gaussian
    // constants), each rounded to f32 (~5e-7): a value near 0 carries their absolute error
    let ll_tol = Tolerance {
        rel: GPU_F32_RECURSIVE.rel,
        abs: 1e-5,
    };
    assert_close(&lg.values, &lc.values, ll_tol);
    // filter from the same (CPU) log-likelihoods
    let pc = cpu.forward_filter(&lc, params).expect("cpu filter");
    let pg = gpu.forward_filter(&lc, params).expect("gpu filter");
    assert_close(&pg.probs, &pc.probs, PROBABILITY);
    let a = compare(&pg, &pc);
    assert!(a.real_differences.is_empty(), "filter: {a:?}");
    // fused detection: OHLCV in, against the CPU's fused f64 pass
    let dc = cpu.detect(panel, params).expect("cpu detect");
    let dg = gpu.detect(panel, params).expect("gpu detect");
    let a = compare(&dg, &dc);
    println!(
        "{}: {} rows, {:.5} equal ids, {} near-ties, max |Δp| {:.2e}",
        gpu.name(),
        a.rows,
        a.share_equal(),
        a.near_ties,
        a.max_prob_diff
    );
    assert_close(&dg.probs, &dc.probs, PROBABILITY);
    assert!(a.real_differences.is_empty(), "detect: {a:?}");
    assert!(a.share_equal() >= 0.999, "detect: {a:?}");
}

fn single_long_series(seed: u64) -> (Panel, ParamTable) {
    let cfg = datasets::SynthConfig {
        symbols: 1,
        bars: 60_000,
        ..Default::default()
    };
    let d = &datasets::generate(&cfg, seed)[0];
    (
        Panel::from_series(&[&d.bars]).expect("panel"),
        ParamTable::shared(&d.true_params).expect("model"),
    )
}

macro_rules! backend_tests {
    ($name:ident, $make:ident) => {
        mod $name {
            use super::*;

            #[test]
            fn panel_matches_cpu() {
                let Some(b) = $make(
                    concat!(stringify!($name), "::panel_matches_cpu"),
                    small_chunks(1),
                ) else {
                    return;
                };
                let (p, t) = panel(seed(), 12, 3000);
                equal_to_cpu(&b, &p, &t);
            }

            #[test]
            fn single_long_series_matches_cpu() {
                let Some(b) = $make(
                    concat!(stringify!($name), "::single_long_series_matches_cpu"),
                    small_chunks(1),
                ) else {
                    return;
                };
                let (p, t) = single_long_series(seed() + 1);
                equal_to_cpu(&b, &p, &t);
            }

            #[test]
            fn no_warm_up_is_repaired_by_the_hand_off_check() {
                // every chunk starts cold: each hand-off differs and is re-run from its
                // neighbour's state, which must still give the sequential result
                let Some(b) = $make(
                    concat!(
                        stringify!($name),
                        "::no_warm_up_is_repaired_by_the_hand_off_check"
                    ),
                    small_chunks(0),
                ) else {
                    return;
                };
                let (p, t) = panel(seed() + 2, 4, 2500);
                let dc = CpuBackend::new().detect(&p, &t).expect("cpu");
                let dg = b.detect(&p, &t).expect("gpu");
                assert_close(&dg.probs, &dc.probs, PROBABILITY);
                assert!(compare(&dg, &dc).real_differences.is_empty());
            }

            #[test]
            fn mismatched_shapes_are_errors_not_panics() {
                let Some(b) = $make(
                    concat!(
                        stringify!($name),
                        "::mismatched_shapes_are_errors_not_panics"
                    ),
                    small_chunks(1),
                ) else {
                    return;
                };
                let (p, _) = panel(seed(), 3, 800);
                let two = ParamTable::new(&[
                    JointParams::initial(0.01, -5.0, 0.0),
                    JointParams::initial(0.02, -5.0, 0.0),
                ])
                .expect("two models");
                assert!(b.detect(&p, &two).is_err());
                let bad = LogLik {
                    values: vec![0.0; 17],
                    offsets: vec![0, 1],
                };
                assert!(b.forward_filter(&bad, &two).is_err());
            }
        }
    };
}

backend_tests!(wgpu, wgpu_or_skip);
backend_tests!(cuda, cuda_or_skip);

#[test]
fn cpu_rayon_equals_cpu_scalar_on_a_panel() {
    let (p, t) = panel(seed(), 12, 3000);
    let a = CpuBackend::new().detect(&p, &t).expect("rayon");
    let b = CpuBackend::scalar().detect(&p, &t).expect("scalar");
    assert_eq!(a, b);
}

/// NVRTC compiles every CUDA kernel with no GPU (the `nvidia-cuda-nvrtc` wheel). CI sets
/// `REGIME_REQUIRE_NVRTC=1`, so a missing library fails there instead of skipping.
#[test]
fn every_cuda_kernel_compiles_with_nvrtc() {
    if !regime_kernels::cuda::nvrtc_present() {
        if std::env::var("REGIME_REQUIRE_NVRTC").is_ok_and(|v| v == "1") {
            panic!("REGIME_REQUIRE_NVRTC=1 but libnvrtc cannot be loaded");
        }
        regime_kernels::test_support::record_skip(
            "every_cuda_kernel_compiles_with_nvrtc",
            "libnvrtc not found",
        );
        return;
    }
    for k in regime_kernels::KernelId::ALL {
        let ptx = regime_kernels::cuda::compile_to_ptx(k, Some("compute_90"))
            .unwrap_or_else(|e| panic!("{}: {e}", k.name()));
        assert!(
            ptx.contains(&format!(".entry {}", k.entry())),
            "{}",
            k.name()
        );
        println!("{}: {} bytes of PTX", k.name(), ptx.len());
    }
}
