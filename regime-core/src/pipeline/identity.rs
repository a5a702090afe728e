//! The identity of a saved pipeline state: which builds may read it.
//!
//! A pipeline's state (the service's per-symbol state files, a pickled Python engine) is
//! saved with postcard, which is not self-describing: it may only be read by code that
//! lays it out alike — and, for the labels after a resume to be an uninterrupted run's,
//! that computes alike. [`state_identity`] captures both, from what the code does rather
//! than from the binary's file (a copy, a reinstall or a rebuild of the same source keeps
//! it).

use super::{PipelineConfig, SymbolPipeline};

/// What a state's meaning is: bump it when a saved field keeps its type but comes to hold
/// something else (the fingerprints below cannot see that).
pub const STATE_FORMAT: u32 = 1;

/// Bars of the fixed series the identity is taken on: past the batch-EM phase (4,096 bars)
/// and two online refits after it, so that every component has run.
const IDENTITY_BARS: i64 = 8_200;

/// The identity of the detection this binary runs: [`STATE_FORMAT`], a fingerprint of the
/// state's layout (`shape`: field names and nesting), and one of what the detection
/// computes — the saved bytes of a default pipeline fed `IDENTITY_BARS` fixed bars, its
/// sampled latencies cleared. A state is resumed only by a binary with the same identity:
/// one whose code would have saved the same bytes, so the labels after the restart are an
/// uninterrupted run's. A copy of the binary (a deploy, a reinstall on another host after
/// a restore), a rebuild of the same source or a change outside the detection keeps it;
/// any change to the detection or the state's layout, or another math library that rounds
/// differently, changes it (the symbol then starts fresh: never a state read by code that
/// would read it otherwise).
pub fn state_identity() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(compute_state_identity)
}

/// [`state_identity`], computed (70 ms here).
pub fn compute_state_identity() -> String {
    match fed_pipeline(&PipelineConfig::default(), IDENTITY_BARS) {
        Ok(mut p) => {
            p.clear_latencies();
            let layout = layout_fingerprint(&p);
            let detection = match postcard::to_stdvec(&p) {
                Ok(bytes) => fnv1a(&bytes),
                Err(e) => fnv1a(e.to_string().as_bytes()),
            };
            format!("state-v{STATE_FORMAT} layout {layout:016x} detection {detection:016x}")
        }
        // cannot happen with the default settings; an identity no state matches
        Err(e) => format!("state-v{STATE_FORMAT} unavailable ({e})"),
    }
}

/// Why a state written by the binary `written` cannot be read by this one (`None`: it can).
pub fn identity_mismatch(written: &str) -> Option<String> {
    let this = state_identity();
    if written == this {
        return None;
    }
    // "state-vN layout X detection Y"
    let parts = |id: &str| -> Vec<String> { id.split_whitespace().map(str::to_string).collect() };
    let (w, t) = (parts(written), parts(this));
    let what = if !written.starts_with("state-v") || w.len() != t.len() {
        "an older kind of binary"
    } else if w[0] != t[0] {
        "a build with another state format"
    } else if w.get(2) != t.get(2) {
        "a build with another state layout"
    } else {
        "a build whose detection computes otherwise (other detection code or math library)"
    };
    Some(format!("written by {what} ({written}), this is {this}"))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits: the same in every build and on every machine (std's default hasher may
/// change between Rust releases; the identity must not).
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = bytes.iter().fold(self.0, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = Fnv(FNV_OFFSET);
    std::hash::Hasher::write(&mut h, bytes);
    std::hash::Hasher::finish(&h)
}

/// A hash of the shape of a pipeline's saved form — its field names and nesting, not its
/// values.
fn layout_fingerprint(p: &SymbolPipeline) -> u64 {
    let mut h = Fnv(FNV_OFFSET);
    match serde_json::to_value(p) {
        Ok(v) => shape(&v, &mut h),
        Err(e) => std::hash::Hash::hash(&e.to_string(), &mut h),
    }
    std::hash::Hasher::finish(&h)
}

/// A pipeline fed `bars` fixed one-minute bars ([`fixed_bars`]).
pub fn fed_pipeline(cfg: &PipelineConfig, bars: i64) -> crate::Result<SymbolPipeline> {
    let mut p = SymbolPipeline::new(cfg.clone())?;
    for b in fixed_bars(bars) {
        p.update(&b);
    }
    Ok(p)
}

/// `n` fixed one-minute bars from time 0: a sine of returns whose size changes every 500
/// bars and whose drift every 350, so that every volatility and trend state occurs.
pub fn fixed_bars(n: i64) -> Vec<crate::bars::Bar> {
    const SIZE: [f64; 3] = [0.002, 0.01, 0.03];
    const DRIFT: [f64; 3] = [0.0, 0.002, -0.002];
    let mut close = 100.0f64;
    (0..n)
        .map(|i| {
            let open = close;
            let (a, d) = (SIZE[(i / 500 % 3) as usize], DRIFT[(i / 350 % 3) as usize]);
            close *= 1.0 + d + a * ((i as f64) * 0.7).sin();
            let (hi, lo) = (open.max(close) * 1.002, open.min(close) * 0.998);
            crate::bars::Bar::new(i * 60_000, open, hi, lo, close, 1000.0 + (i % 7) as f64)
        })
        .collect()
}

/// Feed `v`'s shape to `h`: object keys in order and their values' shapes, an array as its
/// first element's shape, every scalar (a number, NaN's null, a bool, a string) alike.
fn shape(v: &serde_json::Value, h: &mut impl std::hash::Hasher) {
    use serde_json::Value;
    use std::hash::Hash;
    match v {
        Value::Object(m) => {
            '{'.hash(h);
            for (k, x) in m {
                k.hash(h);
                shape(x, h);
            }
            '}'.hash(h);
        }
        Value::Array(a) => {
            '['.hash(h);
            if let Some(x) = a.first() {
                shape(x, h);
            }
            ']'.hash(h);
        }
        _ => 's'.hash(h),
    }
}
