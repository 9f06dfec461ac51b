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

#[test]
fn every_action_does_what_it_says() {
    // (action, what `sh -c 'mkdir /made'` then reports, whether the directory appears). SIGSYS
    // is 31, so a child killed by it shows as 159; TRACE without a tracer fails with ENOSYS.
    let cases = [
        ("SCMP_ACT_KILL", "after=159", false),
        ("SCMP_ACT_KILL_THREAD", "after=159", false),
        ("SCMP_ACT_KILL_PROCESS", "after=159", false),
        ("SCMP_ACT_TRAP", "after=159", false),
        ("SCMP_ACT_TRACE", "after=1", false),
        ("SCMP_ACT_LOG", "after=0", true),
        ("SCMP_ACT_ERRNO", "after=1", false),
    ];
    for (action, want, made) in cases {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action}]
        });
        let (rt, b) = with_profile(profile, "sh -c 'mkdir /made 2>/dev/null'; echo after=$?", true);
        let out = rt.run(&b);
        assert!(out.stdout.contains(want), "{action}: {out}");
        assert_eq!(b.rootfs().join("made").exists(), made, "{action}");
    }
    // An ALLOW rule in a deny-by-default profile: the listed calls work, the rest get errnoRet.
    let mut allowed: Vec<&str> = DEFAULT_ALLOW.to_vec();
    allowed.extend(["mkdir", "mkdirat"]);
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    });
    let (rt, b) = with_profile(profile, "mkdir /made && rmdir /made 2>&1; echo end", true);
    let out = rt.run(&b);
    assert!(out.stdout.contains("Function not implemented") && out.stdout.contains("end"), "{out}");
    assert!(b.rootfs().join("made").exists());
}

/// What busybox sh, mkdir and echo need to start and print (x86_64); rmdir is not among them.
const DEFAULT_ALLOW: &[&str] = &[
    "execve",
    "brk",
    "arch_prctl",
    "set_tid_address",
    "mmap",
    "munmap",
    "mprotect",
    "read",
    "write",
    "writev",
    "open",
    "openat",
    "close",
    "fstat",
    "newfstatat",
    "stat",
    "lstat",
    "getpid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "ioctl",
    "fcntl",
    "dup2",
    "dup3",
    "wait4",
    "clone",
    "fork",
    "vfork",
    "exit",
    "exit_group",
    "uname",
    "getcwd",
    "chdir",
    "prctl",
    "sigaltstack",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "getrandom",
    "lseek",
    "pipe",
    "pipe2",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "getdents64",
    "umask",
    "setpgid",
    "getpgrp",
    "gettid",
    "futex",
    "poll",
    "ppoll",
];

#[test]
fn a_profile_that_refuses_getcwd_still_starts_the_container() {
    // runtime-tools' linux_seccomp: the runtime's own cwd check must not depend on getcwd.
    for nnp in [false, true] {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
        let (rt, b) = with_profile(profile, "echo ran", nnp);
        assert_eq!(rt.run_ok(&b), "ran\n", "nnp={nnp}");
    }
}

#[test]
fn every_comparison_operator_matches_exactly() {
    // busybox linux32 calls personality(8), linux64 personality(0). Each rule refuses
    // personality when its condition holds (errno 1: "Operation not permitted").
    let script = "linux32 true 2>/dev/null; echo 32=$?; linux64 true 2>/dev/null; echo 64=$?";
    let cases = [
        (json!([{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]), "32=1 64=0"),
        (json!([{"index": 0, "value": 8, "op": "SCMP_CMP_NE"}]), "32=0 64=1"),
        (json!([{"index": 0, "value": 4, "op": "SCMP_CMP_GT"}]), "32=1 64=0"),
        (json!([{"index": 0, "value": 8, "op": "SCMP_CMP_GE"}]), "32=1 64=0"),
        (json!([{"index": 0, "value": 4, "op": "SCMP_CMP_LT"}]), "32=0 64=1"),
        (json!([{"index": 0, "value": 0, "op": "SCMP_CMP_LE"}]), "32=0 64=1"),
        (json!([{"index": 0, "value": 8, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]), "32=1 64=0"),
        // Two conditions on one argument: one rule each, so either refuses (runc's behaviour).
        (
            json!([{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]),
            "32=1 64=1",
        ),
    ];
    for (args, want) in cases {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": args}]
        });
        let (rt, b) = with_profile(profile, script, true);
        let out = rt.run_ok(&b);
        assert_eq!(out.split_whitespace().collect::<Vec<_>>().join(" "), want, "{args}");
    }
}
