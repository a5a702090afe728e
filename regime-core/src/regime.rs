//! The 18 market regimes: three dimensions (volatility × trend × structure).

use std::fmt;

/// Volatility level relative to the instrument's own history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Volatility {
    /// Low volatility (index 0).
    Low = 0,
    /// Medium volatility (index 1).
    Medium = 1,
    /// High volatility (index 2).
    High = 2,
}

/// Direction of the drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Trend {
    /// Downtrend (index 0).
    Down = 0,
    /// No meaningful drift (index 1).
    Neutral = 1,
    /// Uptrend (index 2).
    Up = 2,
}

/// Sign of short-horizon return autocorrelation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Structure {
    /// Positive autocorrelation: moves continue (index 0).
    Trending = 0,
    /// Negative autocorrelation: moves reverse (index 1).
    MeanReverting = 1,
}

impl Volatility {
    /// All states in index order.
    pub const ALL: [Volatility; 3] = [Volatility::Low, Volatility::Medium, Volatility::High];
    /// State from its index.
    pub fn from_index(i: usize) -> Option<Self> {
        Self::ALL.get(i).copied()
    }
    /// Snake name (`low`, `medium`, `high`).
    pub fn as_str(self) -> &'static str {
        ["low", "medium", "high"][self as usize]
    }
}

impl Trend {
    /// All states in index order.
    pub const ALL: [Trend; 3] = [Trend::Down, Trend::Neutral, Trend::Up];
    /// State from its index.
    pub fn from_index(i: usize) -> Option<Self> {
        Self::ALL.get(i).copied()
    }
    /// Snake name (`down`, `neutral`, `up`).
    pub fn as_str(self) -> &'static str {
        ["down", "neutral", "up"][self as usize]
    }
}

impl Structure {
    /// All states in index order.
    pub const ALL: [Structure; 2] = [Structure::Trending, Structure::MeanReverting];
    /// State from its index.
    pub fn from_index(i: usize) -> Option<Self> {
        Self::ALL.get(i).copied()
    }
    /// Snake name (`trending`, `mean_reverting`).
    pub fn as_str(self) -> &'static str {
        ["trending", "mean_reverting"][self as usize]
    }
}

/// Number of regimes.
pub const N_REGIMES: usize = 18;
/// Number of states in each dimension (volatility, trend, structure).
pub const DIM_SIZES: [usize; 3] = [3, 3, 2];
/// Dimension names, in order.
pub const DIM_NAMES: [&str; 3] = ["volatility", "trend", "structure"];

/// One of the 18 regimes. `id = volatility*6 + trend*2 + structure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Regime {
    /// Volatility level.
    pub volatility: Volatility,
    /// Trend direction.
    pub trend: Trend,
    /// Autocorrelation structure.
    pub structure: Structure,
}

const HUMAN: [&str; N_REGIMES] = [
    "Calm Bear Market",
    "Calm Drifting Decline",
    "Calm Sideways Drift",
    "Calm Range-Bound Market",
    "Calm Bull Market",
    "Calm Grinding Advance",
    "Steady Bear Market",
    "Steady Choppy Decline",
    "Steady Sideways Drift",
    "Steady Range-Bound Market",
    "Steady Bull Market",
    "Steady Choppy Advance",
    "Volatile Selloff",
    "Volatile Choppy Decline",
    "Volatile Sideways Swings",
    "Volatile Range-Bound Chop",
    "Volatile Rally",
    "Volatile Choppy Advance",
];

const SNAKE: [&str; N_REGIMES] = [
    "low_vol_down_trending",
    "low_vol_down_mean_reverting",
    "low_vol_neutral_trending",
    "low_vol_neutral_mean_reverting",
    "low_vol_up_trending",
    "low_vol_up_mean_reverting",
    "medium_vol_down_trending",
    "medium_vol_down_mean_reverting",
    "medium_vol_neutral_trending",
    "medium_vol_neutral_mean_reverting",
    "medium_vol_up_trending",
    "medium_vol_up_mean_reverting",
    "high_vol_down_trending",
    "high_vol_down_mean_reverting",
    "high_vol_neutral_trending",
    "high_vol_neutral_mean_reverting",
    "high_vol_up_trending",
    "high_vol_up_mean_reverting",
];

impl Regime {
    /// Build from the three dimensions.
    pub fn new(volatility: Volatility, trend: Trend, structure: Structure) -> Self {
        Regime {
            volatility,
            trend,
            structure,
        }
    }
    /// Build from per-dimension indices; `None` when any is out of range.
    pub fn from_indices(v: usize, t: usize, s: usize) -> Option<Self> {
        Some(Regime::new(
            Volatility::from_index(v)?,
            Trend::from_index(t)?,
            Structure::from_index(s)?,
        ))
    }
    /// Build from the regime id (0..17).
    pub fn from_id(id: u8) -> Option<Self> {
        let id = id as usize;
        if id >= N_REGIMES {
            return None;
        }
        Self::from_indices(id / 6, (id / 2) % 3, id % 2)
    }
    /// Look a regime up by its snake name.
    pub fn from_snake_name(name: &str) -> Option<Self> {
        SNAKE
            .iter()
            .position(|n| *n == name)
            .and_then(|i| Self::from_id(i as u8))
    }
    /// The regime id: `volatility*6 + trend*2 + structure`.
    pub fn id(self) -> u8 {
        self.volatility as u8 * 6 + self.trend as u8 * 2 + self.structure as u8
    }
    /// Per-dimension indices `[volatility, trend, structure]`.
    pub fn indices(self) -> [usize; 3] {
        [
            self.volatility as usize,
            self.trend as usize,
            self.structure as usize,
        ]
    }
    /// Stable snake name, e.g. `low_vol_down_trending`.
    pub fn snake_name(self) -> &'static str {
        SNAKE[self.id() as usize]
    }
    /// Human name, e.g. "Calm Bear Market".
    pub fn human_name(self) -> &'static str {
        HUMAN[self.id() as usize]
    }
    /// All 18 regimes in id order.
    pub fn all() -> impl Iterator<Item = Regime> {
        (0..N_REGIMES as u8).filter_map(Regime::from_id)
    }
}

impl fmt::Display for Regime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.snake_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_follow_the_formula() {
        for id in 0..18u8 {
            let r = Regime::from_id(id).expect("valid id");
            assert_eq!(r.id(), id);
            let [v, t, s] = r.indices();
            assert_eq!(id as usize, v * 6 + t * 2 + s);
            assert_eq!(Regime::from_snake_name(r.snake_name()), Some(r));
            let expect = format!(
                "{}_vol_{}_{}",
                r.volatility.as_str(),
                r.trend.as_str(),
                r.structure.as_str()
            );
            assert_eq!(r.snake_name(), expect);
        }
        assert_eq!(Regime::from_id(18), None);
        assert_eq!(
            Regime::from_id(0).map(|r| r.human_name()),
            Some("Calm Bear Market")
        );
        assert_eq!(
            Regime::from_id(10).map(|r| r.human_name()),
            Some("Steady Bull Market")
        );
        assert_eq!(
            Regime::from_id(16).map(|r| r.human_name()),
            Some("Volatile Rally")
        );
    }
}
