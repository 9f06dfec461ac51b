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

/// With the feature, `SKIFF_FAULT=NAME[,NAME...]` makes kernel calls act as if they failed the
/// way the kernel sometimes makes them fail, so the path that copes with it is tested:
/// `exe-overlay-refused`, the overlayfs mount of skiff's directory refused (EPERM, as for a
/// rootless skiff), and `seal-write-busy`, F_SEAL_WRITE of the memfd copy refused with EBUSY
/// (see security::selfexe).
#[cfg(feature = "failpoints")]
pub fn fault(name: &str) -> bool {
    std::env::var("SKIFF_FAULT").is_ok_and(|v| v.split(',').any(|f| f == name))
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn fault(_name: &str) -> bool {
    false
}
