//! Visible skips. A test that cannot check what it names on this host (a missing controller,
//! scheduler, device or engine, or a runtime that lacks the feature) calls [`skip`] and returns
//! before it creates anything. libtest still prints such a test as `ok`, so the reason also goes
//! to the skip log, and `make test` prints every skip with its reason at the end
//! (`scripts/test-skips.sh`). It must not be used for a failure: a skip says "not checked here".

use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;

/// The skip log: `$SKIFF_SKIP_LOG`, else `target/test-skips.log` in the workspace.
pub fn log_path() -> PathBuf {
    match std::env::var_os("SKIFF_SKIP_LOG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::workspace_dir().join("target/test-skips.log"),
    }
}

/// The test binary's name without cargo's hash (`resources-0123abcd` -> `resources`).
fn binary_name() -> String {
    let exe = std::env::current_exe().ok();
    let stem = exe.as_deref().and_then(|p| p.file_stem()).map(|s| s.to_string_lossy().into_owned());
    let stem = stem.unwrap_or_else(|| "?".into());
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name.to_string(),
        _ => stem,
    }
}

/// Records that the calling test checks nothing (or, for a table row, that one row is not
/// checked) on this host, and why. The caller returns right after.
pub fn skip(reason: impl Display) {
    // libtest names each test's thread after the test
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    let line = format!("{}::{test}\t{reason}\n", binary_name());
    eprintln!("skipped: {reason}");
    let path = log_path();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // One write(2) of one line with O_APPEND: lines of concurrent test processes do not interleave.
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&path);
    match file.and_then(|mut f| f.write_all(line.as_bytes())) {
        Ok(()) => {}
        Err(e) => panic!("record the skip in {}: {e}", path.display()),
    }
}
