//! config.json fields as the container's process sees them: each test sets a field, runs a
//! command inside, and checks its output.

use integration::host::TmpfsMount;
use integration::{Bundle, Runtime};
use serde_json::{json, Value};

/// Runs `script` with `sh -c` in a default bundle edited by `edit`; returns stdout.
#[track_caller]
fn sh_in(edit: impl FnOnce(&mut Value), script: &str) -> String {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(edit).sh(script);
    rt.run_ok(&b)
}

/// Lines of output, trimmed.
fn lines(s: &str) -> Vec<&str> {
    s.lines().map(str::trim).collect()
}

// ---- process ----

#[test]
fn hostname_comes_from_the_config() {
    let out = sh_in(|c| c["hostname"] = json!("skiff-box"), "hostname");
    assert_eq!(out, "skiff-box\n");
}

#[test]
fn env_is_exactly_process_env() {
    let out = sh_in(
        |c| c["process"]["env"] = json!(["PATH=/bin:/sbin", "FOO=bar baz", "EMPTY=", "HOME=/root"]),
        "echo \"[$FOO]\"; echo \"[${EMPTY-unset}]\"; echo \"$PATH\"; env | grep -c TERM || true",
    );
    assert_eq!(lines(&out), ["[bar baz]", "[]", "/bin:/sbin", "0"]);
}

#[test]
fn cwd_is_process_cwd() {
    let out = sh_in(|c| c["process"]["cwd"] = json!("/tmp"), "pwd");
    assert_eq!(out, "/tmp\n");
}

#[test]
fn user_uid_gid_and_additional_gids_are_applied() {
    let out = sh_in(
        |c| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20]});
        },
        "id -u; id -g; grep '^Groups:' /proc/self/status; id -un",
    );
    let l = lines(&out);
    assert_eq!(l[0], "1000");
    assert_eq!(l[1], "1000");
    // The supplementary groups are exactly additionalGids.
    assert_eq!(l[2].trim_start_matches("Groups:").split_whitespace().collect::<Vec<_>>(), ["10", "20"]);
    assert_eq!(l[3], "user", "uid 1000 should resolve through the rootfs /etc/passwd");
}

#[test]
fn root_user_has_no_supplementary_groups_by_default() {
    let out = sh_in(|_| {}, "id -u; id -g; grep '^Groups:' /proc/self/status");
    let l = lines(&out);
    assert_eq!(l[..2], ["0", "0"]);
    assert_eq!(l[2].trim_start_matches("Groups:").trim(), "");
}

#[test]
fn umask_is_applied_when_the_spec_has_one() {
    let out = sh_in(|c| c["process"]["user"]["umask"] = json!(0o027), "umask");
    assert_eq!(out.trim(), "0027");
}

#[test]
fn rlimits_set_soft_and_hard_limits() {
    let out = sh_in(
        |c| {
            c["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "soft": 1500, "hard": 2048},
                {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400}
            ])
        },
        "ulimit -n; ulimit -Hn; ulimit -u; ulimit -Hu",
    );
    assert_eq!(lines(&out), ["1500", "2048", "300", "400"]);
}

#[test]
fn no_new_privileges_sets_the_no_new_privs_bit() {
    let out = sh_in(|c| c["process"]["noNewPrivileges"] = json!(true), "grep NoNewPrivs /proc/self/status");
    assert_eq!(out.split_whitespace().nth(1), Some("1"), "{out}");
}

#[test]
fn no_new_privileges_false_leaves_the_bit_clear() {
    // The bit is inherited: only meaningful when this test process does not have it already.
    let ours = integration::host::status_field(std::process::id() as i32, "NoNewPrivs");
    if ours.as_deref() != Some("0") {
        integration::skip(format!("the test process itself has NoNewPrivs={ours:?}"));
        return;
    }
    let out = sh_in(|c| c["process"]["noNewPrivileges"] = json!(false), "grep NoNewPrivs /proc/self/status");
    assert_eq!(out.split_whitespace().nth(1), Some("0"), "{out}");
}

#[test]
fn oom_score_adj_is_applied() {
    let out = sh_in(|c| c["process"]["oomScoreAdj"] = json!(123), "cat /proc/self/oom_score_adj");
    assert_eq!(out.trim(), "123");
}

#[test]
fn capabilities_are_the_configured_sets() {
    // runc's template grants AUDIT_WRITE(29), KILL(5), NET_BIND_SERVICE(10) in the bounding,
    // effective, permitted and ambient sets. The kernel only keeps an ambient capability that is
    // also inheritable, and the template has no inheritable set, so CapAmb ends up empty.
    let want = (1u64 << 29) | (1 << 5) | (1 << 10);
    let out = sh_in(|_| {}, "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status");
    let mut seen = Vec::new();
    for line in out.lines() {
        let (name, hex) = line.split_once(':').expect("Cap line");
        let got = u64::from_str_radix(hex.trim(), 16).expect("hex mask");
        let want = if matches!(name, "CapInh" | "CapAmb") { 0 } else { want };
        assert_eq!(got, want, "{name} is {got:#x}, want {want:#x}");
        seen.push(name);
    }
    assert_eq!(seen, ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]);
}

#[test]
fn capabilities_with_an_inheritable_set_reach_the_ambient_set() {
    // CHOWN(0) and SETUID(7) in all five sets: with inheritable present, ambient sticks.
    let want = (1u64 << 0) | (1 << 7);
    let out = sh_in(
        |c| {
            let caps = json!(["CAP_CHOWN", "CAP_SETUID"]);
            c["process"]["capabilities"] = json!({
                "bounding": caps, "effective": caps, "permitted": caps,
                "inheritable": caps, "ambient": caps
            });
        },
        "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status",
    );
    for line in out.lines() {
        let (name, hex) = line.split_once(':').expect("Cap line");
        let got = u64::from_str_radix(hex.trim(), 16).expect("hex mask");
        assert_eq!(got, want, "{name} is {got:#x}, want {want:#x}");
    }
}

#[test]
fn a_capability_outside_the_sets_is_denied() {
    // The template has no CAP_SYS_ADMIN, so even root cannot change the hostname.
    let out = sh_in(|_| {}, "hostname other 2>/dev/null && echo allowed || echo denied");
    assert_eq!(out, "denied\n");
}

// ---- root and mounts ----

#[test]
fn readonly_root_refuses_writes() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["root"]["readonly"] = json!(true)).sh("touch /probe && echo wrote || echo refused");
    assert_eq!(rt.run_ok(&b), "refused\n");
    assert!(!b.rootfs().join("probe").exists());
}

#[test]
fn writable_root_accepts_writes_that_land_in_the_bundle_rootfs() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["root"]["readonly"] = json!(false)).sh("echo hi > /probe && echo wrote");
    assert_eq!(rt.run_ok(&b), "wrote\n");
    assert_eq!(std::fs::read_to_string(b.rootfs().join("probe")).expect("probe on host"), "hi\n");
}

#[test]
fn tmpfs_mount_gets_its_options() {
    let out = sh_in(
        |c| {
            c["mounts"].as_array_mut().expect("mounts").push(json!({
                "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=710"]
            }))
        },
        "grep ' /scratch ' /proc/mounts; stat -c %a /scratch; echo x > /scratch/f && echo writable",
    );
    let l = lines(&out);
    let fields: Vec<&str> = l[0].split_whitespace().collect();
    assert_eq!(fields[2], "tmpfs", "{out}");
    let opts: Vec<&str> = fields[3].split(',').collect();
    for want in ["rw", "nosuid", "nodev", "noexec", "size=1024k", "mode=710"] {
        assert!(opts.contains(&want), "{want} missing from {opts:?}");
    }
    assert_eq!(l[1], "710");
    assert_eq!(l[2], "writable");
}

#[test]
fn readonly_bind_mount_shows_host_files_and_refuses_writes() {
    let rt = Runtime::new();
    let host = tempfile::tempdir_in("/tmp").expect("host dir");
    std::fs::write(host.path().join("file"), "from host\n").expect("write host file");
    let mut b = Bundle::new();
    b.mount(json!({
        "destination": "/hostro", "type": "bind",
        "source": host.path(), "options": ["rbind", "ro"]
    }))
    .sh("cat /hostro/file; echo changed > /hostro/file && echo wrote || echo refused");
    assert_eq!(rt.run_ok(&b), "from host\nrefused\n");
    assert_eq!(std::fs::read_to_string(host.path().join("file")).expect("read"), "from host\n");
}

#[test]
fn writable_bind_mount_writes_through_to_the_host() {
    let rt = Runtime::new();
    let host = tempfile::tempdir_in("/tmp").expect("host dir");
    let mut b = Bundle::new();
    b.mount(json!({
        "destination": "/hostrw", "type": "bind",
        "source": host.path(), "options": ["bind"]
    }))
    .sh("echo from-container > /hostrw/out");
    rt.run_ok(&b);
    assert_eq!(std::fs::read_to_string(host.path().join("out")).expect("written through"), "from-container\n");
}

#[test]
fn rbind_carries_submounts_and_bind_does_not() {
    let rt = Runtime::new();
    let host = tempfile::tempdir_in("/tmp").expect("host dir");
    let sub = host.path().join("sub");
    let _mounted = TmpfsMount::new(&sub);
    std::fs::write(sub.join("inner"), "in submount\n").expect("write in submount");
    let mut b = Bundle::new();
    b.mount(json!({
        "destination": "/r", "type": "bind", "source": host.path(), "options": ["rbind"]
    }))
    .mount(json!({
        "destination": "/b", "type": "bind", "source": host.path(), "options": ["bind"]
    }))
    .sh("cat /r/sub/inner; ls -A /b/sub | wc -l");
    assert_eq!(lines(&rt.run_ok(&b)), ["in submount", "0"]);
}

#[test]
fn masked_paths_read_as_empty() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    std::fs::write(b.rootfs().join("etc/secret"), "secret\n").expect("write secret");
    std::fs::create_dir(b.rootfs().join("etc/secretdir")).expect("mkdir");
    std::fs::write(b.rootfs().join("etc/secretdir/f"), "x").expect("write");
    b.edit(|c| {
        let masked = c["linux"]["maskedPaths"].as_array_mut().expect("maskedPaths");
        masked.push(json!("/etc/secret"));
        masked.push(json!("/etc/secretdir"));
    })
    .sh("cat /etc/secret | wc -c; ls -A /etc/secretdir | wc -l; cat /proc/timer_list | wc -c");
    let out = rt.run_ok(&b);
    // /proc/timer_list is in runc's template; on this host it is non-empty outside containers.
    // (/proc/kcore, also in the template, does not exist on this kernel.)
    assert_eq!(lines(&out), ["0", "0", "0"], "{out}");
    assert!(std::fs::read("/proc/timer_list").is_ok_and(|t| !t.is_empty()));
}

#[test]
fn readonly_paths_refuse_writes() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    std::fs::create_dir(b.rootfs().join("data")).expect("mkdir data");
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["readonlyPaths"].as_array_mut().expect("readonlyPaths").push(json!("/data"));
    })
    .sh("echo 1 > /proc/sys/kernel/domainname && echo wrote-proc || echo refused-proc; \
         touch /data/f && echo wrote-data || echo refused-data; \
         touch /tmp/f && echo wrote-tmp || echo refused-tmp");
    assert_eq!(lines(&rt.run_ok(&b)), ["refused-proc", "refused-data", "wrote-tmp"]);
}

// ---- /dev ----

#[test]
fn dev_has_the_standard_devices_and_links() {
    // `stat -c '%n %F %t:%T'`: name, type, major:minor in hex.
    let out = sh_in(
        |_| {},
        "stat -c '%n %F %t:%T' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; \
         for l in fd stdin stdout stderr; do readlink /dev/$l; done; \
         test -e /dev/ptmx && echo ptmx; test -c /dev/pts/ptmx && echo pts-ptmx; \
         grep ' /dev/shm ' /proc/mounts | cut -d' ' -f3",
    );
    let l = lines(&out);
    assert_eq!(
        l[..6],
        [
            "/dev/null character special file 1:3",
            "/dev/zero character special file 1:5",
            "/dev/full character special file 1:7",
            "/dev/random character special file 1:8",
            "/dev/urandom character special file 1:9",
            "/dev/tty character special file 5:0",
        ],
        "{out}"
    );
    assert_eq!(l[6..10], ["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2"]);
    assert_eq!(l[10..], ["ptmx", "pts-ptmx", "tmpfs"]);
}

#[test]
fn dev_devices_work() {
    let out = sh_in(
        |_| {},
        "echo gone > /dev/null && echo null-ok; head -c 4 /dev/zero | od -An -tx1; \
         echo x > /dev/full || echo full-refused; head -c 8 /dev/urandom | wc -c",
    );
    assert_eq!(lines(&out), ["null-ok", "00 00 00 00", "full-refused", "8"]);
}

#[test]
fn linux_devices_creates_the_node_with_mode_and_owner() {
    let out = sh_in(
        |c| {
            c["linux"]["devices"] = json!([{
                "path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                "fileMode": 0o640, "uid": 1000, "gid": 10
            }])
        },
        "stat -c '%F %t:%T %a %u %g' /dev/mynull",
    );
    assert_eq!(out.trim(), "character special file 1:3 640 1000 10");
}

// ---- linux: namespaces and sysctl ----

#[test]
fn pid_namespace_makes_the_process_pid_1() {
    assert_eq!(sh_in(|_| {}, "echo $$"), "1\n");
}

#[test]
fn without_a_pid_namespace_the_process_is_not_pid_1() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.without_namespace("pid").sh("echo $$");
    let pid: i32 = rt.run_ok(&b).trim().parse().expect("a pid");
    assert!(pid > 1);
}

#[test]
fn network_namespace_has_only_loopback() {
    // /proc/net/dev: two header lines, then one line per interface.
    let out = sh_in(|_| {}, "tail -n +3 /proc/net/dev | cut -d: -f1");
    assert_eq!(lines(&out), ["lo"]);
}

#[test]
fn uts_namespace_keeps_the_hostname_from_the_host() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("host hostname");
    let out = sh_in(|c| c["hostname"] = json!("inside-only"), "hostname");
    assert_eq!(out, "inside-only\n");
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/hostname").expect("host hostname"), host);
}

#[test]
fn namespaces_differ_from_the_host_s() {
    let out = sh_in(|_| {}, "for n in mnt uts ipc net pid; do readlink /proc/self/ns/$n; done");
    let me = std::process::id().to_string();
    for (line, kind) in out.lines().zip(["mnt", "uts", "ipc", "net", "pid"]) {
        assert_ne!(line, integration::host::namespace(&me, kind), "{kind} not new");
    }
}

#[test]
fn user_namespace_applies_uid_and_gid_mappings() {
    let out = sh_in(
        |c| {
            c["linux"]["namespaces"].as_array_mut().expect("namespaces").push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        },
        "cat /proc/self/uid_map /proc/self/gid_map; id -u",
    );
    let maps: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(maps[0], ["0", "100000", "65536"]);
    assert_eq!(maps[1], ["0", "200000", "65536"]);
    assert_eq!(maps[2], ["0"]);
}

#[test]
fn sysctl_in_the_new_net_and_ipc_namespaces() {
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read");
    let host_shm = std::fs::read_to_string("/proc/sys/kernel/shmmax").expect("read");
    let out = sh_in(
        |c| {
            c["linux"]["sysctl"] = json!({
                "net.ipv4.ip_forward": if host_fwd.trim() == "1" { "0" } else { "1" },
                "kernel.shmmax": "12345678"
            })
        },
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax",
    );
    let want_fwd = if host_fwd.trim() == "1" { "0" } else { "1" };
    assert_eq!(lines(&out), [want_fwd, "12345678"]);
    // The host's values are untouched.
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read"), host_fwd);
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/shmmax").expect("read"), host_shm);
}

#[test]
fn the_process_runs_in_the_configured_cgroup() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = rt.new_id();
    rt.create_ok(&id, &b);
    let pid = rt.pid(&id);
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read cgroup");
    let want = b.cgroup_rel();
    // Every hierarchy the runtime placed it in ends in cgroupsPath (under systemd: its scope); at least the pids and
    // unified ones exist on every host we run on.
    let paths: Vec<&str> = cgroups.lines().filter_map(|l| l.splitn(3, ':').nth(2)).collect();
    assert!(paths.contains(&want.as_str()), "{pid} is in {cgroups}");
    assert!(b.cgroup_pids().contains(&pid));
    rt.delete_force(&id).assert_success();
}
