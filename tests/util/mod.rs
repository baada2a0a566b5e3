//! Shared helpers of the integration tests, one module per kind of thing.
//!
//! Each test target compiles this module and uses only part of it, hence the `allow`: an
//! item (or re-export) one target leaves unused is used by another.

#![allow(dead_code, unused_imports)]

pub mod archive;
pub mod bin;
pub mod daemon;
pub mod disk;
pub mod env;
pub mod host;
pub mod kills;
pub mod s3;
pub mod sacct_lines;

pub use archive::*;
pub use bin::*;
pub use daemon::*;
pub use disk::*;
pub use env::*;
pub use host::*;
pub use kills::*;
pub use s3::*;
pub use sacct_lines::*;
