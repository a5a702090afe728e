//! Component status snapshots (SPEC §2: state, last update, latency, details).

use std::collections::BTreeMap;

/// Lifecycle state of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ComponentState {
    /// Working normally.
    Running,
    /// Working with reduced quality (warming up, drift, low accuracy).
    Degraded,
    /// Not running (e.g. disabled in safe mode).
    Stopped,
    /// Broken.
    Failed,
}

/// A detail value.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
pub enum Detail {
    /// A number.
    Num(f64),
    /// A count.
    Int(i64),
    /// Text.
    Text(String),
    /// A list of numbers.
    List(Vec<f64>),
}

/// Snapshot of one component.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ComponentStatus {
    /// Stable component name (part of the API).
    pub name: &'static str,
    /// Whether the component is critical.
    pub critical: bool,
    /// Current state.
    pub state: ComponentState,
    /// Timestamp (ms) of the last bar it processed.
    pub last_update_ts: Option<i64>,
    /// Its own mean latency per bar, in microseconds (sampled).
    pub latency_us: f64,
    /// Component-specific details.
    pub details: BTreeMap<String, Detail>,
}

impl ComponentStatus {
    pub(crate) fn new(name: &'static str, critical: bool) -> Self {
        ComponentStatus {
            name,
            critical,
            state: ComponentState::Running,
            last_update_ts: None,
            latency_us: 0.0,
            details: BTreeMap::new(),
        }
    }
    pub(crate) fn num(mut self, k: &str, v: f64) -> Self {
        self.details.insert(k.to_string(), Detail::Num(v));
        self
    }
    pub(crate) fn int(mut self, k: &str, v: i64) -> Self {
        self.details.insert(k.to_string(), Detail::Int(v));
        self
    }
    pub(crate) fn text(mut self, k: &str, v: impl Into<String>) -> Self {
        self.details.insert(k.to_string(), Detail::Text(v.into()));
        self
    }
    pub(crate) fn list(mut self, k: &str, v: Vec<f64>) -> Self {
        self.details.insert(k.to_string(), Detail::List(v));
        self
    }
    pub(crate) fn state(mut self, s: ComponentState) -> Self {
        self.state = s;
        self
    }
}

/// Names of the critical components.
pub const CRITICAL: [&str; 4] = [
    "base_regime_detector",
    "adaptive_scoring_layer",
    "integration_orchestrator",
    "performance_feedback_system",
];

/// All component names, critical first.
pub const ALL_COMPONENTS: [&str; 13] = [
    "base_regime_detector",
    "adaptive_scoring_layer",
    "integration_orchestrator",
    "performance_feedback_system",
    "configuration_manager",
    "historical_analyzer",
    "transition_matrix_analyzer",
    "dynamic_boundary_optimizer",
    "intelligent_transition_manager",
    "regime_stability_monitor",
    "adaptive_noise_filter",
    "continuous_learning_engine",
    "regime_optimization_scheduler",
];
