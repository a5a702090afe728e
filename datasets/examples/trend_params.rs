//! Learned trend parameters on short series vs the truth (diagnostic).
use datasets::{generate, SynthConfig};
use regime_core::hmm::{OnlineHmm, OnlineHmmConfig};
fn main() {
    let a: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let cfg = SynthConfig {
        symbols: a.first().copied().unwrap_or(100) as usize,
        bars: a.get(1).copied().unwrap_or(2000) as usize,
        ..SynthConfig::default()
    };
    let data = generate(&cfg, a.get(2).copied().unwrap_or(43));
    let (mut up, mut dn, mut pers, mut phi0, mut phi1) = (vec![], vec![], vec![], vec![], vec![]);
    for d in &data {
        let mut h = OnlineHmm::new(OnlineHmmConfig::default()).unwrap();
        for b in &d.bars {
            h.update(b);
        }
        let p = h.params().unwrap();
        up.push(p.drift[2]);
        dn.push(p.drift[0]);
        pers.push((p.a_trend[0][0] + p.a_trend[1][1] + p.a_trend[2][2]) / 3.0);
        phi0.push(p.phi[0]);
        phi1.push(p.phi[1]);
    }
    let q = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        let at = |q: usize| v[(v.len() - 1) * q / 100];
        format!("p10 {:.4} p50 {:.4} p90 {:.4}", at(10), at(50), at(90))
    };
    println!(
        "drift up {}\ndrift down {}\ntrend persistence {}\nphi trending {}\nphi mr {}",
        q(&mut up),
        q(&mut dn),
        q(&mut pers),
        q(&mut phi0),
        q(&mut phi1)
    );
}
