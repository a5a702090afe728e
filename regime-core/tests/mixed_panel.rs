//! A panel of unlike markets (`datasets::unlike_markets`: the default market, a slow one and
//! a fast one, 16 symbols each) is pooled in groups of like instruments: each market gets a
//! prior of its own by the last pooling, and a panel of like instruments stays one group.
//! One prior for all had pulled the fast market's trends to the others' length (its trend
//! 0.62 of the oracle's lift on this seed, against 0.80 alone) and the slow market's
//! volatility levels to the others' spacing.

use datasets::{generate, generate_symbol, unlike_markets, Hits, SymbolData, SynthConfig};
use regime_core::bars::Bar;
use regime_core::pipeline::{
    detect_panel, pool_events, Detection, PanelMember, PanelStream, PipelineConfig,
};

const PER: usize = 16;
const BARS: usize = 2_000;
const SEED: u64 = 99_300;
/// Further panels for the fast market's trend, whose share of the oracle's lift on 16
/// series of 2,000 bars moves by several points with any change to what the members learn
/// early (mixed against own panel, at 4fffc19, before the range read as log-gamma: 0.926 / 0.975, 0.932 / 0.815, 0.978 / 0.961
/// on seeds 99,300–99,302): the check is on their mean.
const MORE_SEEDS: [u64; 2] = [99_301, 99_302];

fn markets(seed: u64) -> Vec<Vec<SymbolData>> {
    unlike_markets(BARS)
        .iter()
        .enumerate()
        .map(|(g, (_, cfg))| {
            (0..PER)
                .map(|i| generate_symbol(cfg, seed, g * PER + i))
                .collect()
        })
        .collect()
}

/// The fast market's trend (share of the oracle's lift) in the mixed panel and in a panel
/// of its own, on the panel of `seed`.
fn fast_trend(seed: u64) -> (f64, f64) {
    let data = markets(seed);
    let all: Vec<&SymbolData> = data.iter().flatten().collect();
    let series: Vec<&[Bar]> = all.iter().map(|d| d.bars.as_slice()).collect();
    let cfg = PipelineConfig::default();
    let dets = detect_panel(&series, &cfg).expect("panel");
    let fast: Vec<&SymbolData> = data[2].iter().collect();
    let fast_series: Vec<&[Bar]> = fast.iter().map(|d| d.bars.as_slice()).collect();
    let own = detect_panel(&fast_series, &cfg).expect("own panel");
    (
        hits(&fast, &dets[2 * PER..]).lift_share(1),
        hits(&fast, &own).lift_share(1),
    )
}

fn hits(data: &[&SymbolData], dets: &[Vec<Detection>]) -> Hits {
    let mut h = Hits::default();
    for (d, det) in data.iter().zip(dets) {
        h.add(&Hits::score(d, det));
    }
    h
}

#[test]
fn unlike_markets_are_pooled_apart() {
    let data = markets(SEED);
    let all: Vec<&SymbolData> = data.iter().flatten().collect();
    let series: Vec<&[Bar]> = all.iter().map(|d| d.bars.as_slice()).collect();
    let cfg = PipelineConfig::default();
    let events = pool_events(&series, &cfg).expect("events");
    let last = events
        .last()
        .expect("2,000 timestamps include pooling points");
    println!(
        "groups at each pooling: {:?}",
        events.iter().map(|e| e.groups()).collect::<Vec<_>>()
    );
    assert!(
        last.groups() >= 3,
        "three markets, {} groups",
        last.groups()
    );
    // a member joining after the split cannot be placed in a group: it learns alone
    assert!(last.prior(all.len()).is_none());
    // the volatility persistence each member is pulled toward, per market
    let stay = |i: usize| {
        let p = last.prior(i).expect("every member has a prior");
        (0..3).map(|v| p.a_vol[v][v]).sum::<f64>() / 3.0
    };
    let median = |g: usize| {
        let mut s: Vec<f64> = (g * PER..(g + 1) * PER).map(stay).collect();
        s.sort_by(f64::total_cmp);
        s[PER / 2]
    };
    let (default, slow, fast) = (median(0), median(1), median(2));
    println!("median prior stay: default {default:.4}, slow {slow:.4}, fast {fast:.4}");
    // truth 0.98, 0.995, 0.95; under one prior for all every member read the same
    assert!(slow > default + 0.01 && default > fast + 0.01);

    // and the labels: every market at least as well placed as detected alone (full label),
    // the fast market's trend near what a panel of its own gets
    let dets = detect_panel(&series, &cfg).expect("panel");
    // each symbol alone replaying the events with its own index (how `regime detect` runs a
    // large panel), and one stream fed in time order: the same labels as the panel's
    for (i, (s, want)) in series.iter().zip(&dets).enumerate() {
        let mut m = PanelMember::new(cfg.clone(), &events, i).expect("member");
        let got: Vec<Detection> = s.iter().map(|b| m.update(b)).collect();
        assert!(
            &got == want,
            "member {i} replayed alone differs from the panel"
        );
    }
    let mut stream = PanelStream::new(cfg.clone()).expect("stream");
    for _ in &series {
        stream.add_member().expect("member");
    }
    for t in 0..BARS {
        for (i, s) in series.iter().enumerate() {
            let d = stream.update(i, &s[t]).expect("member exists");
            assert!(
                d == dets[i][t],
                "member {i}, bar {t}: the stream differs from the panel"
            );
        }
    }
    let alone_cfg = PipelineConfig {
        population_weight: 0.0,
        ..PipelineConfig::default()
    };
    let mut fast = Vec::new();
    for (g, (name, _)) in unlike_markets(BARS).iter().enumerate() {
        let own: Vec<&SymbolData> = data[g].iter().collect();
        let own_series: Vec<&[Bar]> = own.iter().map(|d| d.bars.as_slice()).collect();
        let mixed = hits(&own, &dets[g * PER..(g + 1) * PER]);
        let alone = hits(&own, &detect_panel(&own_series, &alone_cfg).expect("alone"));
        let own_panel = hits(&own, &detect_panel(&own_series, &cfg).expect("own panel"));
        let show = |h: &Hits| {
            (0..4)
                .map(|k| format!("{:.3}", h.lift_share(k)))
                .collect::<Vec<_>>()
        };
        println!(
            "{name}: share of the oracle's lift (vol, trend, struct, full) mixed {:?} own panel {:?} alone {:?}",
            show(&mixed),
            show(&own_panel),
            show(&alone)
        );
        assert!(
            mixed.lift_share(3) >= alone.lift_share(3) - 0.02,
            "{name}: full label {:.3} in the mixed panel, {:.3} alone",
            mixed.lift_share(3),
            alone.lift_share(3)
        );
        if *name == "fast" {
            fast.push((mixed.lift_share(1), own_panel.lift_share(1)));
        }
    }
    fast.extend(MORE_SEEDS.map(fast_trend));
    println!("fast market's trend (mixed, own panel) on seeds {SEED}, {MORE_SEEDS:?}: {fast:.3?}");
    let mean = |f: fn(&(f64, f64)) -> f64| fast.iter().map(f).sum::<f64>() / fast.len() as f64;
    let (mixed, own) = (mean(|x| x.0), mean(|x| x.1));
    assert!(
        mixed >= own - 0.08,
        "fast market's trend {mixed:.3} mixed, {own:.3} in a panel of its own (means)"
    );
}

#[test]
fn a_panel_of_like_instruments_is_one_group() {
    let cfg = SynthConfig {
        symbols: 48,
        bars: BARS,
        ..SynthConfig::default()
    };
    let data = generate(&cfg, SEED + 1);
    let series: Vec<&[Bar]> = data.iter().map(|d| d.bars.as_slice()).collect();
    let events = pool_events(&series, &PipelineConfig::default()).expect("events");
    let groups: Vec<usize> = events.iter().map(|e| e.groups()).collect();
    println!("groups at each pooling: {groups:?}");
    assert!(!groups.is_empty() && groups.iter().all(|&g| g == 1));
}
