//! slipway: a Dockerfile builder writing OCI images, running RUN steps through an OCI runtime CLI.

pub mod context;
pub mod dockerfile;
pub mod dockerignore;
pub mod glob;
pub mod instructions;
pub mod layer;
pub mod rootfs;
pub mod store;
pub mod sys;
