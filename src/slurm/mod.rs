//! Talking to SLURM: the one runner for its commands, and its vocabulary, which the sacct
//! parser, metrics, the model, the reports and the live views share.
//!
//! - [`run`]: start a SLURM command without a shell; timeout and cancellation kill its
//!   process group; stderr kept; errors with hints.
//! - [`units`]: durations, memory sizes and counts as SLURM prints them.
//! - [`tres`]: TRES strings (`cpu=2,mem=100M,gres/gpu=1`) and GRES strings (`gpu:a100:4`).
//! - [`hostlist`]: host lists (`node[001-003]`) expanded to node names.
//! - [`job`]: job ids (steps, array tasks) and job states (base state, final states).
//!
//! Everything but [`run`] is pure: no tokio, no I/O, tested with string literals.

pub mod hostlist;
pub mod job;
pub mod run;
pub mod tres;
pub mod units;
