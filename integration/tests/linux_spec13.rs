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
