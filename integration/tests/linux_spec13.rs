//! runtime-spec 1.3 fields of `linux` that act on the host or the kernel rather than on mounts:
//! `memoryPolicy` (set_mempolicy, seen in numa_maps from inside and outside), `netDevices` (a
//! host link moved into the container's network namespace), `intelRdt` (resctrl) and
//! `NOTIFY_SOCKET`. runc 1.1.5 knows none of the first three (it ignores them), so those tests
//! check skiff alone.

use integration::{Bundle, Runtime};
use serde_json::{json, Value};

/// The policy column of the first line of a numa_maps text ("bind:0", "prefer (many):0", ...).
/// Two of the kernel's policy names have a space in them.
fn numa_policy(numa_maps: &str) -> String {
    let line = numa_maps.lines().next().unwrap_or_default();
    let words: Vec<&str> = line.split(' ').skip(1).collect();
    let n = if matches!(words.first(), Some(&"weighted") | Some(&"prefer"))
        && words.get(1).is_some_and(|w| w.starts_with("interleave") || w.starts_with("(many)"))
    {
        2
    } else {
        1
    };
    words.iter().take(n).copied().collect::<Vec<_>>().join(" ")
}

#[test]
fn memory_policy_modes_and_flags_reach_the_process() {
    if integration::runtime_is_runc() {
        integration::skip("linux.memoryPolicy: runc 1.1.5 does not apply it (runc 1.3 does)");
        return;
    }
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        integration::skip("linux.memoryPolicy: this kernel has no NUMA support (no /proc/self/numa_maps)");
        return;
    }
    // (linux.memoryPolicy, the policy mm/mempolicy.c's mpol_to_str shows in numa_maps)
    let rows = [
        (json!({"mode": "MPOL_DEFAULT"}), "default"),
        (json!({"mode": "MPOL_BIND", "nodes": "0"}), "bind:0"),
        (json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}), "interleave:0"),
        (json!({"mode": "MPOL_PREFERRED", "nodes": "0"}), "prefer:0"),
        (json!({"mode": "MPOL_LOCAL"}), "local"),
        (json!({"mode": "MPOL_PREFERRED_MANY", "nodes": "0"}), "prefer (many):0"),
        (json!({"mode": "MPOL_WEIGHTED_INTERLEAVE", "nodes": "0"}), "weighted interleave:0"),
        (json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}), "bind=static:0"),
        (json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]}), "interleave=relative:0"),
        (json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]}), "bind=balancing:0"),
    ];
    let rt = Runtime::new();
    for (policy, want) in rows {
        let mut b = Bundle::new();
        b.edit(|c| c["linux"]["memoryPolicy"] = policy.clone()).args(&["sleep", "1000"]);
        let id = rt.create_and_start(&b);
        // Inside: the process's own numa_maps, and an exec'd process's (runc applies the policy
        // to both).
        let inside = rt.exec(&["exec", &id, "cat", "/proc/1/numa_maps"]);
        assert_eq!(numa_policy(&inside.assert_success().stdout), want, "{policy} (the init, inside)");
        let exec = rt.exec(&["exec", &id, "cat", "/proc/self/numa_maps"]);
        assert_eq!(numa_policy(&exec.assert_success().stdout), want, "{policy} (an exec'd process)");
        // Outside: the same, read on the host.
        let outside = std::fs::read_to_string(format!("/proc/{}/numa_maps", rt.pid(&id))).expect("numa_maps");
        assert_eq!(numa_policy(&outside), want, "{policy} (the init, from the host)");
        rt.delete_force(&id).assert_success();
    }
}

#[test]
fn a_memory_policy_the_host_cannot_do_fails_create_naming_the_field_and_leaves_nothing() {
    if integration::runtime_is_runc() {
        integration::skip("linux.memoryPolicy: runc 1.1.5 does not apply it (runc 1.3 does)");
        return;
    }
    // A node this host lacks (set_mempolicy: EINVAL), and configs runc 1.3 refuses up front.
    let missing = (1..1024).find(|n| !std::path::Path::new(&format!("/sys/devices/system/node/node{n}")).exists());
    let mut rows: Vec<(Value, &str)> = vec![
        (json!({"mode": "MPOL_BIND"}), "linux.memoryPolicy.nodes"),
        (json!({"mode": "MPOL_LOCAL", "nodes": "0"}), "linux.memoryPolicy.nodes"),
        (json!({"mode": "MPOL_BIND", "nodes": "zero"}), "linux.memoryPolicy.nodes"),
        (json!({"mode": "MPOL_SOMETIMES", "nodes": "0"}), "linux.memoryPolicy.mode"),
        (json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_SOMETIMES"]}), "linux.memoryPolicy.flags"),
    ];
    let node = missing.map(|n| n.to_string()).unwrap_or_default();
    if missing.is_some() {
        rows.push((json!({"mode": "MPOL_BIND", "nodes": node}), "linux.memoryPolicy"));
    }
    let rt = Runtime::new();
    for (policy, want) in rows {
        let mut b = Bundle::new();
        b.edit(|c| c["linux"]["memoryPolicy"] = policy.clone()).args(&["sleep", "1000"]);
        let id = rt.new_id();
        let out = rt.create(&id, &b);
        out.assert_failure().assert_stderr_contains(want);
        assert_eq!(rt.root_entries_for(&id), Vec::<String>::new(), "{policy}: state left");
        assert_eq!(b.cgroup_pids(), Vec::<i32>::new(), "{policy}: processes left");
    }
    assert_eq!(rt.list_ids(), Vec::<String>::new());
}

/// A veth pair on the host made for one test and removed on drop (whatever is left of it).
struct Veth {
    host: String,
    peer: String,
}

impl Veth {
    /// Makes `skvN`/`skvNp` with 198.18.x.y/32 (a benchmarking range, routed nowhere) on the peer.
    fn new(n: u32) -> Option<Veth> {
        let host = format!("skv{}{n}", std::process::id() % 10000);
        let peer = format!("{host}p");
        let ok = std::process::Command::new("ip")
            .args(["link", "add", &host, "type", "veth", "peer", "name", &peer])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            integration::skip("linux.netDevices: cannot make a veth pair on this host");
            return None;
        }
        let v = Veth { host, peer };
        let addr = format!("198.18.{}.{}/32", n % 250, 1 + std::process::id() % 250);
        ip(&["addr", "add", &addr, "dev", &v.peer]);
        ip(&["link", "set", &v.peer, "up"]);
        Some(v)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["link", "del", &self.host]).output();
    }
}

fn ip(args: &[&str]) -> String {
    let out = std::process::Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn host_has_link(name: &str) -> bool {
    std::process::Command::new("ip").args(["link", "show", name]).output().is_ok_and(|o| o.status.success())
}

#[test]
fn net_devices_move_a_host_link_into_the_container_renamed_with_its_address_and_up() {
    if integration::runtime_is_runc() {
        integration::skip("linux.netDevices: runc 1.1.5 does not apply it (runc 1.3 does)");
        return;
    }
    let Some(veth) = Veth::new(1) else { return };
    let addr = ip(&["-o", "-4", "addr", "show", "dev", &veth.peer]);
    let addr = addr.split_whitespace().nth(3).expect("the address we gave").to_string();
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["netDevices"] = json!({ veth.peer.clone(): {"name": "ctr0"} })).args(&["sleep", "1000"]);
    let id = rt.create_and_start(&b);
    // Inside: the link under its new name, up, with its permanent global address.
    let inside = rt.exec(&["exec", &id, "ip", "-o", "addr", "show", "dev", "ctr0"]);
    assert!(inside.assert_success().stdout.contains(&addr), "{inside}");
    let flags = rt.exec(&["exec", &id, "ip", "-o", "link", "show", "ctr0"]);
    assert!(flags.assert_success().stdout.contains(",UP"), "{flags}");
    // Outside: gone from the host, in the container's network namespace.
    assert!(!host_has_link(&veth.peer), "{} is still on the host", veth.peer);
    let pid = rt.pid(&id).to_string();
    let ns = std::process::Command::new("nsenter")
        .args(["-t", &pid, "-n", "ip", "-o", "link", "show", "ctr0"])
        .output()
        .expect("nsenter");
    assert!(ns.status.success(), "ctr0 not in the container's namespace: {}", String::from_utf8_lossy(&ns.stderr));
    rt.delete_force(&id).assert_success();
    // Not moved back (runtime-spec: the runtime MUST NOT; the kernel returns physical links when
    // the namespace dies and destroys virtual ones): the veth pair is gone with the namespace.
    integration::host::wait_until("the veth pair to go with the namespace", || {
        (!host_has_link(&veth.host)).then_some(())
    });
}

#[test]
fn net_devices_the_host_cannot_move_fail_create_naming_the_field_and_leave_nothing() {
    if integration::runtime_is_runc() {
        integration::skip("linux.netDevices: runc 1.1.5 does not apply it (runc 1.3 does)");
        return;
    }
    let Some(veth) = Veth::new(2) else { return };
    let rt = Runtime::new();
    let rows: Vec<(Value, bool, String)> = vec![
        // no such link on the host
        (json!({"skiff-nolink0": {}}), true, "linux.netDevices.skiff-nolink0".to_string()),
        // a name the container's namespace already has
        (json!({ veth.peer.clone(): {"name": "lo"} }), true, format!("linux.netDevices.{}", veth.peer)),
        // no network namespace of the container's own
        (json!({ veth.peer.clone(): {} }), false, "linux.netDevices".to_string()),
        (json!({ veth.peer.clone(): {"name": "a/b"} }), true, format!("linux.netDevices.{}.name", veth.peer)),
    ];
    for (devices, netns, want) in rows {
        let mut b = Bundle::new();
        b.edit(|c| c["linux"]["netDevices"] = devices.clone()).args(&["sleep", "1000"]);
        if !netns {
            b.without_namespace("network");
        }
        let id = rt.new_id();
        let out = rt.create(&id, &b);
        out.assert_failure().assert_stderr_contains(&want);
        assert_eq!(rt.root_entries_for(&id), Vec::<String>::new(), "{devices}: state left");
        assert_eq!(b.cgroup_pids(), Vec::<i32>::new(), "{devices}: processes left");
        // The link stays on the host, up, with its address.
        assert!(host_has_link(&veth.peer), "{devices}: {} left the host", veth.peer);
        let link = ip(&["-o", "link", "show", &veth.peer]);
        assert!(link.contains(",UP"), "{devices}: {link}");
        assert!(ip(&["-o", "-4", "addr", "show", "dev", &veth.peer]).contains("198.18."), "{devices}");
    }
}

/// Where this host mounts resctrl, if anywhere.
fn resctrl_mount() -> Option<std::path::PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split_whitespace().next()? != "resctrl" {
            return None;
        }
        pre.split_whitespace().nth(4).map(std::path::PathBuf::from)
    })
}

#[test]
fn intel_rdt_without_resctrl_fails_create_naming_the_field_and_leaves_nothing() {
    if resctrl_mount().is_some() {
        integration::skip("linux.intelRdt: this host has resctrl, so the refusal cannot be shown here");
        return;
    }
    let rt = Runtime::new();
    let mut rows = vec![json!({"l3CacheSchema": "L3:0=f"}), json!({"closID": "gold", "memBwSchema": "MB:0=50"})];
    if !integration::runtime_is_runc() {
        // runtime-spec 1.3 fields runc 1.1.5 does not know (it creates the container)
        rows.push(json!({"closID": "gold", "schemata": ["L3:0=f", "MB:0=50"]}));
        rows.push(json!({"enableMonitoring": true}));
    }
    for rdt in rows {
        let mut b = Bundle::new();
        b.edit(|c| c["linux"]["intelRdt"] = rdt.clone()).args(&["sleep", "1000"]);
        let id = rt.new_id();
        let out = rt.create(&id, &b);
        out.assert_failure();
        if !integration::runtime_is_runc() {
            // runc 1.1.5: "intelRdt is specified in config, but Intel RDT is not supported or enabled"
            out.assert_stderr_contains("linux.intelRdt").assert_stderr_contains("resctrl");
        }
        assert_eq!(rt.root_entries_for(&id), Vec::<String>::new(), "{rdt}: state left");
        assert_eq!(b.cgroup_pids(), Vec::<i32>::new(), "{rdt}: processes left");
        assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new(), "{rdt}: cgroups left");
    }
    assert_eq!(rt.list_ids(), Vec::<String>::new());
}

#[test]
fn intel_rdt_puts_the_container_in_its_resctrl_group_and_delete_removes_it() {
    let Some(root) = resctrl_mount() else {
        integration::skip("linux.intelRdt: no resctrl filesystem on this host (Intel RDT / AMD PQoS)");
        return;
    };
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["intelRdt"] = json!({"enableMonitoring": true})).args(&["sleep", "1000"]);
    let id = rt.create_and_start(&b);
    let group = root.join(&id);
    let pid = rt.pid(&id).to_string();
    let tasks = std::fs::read_to_string(group.join("mon_groups").join(&id).join("tasks")).expect("tasks");
    assert!(tasks.lines().any(|t| t == pid), "{pid} not in {tasks:?}");
    rt.delete_force(&id).assert_success();
    assert!(!group.exists(), "{} left behind", group.display());
}

#[test]
fn every_seccomp_and_memory_policy_option_features_lists_is_applied() {
    if integration::runtime_is_runc() {
        // runc 1.1.5 lists big-endian seccomp architectures a filter on this host cannot take.
        integration::skip("features: the check is of skiff's own list");
        return;
    }
    let rt = Runtime::new();
    let out = rt.exec(&["features"]);
    let doc: Value = serde_json::from_str(&out.assert_success().stdout).expect("features is JSON");
    assert_eq!(doc["ociVersionMax"], "1.3.0");
    let list = |ptr: &str| -> Vec<String> {
        doc.pointer(ptr)
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("features has no {ptr}"))
            .iter()
            .map(|v| v.as_str().expect("a string").to_string())
            .collect()
    };
    let runs = |linux: Value| {
        let mut b = Bundle::new();
        b.edit(|c| {
            for (k, v) in linux.as_object().expect("an object") {
                c["linux"][k] = v.clone();
            }
        })
        .args(&["true"]);
        rt.run(&b)
    };
    for arch in list("/linux/seccomp/archs") {
        let out = runs(json!({"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]}}));
        assert!(out.success(), "architecture {arch}: {out}");
    }
    for flag in list("/linux/seccomp/supportedFlags") {
        let out = runs(json!({"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]}}));
        assert!(out.success(), "flag {flag}: {out}");
    }
    for action in list("/linux/seccomp/actions") {
        if action == "SCMP_ACT_NOTIFY" {
            continue; // needs a listener: seccomp.rs shows it working
        }
        // A syscall `true` never makes, so even the killing actions let it run.
        let rule = json!({"names": ["mbind"], "action": action});
        let out = runs(json!({"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}}));
        assert!(out.success(), "action {action}: {out}");
    }
    for op in list("/linux/seccomp/operators") {
        let rule = json!({"names": ["mbind"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "valueTwo": 1, "op": op}]});
        let out = runs(json!({"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}}));
        assert!(out.success(), "operator {op}: {out}");
    }
    for mode in list("/linux/memoryPolicy/modes") {
        let nodes = if matches!(mode.as_str(), "MPOL_DEFAULT" | "MPOL_LOCAL") { "" } else { "0" };
        let out = runs(json!({"memoryPolicy": {"mode": mode, "nodes": nodes}}));
        assert!(out.success(), "memory policy mode {mode}: {out}");
    }
    for flag in list("/linux/memoryPolicy/flags") {
        // MPOL_F_NUMA_BALANCING goes with MPOL_BIND only (the kernel's rule).
        let out = runs(json!({"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0", "flags": [flag]}}));
        assert!(out.success(), "memory policy flag {flag}: {out}");
    }
    assert_eq!(doc["linux"]["netDevices"]["enabled"], true, "net_devices_move_a_host_link... shows it");
    assert_eq!(doc["linux"]["intelRdt"]["enabled"], true, "applied where resctrl is, refused where not");
}

/// Copies a host binary and the shared libraries `ldd` names into the rootfs, at the same paths.
fn copy_with_libs(bin: &str, rootfs: &std::path::Path) {
    let ldd = std::process::Command::new("ldd").arg(bin).output().expect("run ldd");
    let text = String::from_utf8_lossy(&ldd.stdout);
    let libs = text.lines().filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/')));
    for path in std::iter::once(bin).chain(libs) {
        let dst = rootfs.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().expect("a parent")).expect("mkdir in rootfs");
        std::fs::copy(path, &dst).unwrap_or_else(|e| panic!("copy {path}: {e}"));
    }
}

#[test]
fn notify_socket_passes_the_containers_ready_to_the_callers_socket() {
    let Some(notify) =
        ["/usr/bin/systemd-notify", "/bin/systemd-notify"].into_iter().find(|p| std::path::Path::new(p).exists())
    else {
        integration::skip("NOTIFY_SOCKET: no systemd-notify on this host to send from the container");
        return;
    };
    let rt = Runtime::new();
    let caller = rt.scratch().join("caller-notify.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&caller).expect("bind the caller's socket");
    listener.set_read_timeout(Some(integration::host::PATIENCE)).expect("timeout");
    let mut b = Bundle::new();
    copy_with_libs(notify, &b.rootfs());
    b.sh(&format!("{notify} --status=warming-up; {notify} --ready; exec sleep 1000"));
    let id = rt.new_id();
    // The caller reads as the runtime sends. skiff (and runc 1.2+) end with BARRIER=1 and wait
    // until the pipe sent along is closed: a recv without room for fds, or closing the socket
    // with the datagram unread, closes it.
    let reader = std::thread::spawn(move || {
        let mut got = String::new();
        while !got.contains("BARRIER=1") {
            let mut buf = [0u8; 4096];
            match listener.recv(&mut buf) {
                Ok(n) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
                // runc 1.1 sends no barrier: done once READY and MAINPID are in and it is quiet.
                Err(_) if got.contains("READY=1") && got.contains("MAINPID=") => break,
                Err(e) => return Err(format!("{e} after {got:?}")),
            }
            got.push('\n');
            if got.contains("READY=1") && got.contains("MAINPID=") {
                listener.set_read_timeout(Some(std::time::Duration::from_secs(2))).map_err(|e| e.to_string())?;
            }
        }
        Ok(got)
    });
    // `run -d` with NOTIFY_SOCKET returns once the container said READY, as runc's does.
    let mut cmd = rt.command(&["run", "-d", "--bundle", b.path_str(), &id]);
    cmd.env("NOTIFY_SOCKET", &caller);
    rt.exec_cmd(cmd, None).assert_success();
    let got = reader.join().expect("reader thread").expect("messages on the caller's socket");
    assert!(got.lines().any(|l| l == "READY=1"), "{got:?}");
    // Outside: READY, and MAINPID is the init's pid on the host.
    let pid = rt.pid(&id);
    assert!(got.lines().any(|l| l == format!("MAINPID={pid}")), "{got:?} (init {pid})");
    if !integration::runtime_is_runc() {
        // skiff passes the messages before READY on too (runc 1.1 passes READY alone).
        assert!(got.lines().any(|l| l == "STATUS=warming-up"), "{got:?}");
    }
    // The socket the container's process was given (its environment, read on the host: runc's
    // exec takes the bundle's env, without it), on a read-only mount inside.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    let environ = String::from_utf8_lossy(&environ).into_owned();
    assert!(environ.split('\0').any(|e| e == "NOTIFY_SOCKET=/run/notify/notify.sock"), "{environ:?}");
    let mounts = rt.exec(&["exec", &id, "grep", " /run/notify ", "/proc/self/mountinfo"]);
    let opts = mounts.assert_success().stdout.split_whitespace().nth(5).unwrap_or_default().to_string();
    assert!(opts.split(',').any(|f| f == "ro"), "{mounts}");
    rt.delete_force(&id).assert_success();
}

#[test]
fn deprecated_memory_fields_are_applied_or_refused_naming_the_field() {
    if integration::runtime_is_runc() {
        integration::skip("memory.kernel/useHierarchy: runc 1.1.5 writes kmem limits the kernel refuses here");
        return;
    }
    let Some(integration::host::Hierarchy::V1(_)) = integration::host::cgroup_hierarchy("memory") else {
        integration::skip("memory.kernel/useHierarchy: checked on cgroup v1 (v2 has no such files: refused there)");
        return;
    };
    let rt = Runtime::new();
    // (memory resources, the file, the value it must hold if the kernel takes it, the field)
    let rows = [
        (json!({"kernel": 50 * 1024 * 1024}), "memory.kmem.limit_in_bytes", "52428800", "memory.kernel"),
        (json!({"useHierarchy": true}), "memory.use_hierarchy", "1", "memory.useHierarchy"),
        (json!({"useHierarchy": false}), "memory.use_hierarchy", "0", "memory.useHierarchy"),
    ];
    for (memory, file, want, field) in rows {
        let mut b = Bundle::new();
        b.edit(|c| c["linux"]["resources"] = json!({"memory": memory})).args(&["sleep", "1000"]);
        let id = rt.new_id();
        let out = rt.create(&id, &b);
        if out.success() {
            // The kernel took it: the cgroup file holds it.
            assert_eq!(b.cgroup_value(&[file]), want, "{memory}");
            rt.delete_force(&id).assert_success();
        } else {
            // Linux 6.1+ refuses kmem limits, and use_hierarchy 0: an error naming the field.
            out.assert_stderr_contains(&format!("linux.resources.{field}"));
            assert_eq!(rt.root_entries_for(&id), Vec::<String>::new(), "{memory}: state left");
        }
    }
}

#[test]
fn update_with_check_before_update_refuses_a_limit_below_the_usage() {
    if integration::runtime_is_runc() {
        integration::skip("memory.checkBeforeUpdate: runc 1.1.5 checks it on cgroup v2 only");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["resources"] = json!({"memory": {"limit": 64 * 1024 * 1024}}))
        .sh("head -c 2000000 /dev/zero > /dev/shm/fill; exec sleep 1000");
    let id = rt.create_and_start(&b);
    integration::host::wait_until("the container to use memory", || {
        rt.exec(&["exec", &id, "test", "-s", "/dev/shm/fill"]).success().then_some(())
    });
    let before = b.cgroup_value(&["memory.limit_in_bytes", "memory.max"]);
    let res = rt.scratch().join("res.json");
    std::fs::write(&res, json!({"memory": {"limit": 4096, "checkBeforeUpdate": true}}).to_string()).expect("write");
    let out = rt.exec(&["update", "-r", res.to_str().expect("utf-8"), &id]);
    out.assert_failure().assert_stderr_contains("checkBeforeUpdate");
    assert_eq!(b.cgroup_value(&["memory.limit_in_bytes", "memory.max"]), before, "the limit changed");
    rt.delete_force(&id).assert_success();
}
