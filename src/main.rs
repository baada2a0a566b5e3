//! The `slurm-usage` binary: parse the command line, run it, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use slurm_usage::cli::{self, Cli, EXIT_BUSY, EXIT_CONFIG};
use slurm_usage::config::ConfigError;
use slurm_usage::store::lock::LockError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("slurm-usage: error: {err:#}");
            if err.chain().any(|e| e.is::<ConfigError>()) {
                ExitCode::from(EXIT_CONFIG)
            } else if err.chain().any(|e| matches!(e.downcast_ref::<LockError>(), Some(LockError::Busy { .. }))) {
                ExitCode::from(EXIT_BUSY)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
