//! Each ensemble member's label shares per year, next to the pooled label's, for one symbol
//! of a bar file (causal, the symbol alone): which members say what, e.g. on a crash year.
//! `cargo run --release -p regime-server --example members -- FILE SYMBOL [DIMENSION]`
//! (dimension 0 volatility, 1 trend — the default —, 2 structure).
use regime_core::pipeline::{PipelineConfig, SymbolPipeline, METHOD_NAMES, N_METHODS};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        a.len() == 3 || a.len() == 4,
        "usage: members FILE SYMBOL [DIMENSION]"
    );
    let dim: usize = a.get(3).map_or(Ok(1), |s| s.parse())?;
    anyhow::ensure!(dim < 3, "dimension is 0, 1 or 2");
    let s = regime_server::io::read_symbol(std::path::Path::new(&a[1]), &a[2])?;
    let mut p = SymbolPipeline::new(PipelineConfig::default())?;
    // year -> [member or pooled label][state] counts
    let mut years: std::collections::BTreeMap<i32, [[u32; 3]; N_METHODS + 1]> = Default::default();
    for b in &s.bars {
        let d = p.update(b);
        let year = chrono::DateTime::from_timestamp_millis(b.ts)
            .map_or(0, |t| chrono::Datelike::year(&t.date_naive()));
        let row = years.entry(year).or_default();
        for (m, labels) in d.methods.iter().enumerate() {
            if let Some(c) = row[m].get_mut(usize::from(labels[dim])) {
                *c += 1;
            }
        }
        let pooled = [
            d.regime.volatility as usize,
            d.regime.trend as usize,
            d.regime.structure as usize,
        ][dim];
        row[N_METHODS][pooled] += 1;
    }
    let names: Vec<&str> = METHOD_NAMES.iter().copied().chain(["pooled"]).collect();
    println!(
        "year  {}  (% of the year's bars per state 0/1/2)",
        names.join(" | ")
    );
    for (y, row) in &years {
        let cells: Vec<String> = row
            .iter()
            .map(|c| {
                let n = c.iter().sum::<u32>().max(1) as f64;
                c.map(|x| format!("{:.0}", 100.0 * x as f64 / n)).join("/")
            })
            .collect();
        println!("{y}  {}", cells.join(" | "));
    }
    Ok(())
}
