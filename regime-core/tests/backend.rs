//! The CPU reference backend: fused vs composed, rayon vs one thread, and the model's own
//! filter; shapes and bad values named.

use regime_core::backend::testing::*;
use regime_core::backend::*;
use regime_core::bars::Bar;
use regime_core::model::{correct, marginals, Compiled, JointParams, ObsExtractor, NS};
use regime_core::Error;

/// Five synthetic series of different lengths and a close-only copy of the first,
/// with each series' true model.
fn panel_and_models() -> (Panel, ParamTable) {
    let cfg = datasets::SynthConfig {
        symbols: 5,
        bars: 2000,
        ..Default::default()
    };
    let data = datasets::generate(&cfg, 100);
    let mut series: Vec<Vec<Bar>> = data
        .iter()
        .enumerate()
        .map(|(k, d)| d.bars[..700 + 300 * k].to_vec())
        .collect();
    series.push(
        series[0]
            .iter()
            .map(|b| Bar::close_only(b.ts, b.close))
            .collect(),
    );
    let mut models: Vec<JointParams> = data.iter().map(|d| d.true_params.clone()).collect();
    models.push(models[0].clone());
    let refs: Vec<&[Bar]> = series.iter().map(|s| s.as_slice()).collect();
    (
        Panel::from_series(&refs).expect("valid panel"),
        ParamTable::new(&models).expect("valid models"),
    )
}

fn panel() -> Panel {
    panel_and_models().0
}

fn params() -> ParamTable {
    panel_and_models().1
}

#[test]
fn fused_detect_equals_the_composed_steps_and_the_scalar_engine() {
    let p = panel();
    let t = params();
    let cpu = CpuBackend::new();
    let fused = cpu.detect(&p, &t).expect("detect");
    let obs = cpu.features(&p).expect("features");
    let ll = cpu.emission_log_likelihood(&obs, &t).expect("emission");
    let composed = cpu.forward_filter(&ll, &t).expect("filter");
    // the composed path rounds features and log-likelihoods to f32 in between
    assert_close(&composed.probs, &fused.probs, PROBABILITY);
    let agree = compare(&composed, &fused);
    assert!(agree.real_differences.is_empty(), "{agree:?}");
    let scalar = CpuBackend::scalar().detect(&p, &t).expect("scalar");
    assert_eq!(scalar, fused, "rayon and one thread give the same bits");
}

#[test]
fn detect_matches_the_models_own_filter_on_each_series() {
    let p = panel();
    let t = params();
    let post = CpuBackend::new().detect(&p, &t).expect("detect");
    for s in 0..p.n_series() {
        let c = t.get(s);
        let mut ex = ObsExtractor::new();
        let mut alpha = Compiled::uniform();
        for (k, i) in p.series(s).enumerate() {
            let mut pred = Compiled::uniform();
            if k > 0 {
                c.predict(&alpha, &mut pred);
            }
            let mut b = [0.0; NS];
            c.emission(&ex.update(&p.bar(i)), &mut b);
            correct(&pred, &b, &mut alpha);
            let (pv, _, _) = marginals(&alpha);
            for (v, want) in pv.iter().enumerate() {
                let got = post.probs[i * N_PROBS + v] as f64;
                assert!((got - want).abs() < 1e-6, "series {s} row {i}");
            }
        }
    }
}

#[test]
fn probabilities_sum_to_one_and_regime_is_the_argmax() {
    let p = panel();
    let post = CpuBackend::new().detect(&p, &params()).expect("detect");
    for i in 0..p.len() {
        let q = &post.probs[i * N_PROBS..i * N_PROBS + N_PROBS];
        for d in [&q[0..3], &q[3..6], &q[6..8]] {
            assert!((d.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        let r = post.regime[i] as usize;
        assert!(q[r / 6] >= q[0].max(q[1]).max(q[2]));
    }
}

#[test]
fn shapes_and_bad_values_are_named() {
    let e = Panel::new(
        vec![1.0],
        vec![1.0],
        vec![1.0],
        vec![-1.0],
        vec![1.0],
        vec![0, 1],
    )
    .expect_err("negative close");
    assert!(e.to_string().contains("close[0]"), "{e}");
    let e = Panel::new(
        vec![1.0],
        vec![],
        vec![1.0],
        vec![1.0],
        vec![1.0],
        vec![0, 1],
    )
    .expect_err("short column");
    assert!(matches!(e, Error::Shape { .. }));
    let e = Panel::new(
        vec![1.0],
        vec![1.0],
        vec![1.0],
        vec![1.0],
        vec![1.0],
        vec![0, 2],
    )
    .expect_err("offsets");
    assert!(e.to_string().contains("offsets"), "{e}");
    let two = ParamTable::new(&[
        JointParams::initial(0.01, -5.0, 0.0),
        JointParams::initial(0.02, -5.0, 0.0),
    ])
    .expect("two models");
    let e = CpuBackend::new()
        .detect(&panel(), &two)
        .expect_err("6 series, 2 models");
    assert!(matches!(e, Error::Shape { .. }), "{e}");
}

/// Prices of 10⁴¹, 10⁻³⁹ or 10⁻⁴⁹ are valid bars (`f64`) but `inf`, subnormal (a few
/// significant bits) or 0 in the backends' `f32`: a
/// series beyond `f32`'s comfortable range is scaled by a power of two, so it gets the
/// regimes of the same series near 100 and its probabilities to rounding. (A
/// 10-million-bar generated series wandered to 1.2·10³⁹ and `detect --model` stopped on it.)
#[test]
fn prices_beyond_f32_are_scaled_into_it() {
    let cfg = datasets::SynthConfig {
        symbols: 1,
        bars: 3000,
        ..Default::default()
    };
    let data = datasets::generate(&cfg, 101);
    let base = &data[0].bars;
    let scaled = |price: f64, volume: f64| -> Vec<Bar> {
        base.iter()
            .map(|b| {
                Bar::new(
                    b.ts,
                    b.open * price,
                    b.high * price,
                    b.low * price,
                    b.close * price,
                    b.volume * volume,
                )
            })
            .collect()
    };
    let huge = scaled(2f64.powi(130), 2f64.powi(140)); // ~1.4e41, volumes ~1e44
    let tiny = scaled(2f64.powi(-170), 2f64.powi(-150)); // ~1e-49: 0 in f32
                                                         // ~1e-39: valid in f32 but subnormal, a few significant bits left
    let faint = scaled(2f64.powi(-135), 1.0);
    assert!((huge[0].close as f32).is_infinite() && (tiny[0].close as f32) == 0.0);
    assert!((faint[0].close as f32).is_subnormal());
    let models = ParamTable::new(&[data[0].true_params.clone()]).expect("model");
    let cpu = CpuBackend::new();
    let want = cpu
        .detect(&Panel::from_series(&[base]).expect("panel"), &models)
        .expect("detect");
    for s in [&huge, &tiny, &faint] {
        let got = cpu
            .detect(&Panel::from_series(&[s]).expect("scaled panel"), &models)
            .expect("detect");
        // the same bars at another scale: the logs of the prices differ in their last bits
        // (ln 2^k added), nothing more
        let moved = got
            .regime
            .iter()
            .zip(&want.regime)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(moved, 0, "{moved} regimes moved");
        let tol = Tolerance {
            rel: 0.0,
            abs: 1e-5,
        };
        check_close(&got.probs, &want.probs, tol).expect("the same probabilities");
    }
    // a span no f32 holds (10^-200 beside 10^200) is an error naming the series, the bar
    // and the span
    let mut wide = base.clone();
    wide[10] = Bar::new(wide[10].ts, 1e200, 1e200, 1e200, 1e200, 1.0);
    wide[20] = Bar::new(wide[20].ts, 1e-200, 1e-200, 1e-200, 1e-200, 1.0);
    match Panel::from_series(&[base, &wide]) {
        Err(Error::PriceSpan {
            series,
            bar,
            lo,
            hi,
        }) => {
            assert_eq!((series, lo, hi), (1, 1e-200, 1e200));
            assert!(bar == 10 || bar == 20, "bar {bar}");
        }
        other => panic!("expected PriceSpan, got {other:?}"),
    }
}

#[test]
fn a_series_scored_bar_by_bar_has_the_panels_bits() {
    // three unlike series, each with its own model, in one panel: OHLCV, close-only, and
    // one with zero and absent volumes
    let cfg = datasets::SynthConfig {
        symbols: 3,
        bars: 2500,
        ..Default::default()
    };
    let data = datasets::generate(&cfg, 107_401);
    let mut series: Vec<Vec<Bar>> = data.iter().map(|d| d.bars.clone()).collect();
    series[1] = series[1]
        .iter()
        .map(|b| Bar::close_only(b.ts, b.close))
        .collect();
    for (i, b) in series[2].iter_mut().enumerate() {
        b.volume = match i % 7 {
            0 => 0.0,
            3 => f64::NAN,
            _ => b.volume,
        };
    }
    let params: Vec<JointParams> = data.iter().map(|d| d.true_params.clone()).collect();
    let refs: Vec<&[Bar]> = series.iter().map(|s| s.as_slice()).collect();
    let panel = Panel::from_series(&refs).expect("panel");
    let want = CpuBackend::new()
        .detect(&panel, &ParamTable::new(&params).expect("models"))
        .expect("detect");
    for (k, (s, p)) in series.iter().zip(&params).enumerate() {
        let mut scorer = SeriesScorer::new(p).expect("scorer");
        for (t, b) in s.iter().enumerate() {
            assert!(SeriesScorer::holds(b), "series {k} bar {t}");
            let mut probs = [0f32; N_PROBS];
            let regime = scorer.step(b, &mut probs);
            let i = panel.series(k).start + t;
            assert_eq!(regime, want.regime[i], "series {k} bar {t}: regime");
            let panel_probs = &want.probs[i * N_PROBS..(i + 1) * N_PROBS];
            for (a, e) in probs.iter().zip(panel_probs) {
                assert_eq!(
                    a.to_bits(),
                    e.to_bits(),
                    "series {k} bar {t}: {probs:?} vs {panel_probs:?}"
                );
            }
        }
    }
    // what a panel would rescale is not held: a price or volume beyond 2^120 or below 2^-120
    let b = series[0][0];
    for (price, volume) in [
        (2f64.powi(125), 1.0),
        (2f64.powi(-130), 1.0),
        (1.0, 2f64.powi(125)),
    ] {
        let far = Bar::new(
            b.ts,
            b.open * price,
            b.high * price,
            b.low * price,
            b.close * price,
            b.volume * volume,
        );
        assert!(!SeriesScorer::holds(&far), "{far:?}");
    }
    assert!(SeriesScorer::holds(&Bar::new(
        b.ts,
        2f64.powi(119),
        2f64.powi(119),
        2f64.powi(-119),
        1.0,
        0.0
    )));
}
