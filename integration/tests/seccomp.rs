//! `linux.seccomp`, seen from inside the container: blocked calls fail with the configured errno,
//! kill actions kill, argument conditions match exactly, and the filter is really installed.

use integration::{Bundle, Runtime};
use serde_json::{json, Value};

fn with_profile(profile: Value, script: &str, nnp: bool) -> (Runtime, Bundle) {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["linux"]["seccomp"] = profile;
        c["process"]["noNewPrivileges"] = json!(nnp);
        c["root"]["readonly"] = json!(false);
    })
    .sh(script);
    (rt, b)
}

fn errno_profile(errno: u32) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat", "no_such_syscall_anywhere"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}]
    })
}

#[test]
fn a_blocked_syscall_returns_the_configured_errno_and_the_filter_is_mode_2() {
    // EACCES (13) reads "Permission denied"; without the filter mkdir would succeed.
    for nnp in [true, false] {
        let (rt, b) = with_profile(
            errno_profile(13),
            "grep Seccomp: /proc/self/status; mkdir /made 2>&1; ls -d /made 2>&1 || true",
            nnp,
        );
        let out = rt.run(&b);
        out.assert_success();
        assert!(out.stdout.contains("Seccomp:\t2"), "nnp={nnp}: {out}");
        assert!(out.stdout.contains("Permission denied"), "nnp={nnp}: {out}");
        assert!(!b.rootfs().join("made").exists(), "nnp={nnp}: mkdir went through");
    }
    // A different errno shows up as a different message: ENOSPC (28).
    let (rt, b) = with_profile(errno_profile(28), "mkdir /made 2>&1 || true", true);
    assert!(rt.run_ok(&b).contains("No space left on device"));
}

#[test]
fn kill_process_kills_the_caller() {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]
    });
    // The child shell runs busybox's mkdir in-process and dies of SIGSYS at the call.
    let (rt, b) = with_profile(profile, "echo before; sh -c 'mkdir /made'; echo after=$?", true);
    let out = rt.run(&b);
    assert!(out.stdout.contains("before"), "{out}");
    // SIGSYS is 31: the child died of it, the parent shell reports 128+31.
    assert!(out.stdout.contains("after=159"), "{out}");
    assert!(!b.rootfs().join("made").exists());
}

#[test]
fn argument_conditions_match_exactly() {
    // personality(PER_LINUX32=8) is refused, personality(0xffffffff) (a query) is not.
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]
    });
    let script = "linux32 uname -m 2>&1; echo linux32=$?; uname -m";
    let (rt, b) = with_profile(profile, script, true);
    let out = rt.run_ok(&b);
    assert!(out.contains("linux32=1"), "personality(8) should fail: {out}");
    assert!(out.trim_end().ends_with("x86_64"), "{out}");
    // Without the rule linux32 works, so the test can tell the difference.
    let (rt, b) = with_profile(json!({"defaultAction": "SCMP_ACT_ALLOW"}), script, true);
    let out = rt.run_ok(&b);
    assert!(out.contains("linux32=0") && out.contains("i686"), "{out}");
}

#[test]
fn a_malformed_profile_names_the_json_path_and_leaves_nothing() {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}, {"names": ["rmdir"], "action": "SCMP_ACT_FOO"}]
    });
    let (rt, b) = with_profile(profile, "true", true);
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    out.assert_failure();
    // runc says `unknown action "SCMP_ACT_FOO"`; both name the bad value.
    assert!(out.stderr.contains("SCMP_ACT_FOO"), "{out}");
    assert_eq!(rt.list_ids(), Vec::<String>::new());
}

#[test]
fn a_profile_that_refuses_close_range_still_runs_without_no_new_privs() {
    // Without no_new_privs the filter is loaded before privileges drop, so the runtime's own last
    // steps run under it; older profiles (docker's before 2021) do not know close_range.
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    let (rt, b) = with_profile(profile, "echo ran", false);
    assert_eq!(rt.run_ok(&b), "ran\n");
}
