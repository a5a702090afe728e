//! Print each symbol's learned HMM parameters after a causal pass.
//! `cargo run --release -p regime-server --example params -- FILE`
use regime_core::pipeline::{PipelineConfig, SymbolPipeline};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: params FILE"))?;
    let input = regime_server::io::read_bars(std::path::Path::new(&path), None)?;
    for s in &input.series {
        let mut p = SymbolPipeline::new(PipelineConfig::default())?;
        for b in &s.bars {
            p.update(b);
        }
        println!(
            "{} (model version {}): {:#?}",
            s.symbol,
            p.hmm().model_version(),
            p.hmm().params()
        );
    }
    Ok(())
}
