//! The `slurm-usage` binary: parse the command line, run it, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use slurm_usage::cli::{self, Cli, EXIT_BUSY, EXIT_CONFIG};
use slurm_usage::collect::CollectError;
use slurm_usage::config::ConfigError;
use slurm_usage::logging::error_chain;
use slurm_usage::store::lock::LockError;

fn main() -> ExitCode {
    // Before anything allocates much or starts a thread: every command gets the allocator
    // settings the daemon relies on (unless the environment sets them).
    slurm_usage::heap::tune_allocator();
    let cli = Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("slurm-usage: error: {}", error_chain(&err));
            if err.chain().any(|e| e.is::<ConfigError>()) {
                ExitCode::from(EXIT_CONFIG)
            } else if err.chain().any(is_busy) {
                ExitCode::from(EXIT_BUSY)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Another collector holds the data dir (exit 75), however the error was wrapped.
fn is_busy(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(e.downcast_ref::<LockError>(), Some(LockError::Busy { .. }))
        || matches!(
            e.downcast_ref::<CollectError>(),
            Some(CollectError::Lock(LockError::Busy { .. }))
        )
}
