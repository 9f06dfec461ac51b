//! The Dockerfile language: `parser` turns text into nodes, `shell` expands words.
//! Neither evaluates instructions.

pub mod parser;
pub mod shell;
