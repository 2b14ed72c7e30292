//! Statistics the detectors share: a robust streaming baseline and a few probability functions.

pub mod baseline;
pub mod probability;

pub use baseline::{Baseline, BaselineParams, Judgement};
