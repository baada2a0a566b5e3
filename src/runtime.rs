//! The async runtime a one-off command (`collect`, `lake sync`, ...) runs on: two workers,
//! like the daemon's, so a command never takes more of the head node than the service does.

use anyhow::{Context as _, Result};

/// A new runtime for one command.
pub fn for_command() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
