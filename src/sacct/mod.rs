//! Everything about sacct: the fields we ask for, running it, and parsing what it prints.

pub mod command;
pub mod fields;
pub mod parser;
pub mod stream;
