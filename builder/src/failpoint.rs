//! Named crash points for the store's crash-consistency tests. Compiled in only with the
//! `failpoints` feature (`make failpoints` builds such a slipway at target/failpoints/slipway);
//! in a normal build `hit` is an empty inline function and no environment variable is read.
//!
//! With the feature, `SLIPWAY_FAILPOINT=NAME` makes slipway SIGKILL itself when it reaches NAME
//! (as skiff's runtime/src/failpoint.rs): no destructor, no cleanup, whatever was written stays.

/// The points, in the order a build that names its image reaches them.
pub const POINTS: &[&str] = &[
    // a layer snapshot (or a fetched context) whole and synced in the temp space, not yet
    // renamed into its place in the store (store/tree.rs)
    "tree:synced",
    // the tree renamed into its place, its parent directory not yet synced
    "tree:published",
    // blobs written into the staging directory, none synced or linked into blobs/ yet
    "store:blobs-staged",
    // every staged blob synced and linked into blobs/, index.json not yet rewritten
    "store:blobs-committed",
];

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    debug_assert!(POINTS.contains(&name), "unknown failpoint {name}");
    if std::env::var("SLIPWAY_FAILPOINT").is_ok_and(|v| v == name) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
