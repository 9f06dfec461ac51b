//! Shared helpers for the black-box tests.
//!
//! The OCI runtime under test is only ever driven through its command line (`$OCI_RUNTIME`); nothing
//! here reads its state files or links its code, so the same tests run against runc and skiff.

pub mod azurite;
pub mod buildkit;
pub mod bundle;
pub mod console;
pub mod docker_cli;
pub mod engines;
pub mod entra;
pub mod estargz;
pub mod gha;
pub mod host;
pub mod registry;
pub mod rootless;
pub mod runtime;
pub mod s3;
pub mod skip;
pub mod slipway;
pub mod sources;

pub use bundle::Bundle;
pub use runtime::{Output, Runtime};
pub use skip::skip;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// The cargo workspace this crate lives in.
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The runtime binary under test: `$OCI_RUNTIME`, else the workspace's release build of skiff.
pub fn runtime_path() -> PathBuf {
    match std::env::var_os("OCI_RUNTIME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_dir().join("target/release/skiff"),
    }
}

/// True when the harness drives the runtime with `--systemd-cgroup` and gives bundles a systemd
/// cgroupsPath (`SKIFF_IT_SYSTEMD_CGROUP=1`, set by `make test-systemd`'s runs of the driver): the
/// containers' cgroups are then scope units that systemd makes.
pub fn systemd_cgroup() -> bool {
    std::env::var_os("SKIFF_IT_SYSTEMD_CGROUP").is_some_and(|v| v == "1")
}

/// True when the suite runs against runc (`OCI_RUNTIME=.../runc`): the few tests of things runc
/// 1.1.5 lacks or gets wrong say so and skip, instead of asserting runc's behaviour.
pub fn runtime_is_runc() -> bool {
    runtime_path().file_name().is_some_and(|n| n == "runc")
}

/// skiff built with `--features failpoints` (`make failpoints`, which `make test` runs), for the
/// tests that crash skiff at a named step or inject a kernel fault; None (the test skips) when
/// the suite runs against runc.
pub fn failpoint_skiff() -> Option<PathBuf> {
    if runtime_is_runc() {
        crate::skip("failpoints and injected faults are skiff's own");
        return None;
    }
    let bin = workspace_dir().join("target/failpoints/skiff");
    assert!(bin.exists(), "{} is missing: run `make failpoints` (make test does)", bin.display());
    Some(bin)
}

/// The lowercase hex sha256 of `data` (blob names in image archives).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// How many processes of the host have `root` as their root directory (/proc/PID/root): the
/// processes of a container whose rootfs that is.
pub fn processes_rooted_at(root: &std::path::Path) -> usize {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| std::fs::read_link(e.path().join("root")).is_ok_and(|r| r == root))
        .count()
}

/// A name no other test in any concurrently running test process uses: `<prefix>-<pid>-<n>`.
/// Valid as a container id and as a cgroup directory name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}
