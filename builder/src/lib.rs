//! slipway: a Dockerfile builder writing OCI images, running RUN steps through an OCI runtime CLI.

// `unsafe` lives in `sys/` alone (STYLE.md); the compiler holds everything else to it.
#![deny(unsafe_code)]

pub mod archive;
pub mod attest;
pub mod azblob;
pub mod binfmt;
pub mod build;
pub mod cache;
pub mod cdi;
pub mod chmod;
pub mod cli;
pub mod context;
pub mod convert;
pub mod dockerfile;
pub mod dockerignore;
pub mod epoch;
pub mod estargz;
pub mod exec;
pub mod failpoint;
pub mod fetch;
pub mod gha;
pub mod glob;
pub mod gobool;
pub mod images;
pub mod instructions;
pub mod layer;
pub mod lint;
pub mod named_context;
pub mod netns;
pub mod output;
pub mod plan;
pub mod registry;
pub mod resources;
pub mod retime;
pub mod rootfs;
pub mod runmount;
pub mod runner;
pub mod s3;
pub mod sbom;
pub mod secrets;
pub mod spec;
pub mod store;
pub mod subrequest;
pub mod syntax_pin;
#[allow(unsafe_code)]
pub mod sys;
pub mod trace;
pub mod usage;
pub mod userns;
pub mod vcs;
pub mod wildcard;
