//! Quick check: oracle vs online HMM accuracy on the last 30% of synthetic series.
use datasets::{generate, SynthConfig};
use regime_core::hmm::{dims, OnlineHmm, OnlineHmmConfig};

fn argmax(x: &[f64]) -> usize {
    let mut b = 0;
    for i in 1..x.len() {
        if x[i] > x[b] {
            b = i;
        }
    }
    b
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let symbols: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let bars: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(42);
    let cfg = SynthConfig {
        symbols,
        bars,
        ..SynthConfig::default()
    };
    let data = generate(&cfg, seed);
    let mut hit = [[0usize; 4]; 2];
    let mut n = 0usize;
    for d in &data {
        let mut oracle = OnlineHmm::fixed(d.true_params.clone()).unwrap();
        let mut online = if std::env::var("FROM_TRUTH").is_ok() {
            OnlineHmm::with_initial(OnlineHmmConfig::default(), d.true_params.clone()).unwrap()
        } else {
            OnlineHmm::new(OnlineHmmConfig::default()).unwrap()
        };
        let start = bars * 7 / 10;
        for (t, b) in d.bars.iter().enumerate() {
            let so = oracle.update(b);
            let sl = online.update(b);
            if t >= start {
                n += 1;
                for (k, s) in [so, sl].iter().enumerate() {
                    let (pv, pd, ps) = dims(&s.joint);
                    let l = d.labels[t];
                    let got = [argmax(&pv), argmax(&pd), argmax(&ps)];
                    let mut all = true;
                    for dim in 0..3 {
                        if got[dim] == l[dim] as usize {
                            hit[k][dim] += 1
                        } else {
                            all = false
                        }
                    }
                    if all {
                        hit[k][3] += 1
                    }
                }
            }
        }
        if symbols == 1 {
            eprintln!("online params: {:?}", online.params());
            eprintln!("true: {:?}", d.true_params);
        }
    }
    let chance = [1.0 / 3.0, 1.0 / 3.0, 0.5, 1.0 / 18.0];
    for dim in 0..4 {
        let o = hit[0][dim] as f64 / n as f64;
        let l = hit[1][dim] as f64 / n as f64;
        println!(
            "dim {dim}: oracle {o:.4} online {l:.4} share {:.3}",
            (l - chance[dim]) / (o - chance[dim])
        );
    }
}
