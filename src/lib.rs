//! slurm-usage: archive SLURM job accounting into daily Parquet files and report job
//! efficiency. The binary (`src/main.rs`) is a thin shell over [`cli::run`].
//!
//! Module map (imports point down): `cli` -> `collect` -> `sacct`, `metrics`, `store`,
//! `model`, `config`. `config`, `model`, `sacct::parser` and `metrics` are pure.

pub mod checks;
pub mod cli;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod fxhash;
pub mod heap;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod prom;
pub mod report;
pub mod sacct;
pub mod scheduler;
pub mod slurm;
pub mod store;
pub mod summary;
pub mod synth;
pub mod zone;
