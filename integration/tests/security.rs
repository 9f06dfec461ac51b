//! The container boundary, attacked from the outside-in: a seccomp listener answering the
//! container's calls, the runtime binary reached through /proc/PID/exe, host fds and a cwd
//! through them, symlinked mount destinations, masked paths undone from inside, capabilities
//! that must really be gone, and the 1.2 process attributes (personality, scheduler, I/O
//! priority, exec CPU affinity).

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use integration::{Bundle, Runtime};
use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
use serde_json::{json, Value};

// ---- seccomp user notification ----

/// A seccomp agent: accepts `connections` connections on `path`; for each, takes the state JSON
/// and the notify fd, and answers every notified call with EXDEV until the container is gone.
/// Returns the states it received.
fn spawn_listener(path: &Path, connections: usize) -> std::thread::JoinHandle<Vec<Value>> {
    let listener = UnixListener::bind(path).expect("bind the seccomp listener");
    std::thread::spawn(move || {
        let mut states = Vec::new();
        for _ in 0..connections {
            let (sock, _) = listener.accept().expect("accept");
            let (state, fd) = receive_state(&sock);
            states.push(state);
            // One agent thread per fd, as a real agent would; it ends when the fd's filter dies.
            std::thread::spawn(move || {
                while let Ok(req) = ScmpNotifReq::receive(fd.as_raw_fd()) {
                    let resp = ScmpNotifResp::new_error(req.id, -libc::EXDEV, ScmpNotifRespFlags::empty());
                    let _ = resp.respond(fd.as_raw_fd());
                }
            });
        }
        states
    })
}

fn receive_state(sock: &std::os::unix::net::UnixStream) -> (Value, OwnedFd) {
    let (bytes, fd) = integration::console::receive_with_fd(sock);
    (serde_json::from_slice(&bytes).expect("the seccomp state is JSON"), fd)
}

fn notify_profile(listener: &Path) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": listener,
        "listenerMetadata": "agent-metadata",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })
}

#[test]
fn a_seccomp_listener_gets_the_notify_fd_and_answers_the_container_s_calls() {
    for nnp in [true, false] {
        let rt = Runtime::new();
        let sock = rt.scratch().join("agent.sock");
        let agent = spawn_listener(&sock, 1);
        let mut b = Bundle::new();
        b.edit(|c| {
            c["linux"]["seccomp"] = notify_profile(&sock);
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["root"]["readonly"] = json!(false);
        })
        .sh("mkdir /made 2>&1; echo rc=$?");
        let out = rt.run(&b);
        out.assert_success();
        // The agent's answer, EXDEV, is what mkdir saw; without the agent it would have succeeded.
        assert!(out.stdout.contains("ross-device link"), "nnp={nnp}: {out}");
        assert!(out.stdout.contains("rc=1"), "nnp={nnp}: {out}");
        assert!(!b.rootfs().join("made").exists());
        let states = agent.join().expect("agent thread");
        let s = &states[0];
        assert_eq!(s["fds"], json!(["seccompFd"]), "{s}");
        assert_eq!(s["metadata"], "agent-metadata", "{s}");
        assert_eq!(s["state"]["status"], "creating", "{s}");
        assert!(s["pid"].as_i64().unwrap_or(0) > 0, "{s}");
        assert_eq!(s["pid"], s["state"]["pid"], "{s}");
        assert!(s["state"]["id"].is_string(), "{s}");
    }
}

#[test]
fn exec_hands_the_new_process_s_notify_fd_to_the_listener() {
    let rt = Runtime::new();
    let sock = rt.scratch().join("agent.sock");
    let agent = spawn_listener(&sock, 2);
    let mut b = Bundle::new();
    b.edit(|c| {
        c["linux"]["seccomp"] = notify_profile(&sock);
        c["root"]["readonly"] = json!(false);
    })
    .args(&["sleep", "60"]);
    let id = rt.create_and_start(&b);
    let out = rt.exec(&["exec", &id, "sh", "-c", "mkdir /by-exec 2>&1; echo rc=$?"]);
    out.assert_success();
    assert!(out.stdout.contains("ross-device link"), "{out}");
    let init = rt.pid(&id);
    rt.delete_force(&id).assert_success();
    let states = agent.join().expect("agent thread");
    assert_eq!(states.len(), 2);
    assert_eq!(states[1]["state"]["pid"], json!(init), "{}", states[1]);
    assert_ne!(states[1]["pid"], json!(init), "the exec'd process, not the init: {}", states[1]);
}

#[test]
fn notify_without_a_listener_or_on_write_is_refused_naming_the_field() {
    let rt = Runtime::new();
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.listenerPath",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x.sock",
                "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.syscalls[0].action",
        ),
        (json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x.sock"}), "linux.seccomp.defaultAction"),
    ];
    for (profile, field) in cases {
        let mut b = Bundle::new();
        b.edit(|c| c["linux"]["seccomp"] = profile.clone()).args(&["true"]);
        let id = rt.new_id();
        let out = rt.create(&id, &b);
        out.assert_failure();
        if !integration::runtime_is_runc() {
            out.assert_stderr_contains(field);
        }
        assert!(rt.list_ids().is_empty(), "{field}: a refused create left {:?}", rt.list_ids());
    }
}

// ---- escape defences ----

/// What skiff's processes inside a container run from (see runtime/src/security/selfexe.rs).
#[derive(Debug, Clone, Copy, PartialEq)]
enum ExeCopy {
    /// The binary through a detached read-only overlayfs (runc 1.2's way).
    Overlay,
    /// A sealed memfd copy (the fallback), with or without F_SEAL_WRITE.
    Memfd { write_seal: bool },
}

#[test]
fn the_runtime_binary_cannot_be_rewritten_through_proc_pid_exe() {
    // skiff runs from a read-only overlay of its directory where the kernel has overlayfs.
    let overlay = std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.contains("\toverlay\n"));
    let expect = if overlay { ExeCopy::Overlay } else { ExeCopy::Memfd { write_seal: true } };
    assert_exe_cannot_be_rewritten(integration::runtime_path(), None, expect);
}

#[test]
fn the_runtime_copy_is_sealed_where_the_overlay_is_refused() {
    // Rootless skiff (or a kernel without overlayfs) cannot mount the overlay: a sealed memfd
    // copy then. The failpoints build makes the mount fail always.
    let Some(bin) = integration::failpoint_skiff() else { return };
    assert_exe_cannot_be_rewritten(bin, Some("exe-overlay-refused"), ExeCopy::Memfd { write_seal: true });
}

#[test]
fn the_runtime_copy_stays_unwritable_when_the_kernel_keeps_its_pages_busy() {
    // F_SEAL_WRITE sometimes fails with EBUSY under load (once in a thousand creates in CI);
    // skiff then keeps F_SEAL_FUTURE_WRITE. The failpoints build makes F_SEAL_WRITE fail always.
    let Some(bin) = integration::failpoint_skiff() else { return };
    assert_exe_cannot_be_rewritten(
        bin,
        Some("exe-overlay-refused,seal-write-busy"),
        ExeCopy::Memfd { write_seal: false },
    );
}

/// CVE-2019-5736: a container process opens /proc/PID/exe of the runtime code running in the
/// container (here the init, blocked before its execve) and, once the runtime is gone, writes
/// through that handle. The test runs a copy of `binary` so a failure cannot harm the real one.
fn assert_exe_cannot_be_rewritten(binary: std::path::PathBuf, fault: Option<&str>, expect: ExeCopy) {
    let keep = tempfile::tempdir_in("/tmp").expect("tempdir");
    let copy = keep.path().join("runtime-copy");
    std::fs::copy(binary, &copy).expect("copy the runtime");
    let original = std::fs::read(&copy).expect("read the copy");
    let rt = Runtime::with_binary(copy.clone());
    let mut b = Bundle::new();
    b.args(&["true"]);
    let id = rt.new_id();
    let mut create = rt.command(&["create", "--bundle", b.path_str(), &id]);
    if let Some(fault) = fault {
        create.env("SKIFF_FAULT", fault);
    }
    rt.exec_cmd(create, None).assert_success();
    let pid = rt.pid(&id);
    let exe = format!("/proc/{pid}/exe");
    let handle = std::fs::File::options().read(true).open(&exe).expect("open /proc/PID/exe");
    rt.delete_force(&id).assert_success();
    drop(rt);
    let through = format!("/proc/self/fd/{}", handle.as_raw_fd());
    let wrote = std::fs::OpenOptions::new()
        .write(true)
        .open(&through)
        .and_then(|mut w| std::io::Write::write_all(&mut w, b"\x7fELF overwritten from a container"));
    assert!(wrote.is_err(), "a write through {exe} went through");
    assert!(std::fs::read(&copy).expect("read the copy") == original, "the runtime binary was rewritten through {exe}");
    let mut head = [0u8; 4];
    let mut h = handle;
    h.read_exact(&mut head).expect("read the exe handle");
    assert_eq!(&head, b"\x7fELF");
    if integration::runtime_is_runc() {
        return;
    }
    // And what the container saw was not the binary on disk at all, but an unwritable copy.
    let fs = nix::sys::statfs::fstatfs(&h).expect("fstatfs the exe handle");
    let on_ro_overlay = fs.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC
        && fs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    let seals = nix::fcntl::fcntl(h.as_raw_fd(), nix::fcntl::FcntlArg::F_GET_SEALS)
        .map(nix::fcntl::SealFlag::from_bits_truncate);
    match expect {
        ExeCopy::Overlay => {
            assert!(on_ro_overlay, "{exe} is not on a read-only overlayfs: {:?}", fs.filesystem_type());
            // The overlay shows the binary on disk (same bytes), through a mount nobody can write.
            assert!(seals.is_err(), "{exe} is a memfd: {seals:?}");
        }
        ExeCopy::Memfd { write_seal } => {
            use nix::fcntl::SealFlag as S;
            let seals = seals.expect("F_GET_SEALS of the exe handle (a memfd)");
            let want = S::F_SEAL_SEAL | S::F_SEAL_SHRINK | S::F_SEAL_GROW | S::F_SEAL_FUTURE_WRITE;
            assert!(seals.contains(want), "seals of the copy: {seals:?}");
            assert_eq!(seals.contains(S::F_SEAL_WRITE), write_seal, "seals of the copy: {seals:?}");
        }
    }
}

#[test]
fn no_host_fd_reaches_the_container() {
    // The container's process, once it runs, holds exactly stdio: the runtime's own fds (sync
    // channel, state dir, log, the caller's extra fds) are all gone at its execve.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "60"]);
    let id = rt.new_id();
    let log = std::fs::File::create(rt.scratch().join("extra-fd")).unwrap();
    let mut cmd = rt.command(&["create", "--bundle", b.path_str(), &id]);
    // An fd the caller leaks into the runtime (not close-on-exec), as a careless engine might.
    let extra = nix::unistd::dup(log.as_raw_fd()).unwrap();
    cmd.stdin(std::process::Stdio::null());
    rt.exec_cmd(cmd, None).assert_success();
    let _ = nix::unistd::close(extra);
    rt.start(&id).assert_success();
    let pid = rt.pid(&id);
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    fds.sort_unstable();
    rt.delete_force(&id).assert_success();
    assert_eq!(fds, [0, 1, 2], "fds open in the container's process");
}

#[test]
fn a_cwd_through_a_leaked_fd_cannot_leave_the_root() {
    // CVE-2024-21626: process.cwd = /proc/self/fd/N names whatever the runtime's init still has
    // open at N when it chdirs. Every N either fails to start or lands inside the container.
    let rt = Runtime::new();
    for n in 3..16 {
        let mut b = Bundle::new();
        b.edit(|c| c["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"))).sh("pwd -P; true");
        let out = rt.run(&b);
        let cwd = format!("/proc/self/fd/{n}");
        if out.success() {
            // `pwd -P` is getcwd(3): a directory outside the root reads "(unreachable)/...".
            let got = out.stdout.trim();
            assert!(got.starts_with('/') && !got.contains("unreachable"), "fd {n}: cwd outside the root: {out}");
        } else {
            // A refusal must be about the cwd, not some other failure that would hide a leak.
            assert!(out.stderr.contains(&cwd), "fd {n}: the error does not name process.cwd {cwd}: {out}");
        }
    }
    assert!(rt.list_ids().is_empty());
}

#[test]
fn a_symlinked_mount_destination_stays_inside_the_rootfs() {
    // The image's /data points at a host path; the mount must land on that path inside the rootfs.
    let host = tempfile::tempdir_in("/tmp").expect("tempdir");
    std::fs::write(host.path().join("host-file"), "host").expect("write");
    let rt = Runtime::new();
    let mut b = Bundle::new();
    std::os::unix::fs::symlink(host.path(), b.rootfs().join("data")).expect("symlink");
    let inside = host.path().display().to_string();
    b.mount(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]})).sh(&format!(
        "grep -c ' {inside} tmpfs ' /proc/mounts; ls -A /data; echo written > /data/new; cat {inside}/new"
    ));
    let out = rt.run(&b);
    out.assert_success();
    assert_eq!(out.stdout, "1\nwritten\n", "{out}");
    // The host directory is untouched; the mount point was made inside the rootfs.
    let names: Vec<_> = std::fs::read_dir(host.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["host-file"]);
    assert!(b.rootfs().join(host.path().strip_prefix("/").unwrap()).is_dir());
}

#[test]
fn proc_and_sys_are_not_mounted_over_a_symlink() {
    let rt = Runtime::new();
    for target in ["proc", "sys"] {
        let mut b = Bundle::new();
        let dir = b.rootfs().join(target);
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir_all(b.rootfs().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("/elsewhere", &dir).unwrap();
        b.args(&["true"]);
        let id = rt.new_id();
        let out = rt.create(&id, &b);
        out.assert_failure();
        if !integration::runtime_is_runc() {
            out.assert_stderr_contains(&format!("/{target}"));
        }
        assert!(std::fs::read_dir(b.rootfs().join("elsewhere")).unwrap().next().is_none());
        assert!(rt.list_ids().is_empty());
    }
}

#[test]
fn masked_and_readonly_paths_cannot_be_undone_from_inside() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("umount /proc/timer_list 2>/dev/null && echo unmasked; \
         mount -o remount,rw /proc/sys 2>/dev/null && echo remounted; \
         umount /proc/sys 2>/dev/null && echo unmounted; \
         wc -c < /proc/timer_list; echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo wrote; echo end");
    let out = rt.run_ok(&b);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "end"], "{out}");
}

// ---- capabilities really gone ----

/// Runs `script` as root with exactly `caps` in every set (root filesystem writable).
fn with_caps(caps: &[&str], script: &str) -> String {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        let set = json!(caps);
        c["process"]["capabilities"] =
            json!({"bounding": set, "effective": set, "permitted": set, "inheritable": set, "ambient": set});
        c["root"]["readonly"] = json!(false);
    })
    .sh(script);
    rt.run_ok(&b)
}

#[test]
fn a_dropped_capability_really_fails_and_a_kept_one_works() {
    let cases = [
        ("CAP_CHOWN", "touch /f; chown 1:1 /f 2>/dev/null && echo ok || echo denied"),
        ("CAP_MKNOD", "mknod /n c 1 3 2>/dev/null && echo ok || echo denied"),
        ("CAP_NET_RAW", "ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1 && echo ok || echo denied"),
        ("CAP_DAC_OVERRIDE", "touch /g; chmod 000 /g; echo x 2>/dev/null > /g && echo ok || echo denied"),
    ];
    for (cap, script) in cases {
        assert_eq!(with_caps(&[cap], script), "ok\n", "with {cap}");
        assert_eq!(with_caps(&["CAP_KILL"], script), "denied\n", "without {cap}");
    }
}

fn cap_masks(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, h)| (n.to_string(), u64::from_str_radix(h.trim(), 16).expect("hex")))
        .collect()
}

#[test]
fn an_empty_capability_config_leaves_every_set_empty() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["process"]["capabilities"] = json!({})).sh("grep -E '^Cap' /proc/self/status");
    for (name, mask) in cap_masks(&rt.run_ok(&b)) {
        assert_eq!(mask, 0, "{name}");
    }
}

#[test]
fn a_capability_the_host_withholds_fails_create_naming_it() {
    // runtime-tools' process_capabilities asks for every capability; this host gives skiff all
    // but CAP_SYS_RESOURCE (bit 24). capset's bare EPERM did not say which one.
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .expect("CapBnd in /proc/self/status");
    if bounding & (1 << 24) != 0 {
        integration::skip("this host gives the tests CAP_SYS_RESOURCE");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["true"]).edit(|c| {
        for set in ["bounding", "effective", "permitted", "inheritable"] {
            c["process"]["capabilities"][set] = json!(["CAP_CHOWN", "CAP_SYS_RESOURCE"]);
        }
    });
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    // runc: "unable to apply caps: operation not permitted"
    out.assert_failure();
    assert_eq!(rt.list_ids(), Vec::<String>::new());
    if !integration::runtime_is_runc() {
        out.assert_stderr_contains("process.capabilities.inheritable: CAP_SYS_RESOURCE cannot be granted");
    }
}

#[test]
fn a_non_root_user_keeps_its_ambient_capabilities() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let set = json!(["CAP_NET_BIND_SERVICE"]);
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] =
            json!({"bounding": set, "effective": set, "permitted": set, "inheritable": set, "ambient": set});
    })
    .sh("id -u; grep -E '^Cap' /proc/self/status");
    let out = rt.run_ok(&b);
    assert!(out.starts_with("1000\n"), "{out}");
    let masks = cap_masks(&out);
    assert_eq!(masks.len(), 5, "{out}");
    for (name, mask) in masks {
        assert_eq!(mask, 1 << 10, "{name} for uid 1000");
    }
}

// ---- runtime-spec 1.2 process attributes ----

#[test]
fn personality_linux32_makes_uname_report_a_32_bit_machine() {
    if integration::runtime_is_runc() {
        integration::skip("runc 1.1 predates runtime-spec 1.2's linux.personality");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["personality"] = json!({"domain": "LINUX32"})).args(&["uname", "-m"]);
    assert_eq!(rt.run_ok(&b), "i686\n");
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["personality"] = json!({"domain": "LINUX"})).args(&["uname", "-m"]);
    assert_eq!(rt.run_ok(&b), "x86_64\n");
}

/// Fields of /proc/self/stat after the command name, as the container's shell sees them.
fn stat_fields(out: &str) -> Vec<String> {
    let rest = out.rsplit_once(") ").expect("stat line").1;
    rest.split_whitespace().map(String::from).collect()
}

#[test]
fn scheduler_sets_the_policy_and_nice_value() {
    if integration::runtime_is_runc() {
        integration::skip("runc 1.1 predates runtime-spec 1.2's process.scheduler");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7})).sh("cat /proc/self/stat");
    let f = stat_fields(&rt.run_ok(&b));
    // After "(comm) ": field 3 is f[0]; nice is field 19, policy field 41.
    assert_eq!(f[19 - 3], "7", "nice");
    assert_eq!(f[41 - 3], "3", "policy SCHED_BATCH");
}

#[test]
fn io_priority_is_applied_to_the_container_process() {
    if integration::runtime_is_runc() {
        integration::skip("runc 1.1 predates runtime-spec 1.2's process.ioPriority");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6})).args(&["sleep", "60"]);
    let id = rt.new_id();
    rt.create_ok(&id, &b);
    let pid = rt.pid(&id);
    let out = std::process::Command::new("ionice").arg("-p").arg(pid.to_string()).output().expect("run ionice");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    rt.delete_force(&id).assert_success();
    assert_eq!(text.trim(), "best-effort: prio 6");
    let mut b = Bundle::new();
    b.edit(|c| c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 9})).args(&["true"]);
    let out = rt.create(&rt.new_id(), &b);
    out.assert_failure();
    if !integration::runtime_is_runc() {
        out.assert_stderr_contains("process.ioPriority.priority");
    }
}

#[test]
fn exec_cpu_affinity_final_pins_the_exec_process() {
    if integration::runtime_is_runc() {
        integration::skip("runc 1.1 predates runtime-spec 1.2's process.execCPUAffinity");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "60"]);
    let id = rt.create_and_start(&b);
    let mut process = b.config()["process"].clone();
    process["args"] = json!(["sh", "-c", "grep Cpus_allowed_list /proc/self/status"]);
    process["execCPUAffinity"] = json!({"initial": "0", "final": "0"});
    let file = rt.scratch().join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let out = rt.exec(&["exec".as_ref(), "--process".as_ref(), file.as_os_str(), id.as_ref()]);
    rt.delete_force(&id).assert_success();
    out.assert_success();
    assert_eq!(out.stdout.split_whitespace().collect::<Vec<_>>(), ["Cpus_allowed_list:", "0"], "{out}");
}
