//! The five detectors. Each documents its formula at the top of its module; docs/DETECTION.md
//! gathers them with the measured quality.

pub mod call_path;
pub mod error_blame;
pub mod error_rate;
pub mod latency;
pub mod rates;
pub mod resource;
pub mod security;
pub mod throughput;
pub mod window_counts;
