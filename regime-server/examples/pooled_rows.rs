//! The pooled per-dimension probabilities of one symbol of a bar file, bar by bar (causal, the
//! symbol alone), with the columns `benches/accuracy/predictive_teacher.py` scores a
//! posterior by (how well it predicts the next bar: [`datasets::predictive_header`]), as CSV on
//! stdout; bars before the model exists are left out. What it takes to ask of real bars, which
//! carry no true labels, whether the reported probabilities say more than the bars bear.
//! `cargo run --release -p regime-server --example pooled_rows -- FILE SYMBOL > rows.csv`
use regime_core::pipeline::{PipelineConfig, SymbolPipeline};
use std::fmt::Write as _;
use std::io::Write as _;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(a.len() == 3, "usage: pooled_rows FILE SYMBOL");
    let s = regime_server::io::read_symbol(std::path::Path::new(&a[1]), &a[2])?;
    let mut p = SymbolPipeline::new(PipelineConfig::default())?;
    let mut out = String::from("timestamp");
    for c in datasets::PROB_CELLS {
        let _ = write!(out, ",ensemble_{c}");
    }
    datasets::predictive_header(&mut out);
    out.push('\n');
    for b in &s.bars {
        let d = p.update(b);
        let mut line = String::new();
        let _ = write!(line, "{}", b.ts);
        for x in d
            .p_volatility
            .iter()
            .chain(&d.p_trend)
            .chain(&d.p_structure)
        {
            let _ = write!(line, ",{x:.6}");
        }
        if datasets::predictive_cells(&mut line, p.hmm()) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
