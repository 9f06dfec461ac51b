//! Named crash points for the crash-consistency tests. Compiled in only with the `failpoints`
//! feature (`make test` builds such a skiff next to the real one); in a normal build `hit` is an
//! empty inline function and no environment variable is read.
//!
//! With the feature, `SKIFF_FAILPOINT=NAME` makes skiff SIGKILL itself when it reaches NAME, as
//! the OOM killer or a crashing shim would: no destructor, no cleanup, whatever was made stays.

/// The points, in the order a `create`, `start` or `delete` reaches them.
pub const POINTS: &[&str] = &[
    "create:state-recorded",
    "create:cgroups-made",
    "create:resources-applied",
    "create:fifo-made",
    "create:init-started",
    "create:hooks-ran",
    "create:init-ready",
    "create:state-created",
    "start:fifo-opened",
    "start:state-running",
    "delete:processes-killed",
    "delete:cgroups-removed",
    "exec:process-started",
];

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    debug_assert!(POINTS.contains(&name), "unknown failpoint {name}");
    if std::env::var("SKIFF_FAILPOINT").is_ok_and(|v| v == name) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
