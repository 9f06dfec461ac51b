//! slipway: a Dockerfile builder writing OCI images, running RUN steps through an OCI runtime CLI.

pub mod archive;
pub mod build;
pub mod cache;
pub mod commands;
pub mod context;
pub mod dockerfile;
pub mod dockerignore;
pub mod glob;
pub mod instructions;
pub mod layer;
pub mod rootfs;
pub mod runner;
pub mod spec;
pub mod store;
pub mod sys;
