//! Statistics the detectors share: a robust streaming baseline and a few probability functions.

pub mod baseline;
pub mod dispersion;
pub mod probability;
pub mod sketch;
pub mod trend;
pub mod weekly;

pub use baseline::{Baseline, BaselineParams, Judgement};
pub use dispersion::Dispersion;
pub use sketch::QuantileSketch;
pub use trend::{TrendBaseline, TrendJudgement, TrendParams};
pub use weekly::WeeklyProfile;
