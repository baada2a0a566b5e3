//! Shared helpers of the integration tests, one module per kind of thing.
//!
//! Each test target compiles this module and uses part of it, hence `allow(dead_code)`.

#![allow(dead_code, unused_imports)]

pub mod archive;
pub mod bin;
pub mod daemon;
pub mod disk;
pub mod env;
pub mod host;
pub mod kills;
pub mod sacct_lines;

pub use archive::*;
pub use bin::*;
pub use daemon::*;
pub use disk::*;
pub use env::*;
pub use host::*;
pub use kills::*;
pub use sacct_lines::*;
