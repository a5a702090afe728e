//! Learned trend parameters on short series vs the truth (diagnostic).
use datasets::{generate, SynthConfig};
use regime_core::hmm::{OnlineHmm, OnlineHmmConfig};
fn main() {
    let cfg = SynthConfig {
        symbols: 100,
        bars: 2000,
        ..SynthConfig::default()
    };
    let data = generate(&cfg, 43);
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
        format!("p10 {:.3} p50 {:.3} p90 {:.3}", v[10], v[50], v[90])
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
