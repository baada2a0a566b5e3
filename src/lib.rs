//! slurm-usage: archive SLURM job accounting into daily Parquet files and report job
//! efficiency. The binary (`src/main.rs`) is a thin shell over [`cli::run`].
//!
//! Module map, top to bottom. A module imports only from the lines below its own: there are
//! no circles, and the reports import neither the collector nor the live views.
//! - `cli`: the command line, one short function per subcommand. It runs the demo's
//!   collector and hands `analyze` the node inventory that `live` asks sinfo for.
//! - `daemon`: the systemd service that runs `collect` on a schedule.
//! - `demo`, `live`, `summary`, `prom`: the demo; `current` and `nodes` (squeue, sinfo); the
//!   table after `collect` and the daemon's Prometheus textfile, both views of a cycle.
//! - `alerts`: efficiency mails to users and group contacts, read from the archive.
//! - `checks`, `collect`, `report`: `test`; one collection cycle; everything read from the
//!   archive (`analyze`, `status`, `job`).
//! - `metrics`, `store`, `scheduler`, `synth`: sacct rows to jobs; the data dir; the cron
//!   loop; the synthetic sacct.
//! - `sacct`, `model`, `config`: sacct's fields, call and parser; the processed job and its
//!   Arrow schema; the config file.
//! - `slurm`, `zone`, `fxhash`, `logging`, `heap`: the one runner for SLURM commands and
//!   SLURM's vocabulary (host lists, job states, TRES); time zones; small utilities.
//!
//! `config`, `model`, `sacct::parser`, `metrics` and `slurm` (all but `slurm::run`) are pure.

pub mod alerts;
pub mod checks;
pub mod cli;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod fxhash;
pub mod heap;
pub mod lake;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod prom;
pub mod report;
pub mod runtime;
pub mod sacct;
pub mod scheduler;
pub mod slurm;
pub mod store;
pub mod summary;
pub mod synth;
pub mod zone;
