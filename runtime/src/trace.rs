//! Timestamps of each step of a container's start, for `make bench`'s breakdown
//! (scripts/bench/phases.c). With `SKIFF_TRACE=FILE` in skiff's environment, every process of a
//! `create`/`run` (skiff, the setup process, the init up to its execve) appends one line
//! `EVENT WALL_NS CPU_NS PID` to FILE at each [`point`]: CLOCK_MONOTONIC, the process's CPU time
//! (CLOCK_PROCESS_CPUTIME_ID: it survives execve, starts at 0 in a forked child) and its pid. Without it a point costs one
//! load of an unset cell: no syscall, no allocation.
//!
//! The line is formatted on the stack and written with one write(2) to an O_APPEND file, so a
//! point is safe between fork and exec and lines of concurrent processes never interleave. The
//! file is opened close-on-exec: the container's program never holds it. The variable never
//! reaches the container either (its environment is `process.env`; hooks get their own).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::OnceLock;

static FILE: OnceLock<std::fs::File> = OnceLock::new();

/// Opens the trace file if `SKIFF_TRACE` names one. Called once, first thing in `main`.
pub fn init() {
    let Some(path) = std::env::var_os("SKIFF_TRACE").filter(|p| !p.is_empty()) else { return };
    let opened = std::fs::OpenOptions::new().append(true).create(true).mode(0o644).open(path);
    if let Ok(f) = opened {
        let _ = FILE.set(f);
    }
}

/// Records that `event` happened now.
pub fn point(event: &str) {
    use nix::time::{clock_gettime, ClockId};
    let Some(mut f) = FILE.get() else { return };
    let ns = |clock| clock_gettime(clock).map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64).unwrap_or(0);
    let mut line = [0u8; 128];
    let name = &event.as_bytes()[..event.len().min(40)];
    line[..name.len()].copy_from_slice(name);
    let mut at = name.len();
    for v in [ns(ClockId::CLOCK_MONOTONIC), ns(ClockId::CLOCK_PROCESS_CPUTIME_ID), std::process::id() as u64] {
        line[at] = b' ';
        at += 1 + decimal(v, &mut line[at + 1..]);
    }
    line[at] = b'\n';
    let _ = f.write(&line[..=at]);
}

/// Writes `v` in decimal at the start of `out`; returns the number of digits.
fn decimal(mut v: u64, out: &mut [u8]) -> usize {
    let mut digits = [0u8; 20];
    let mut n = digits.len();
    loop {
        n -= 1;
        digits[n] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let len = digits.len() - n;
    out[..len].copy_from_slice(&digits[n..]);
    len
}
