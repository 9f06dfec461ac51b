//! Timestamps of the phases of a build, for `make bench`'s breakdown of a no-op rebuild
//! (scripts/bench.sh). With `SLIPWAY_TRACE=FILE` in slipway's environment, each [`point`]
//! appends one line `EVENT WALL_NS CPU_NS PID` to FILE: CLOCK_MONOTONIC, the process's CPU time
//! (CLOCK_PROCESS_CPUTIME_ID, all threads) and the pid; the format of skiff's SKIFF_TRACE.
//! Without the variable a point costs one load of an unset cell. It never changes what a build
//! does.

use std::io::Write;
use std::sync::OnceLock;

static FILE: OnceLock<std::fs::File> = OnceLock::new();

/// Opens the trace file if `SLIPWAY_TRACE` names one. Called once, first thing in `main`.
pub fn init() {
    let Some(path) = std::env::var_os("SLIPWAY_TRACE").filter(|p| !p.is_empty()) else { return };
    if let Ok(f) = std::fs::OpenOptions::new().append(true).create(true).open(path) {
        let _ = FILE.set(f);
    }
}

/// Records that `event` happened now.
pub fn point(event: &str) {
    use nix::time::{clock_gettime, ClockId};
    let Some(mut f) = FILE.get() else { return };
    let ns = |clock| clock_gettime(clock).map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64).unwrap_or(0);
    let line = format!(
        "{event} {} {} {}\n",
        ns(ClockId::CLOCK_MONOTONIC),
        ns(ClockId::CLOCK_PROCESS_CPUTIME_ID),
        std::process::id()
    );
    // one write to an O_APPEND file: lines of concurrent builds never interleave
    let _ = f.write(line.as_bytes());
}
