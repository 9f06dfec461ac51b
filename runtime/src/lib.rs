//! skiff: a strict OCI runtime with runc's command-line contract. `main.rs` only parses the
//! command line; everything else is here.

// `unsafe` lives in `sys/` alone (STYLE.md); the compiler holds everything else to it.
#![deny(unsafe_code)]

pub mod bundle;
pub mod cgroups;
pub mod cli;
pub mod container;
pub mod error;
pub mod failpoint;
pub mod hooks;
pub mod log;
pub mod netdev;
pub mod process;
pub mod resctrl;
pub mod rootfs;
pub mod rootless;
pub mod security;
pub mod state;
#[allow(unsafe_code)]
pub mod sys;
pub mod trace;

/// build.rs's commit for `skiff --version` and the git files it watches, tested here.
#[cfg(test)]
#[path = "../build/git_head.rs"]
mod git_head;
