//! linux.resources: the limits land in the container's cgroup (`linux.cgroupsPath`, set by the
//! harness) on the host, and the pids limit holds inside.
//!
//! This host is cgroup v1 with an empty v2 hierarchy on /sys/fs/cgroup/unified (hybrid), so the
//! controller files are the v1 ones; the helpers also accept a v2 file where it has the same
//! value format.

use integration::{Bundle, Runtime};
use serde_json::json;

/// Creates `b` (a sleeper) and runs `check` while the container exists.
fn with_created(b: &mut Bundle, check: impl FnOnce(&Bundle)) {
    let rt = Runtime::new();
    b.args(&["sleep", "1000"]);
    let id = rt.new_id();
    rt.create_ok(&id, b);
    check(b);
    rt.delete_force(&id).assert_success();
}

#[test]
fn pids_limit_is_written_to_the_cgroup() {
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["resources"]["pids"] = json!({"limit": 50}));
    with_created(&mut b, |b| assert_eq!(b.cgroup_value(&["pids.max"]), "50"));
}

#[test]
fn memory_limit_is_written_to_the_cgroup() {
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 64 * 1024 * 1024}));
    with_created(&mut b, |b| assert_eq!(b.cgroup_value(&["memory.limit_in_bytes", "memory.max"]), "67108864"));
}

#[test]
fn cpu_shares_and_quota_are_written_to_the_v1_cgroup() {
    // v1 only: v2 converts shares to cpu.weight and writes quota and period together to cpu.max.
    if !std::path::Path::new("/sys/fs/cgroup/cpu/cpu.shares").exists() {
        integration::skip("no cgroup v1 cpu controller on this host");
        return;
    }
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["resources"]["cpu"] = json!({"shares": 512, "quota": 50000, "period": 100000}));
    with_created(&mut b, |b| {
        assert_eq!(b.cgroup_value(&["cpu.shares"]), "512");
        assert_eq!(b.cgroup_value(&["cpu.cfs_quota_us"]), "50000");
        assert_eq!(b.cgroup_value(&["cpu.cfs_period_us"]), "100000");
    });
}

#[test]
fn cpu_shares_become_weight_on_v2() {
    // runc's conversion: weight = 1 + (shares - 2) * 9999 / 262142.
    if std::path::Path::new("/sys/fs/cgroup/cpu/cpu.shares").exists()
        || !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
    {
        integration::skip("not a cgroup v2 host");
        return;
    }
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["resources"]["cpu"] = json!({"shares": 512, "quota": 50000, "period": 100000}));
    with_created(&mut b, |b| {
        assert_eq!(b.cgroup_value(&["cpu.weight"]), "20");
        assert_eq!(b.cgroup_value(&["cpu.max"]), "50000 100000");
    });
}

/// Writes a line to /dev/kmsg (c 1:11, bind-mounted from the host; not among runc's default
/// devices) in a container with the default deny-all rule, plus `extra` rules.
fn write_kmsg(extra: serde_json::Value) -> String {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.mount(json!({"destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg", "options": ["bind"]}))
        .edit(|c| {
            let rules = c["linux"]["resources"]["devices"].as_array_mut().expect("devices is an array");
            rules.extend(extra.as_array().cloned().unwrap_or_default());
        })
        .sh("if echo skiff-it device rule test > /dev/kmsg; then echo written; else echo refused; fi; \
             echo x > /dev/null && echo null-ok");
    rt.run_ok(&b)
}

#[test]
fn device_rules_are_enforced() {
    // v1: devices.allow/deny; v2: skiff's eBPF program. The deny-all default refuses the
    // device, the standard /dev/null stays usable.
    let out = write_kmsg(json!([]));
    assert!(out.contains("refused") && out.contains("null-ok"), "{out}");
    let out = write_kmsg(json!([{"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}]));
    assert!(out.contains("written"), "an allow rule for c 1:11 w lets it through: {out}");
    // A later deny wins over the earlier allow.
    let out = write_kmsg(json!([
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"},
        {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "w"}
    ]));
    assert!(out.contains("refused"), "{out}");
}

#[test]
fn delete_removes_the_cgroups() {
    let mut b = Bundle::new();
    let rt = Runtime::new();
    b.args(&["sleep", "1000"]);
    let id = rt.new_id();
    rt.create_ok(&id, &b);
    assert!(!b.cgroup_dirs().is_empty(), "create made no cgroup under {}", b.cgroups_path());
    rt.delete_force(&id).assert_success();
    assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn the_pids_limit_stops_forks_inside_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // A child shell starts sleepers until fork fails (busybox sh then exits 2); the outer shell
    // counts what is alive in the pid namespace with builtins only, as no fork is left for it.
    b.edit(|c| c["linux"]["resources"]["pids"] = json!({"limit": 8}))
        .sh("sh -c 'i=0; while [ $i -lt 20 ]; do sleep 1000 & i=$((i+1)); done' 2>/dev/null; \
         n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n");
    let out = rt.run_ok(&b);
    let alive: u32 = out.trim().parse().unwrap_or_else(|e| panic!("count {out:?}: {e}"));
    assert!((2..=8).contains(&alive), "{alive} processes under a pids limit of 8");
}

/// The first of `names` in one of the bundle's cgroup directories, if any exists.
fn cgroup_file(b: &Bundle, names: &[&str]) -> Option<String> {
    b.cgroup_dirs()
        .iter()
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|v| v.trim().to_string())
}

/// MAJOR:MINOR of a block device of this host from /sys/block: a disk if there is one, else a
/// ram disk (the VM of `make test-cgroup2` loads brd for this); never a loop or zram device.
fn block_device() -> Option<(u32, u32)> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("loop") && !n.starts_with("zram"))
        .collect();
    names.sort_by_key(|n| (n.starts_with("ram"), n.clone()));
    names.iter().find_map(|n| {
        let dev = std::fs::read_to_string(format!("/sys/block/{n}/dev")).ok()?;
        let (major, minor) = dev.trim().split_once(':')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    })
}

/// One row of [`every_resource_field_lands_in_its_host_cgroup_file`].
struct Row<'a> {
    what: &'a str,
    resources: serde_json::Value,
    controller: &'a str,
    /// The file and the value expected in it where the controller is on a v1 hierarchy; None
    /// for a field this row does not check on v1.
    v1: Option<(&'a str, &'a str)>,
    /// The same on v2.
    v2: Option<(&'a str, &'a str)>,
    /// A file of newer kernels (or of swap accounting): the row needs the kernel to have it in
    /// the hierarchy's root cgroup (v1) before it can expect it in the container's.
    kernel_file: bool,
}

#[test]
fn every_resource_field_lands_in_its_host_cgroup_file() {
    // Each row is checked where the host's hierarchy for its controller has the file, or skipped
    // with the reason before anything is created; a file missing after create fails the row.
    let mb = 1024 * 1024;
    // Throttles need a block device the kernel has (io.max refuses others with ENODEV).
    let found = block_device();
    let disk = found.unwrap_or((0, 0));
    let dev = format!("{}:{}", disk.0, disk.1);
    let (read_bps, write_iops) = (format!("{dev} 1048576"), format!("{dev} 100"));
    let io_read_bps = format!("{dev} rbps=1048576 wbps=max riops=max wiops=max");
    let io_write_iops = format!("{dev} rbps=max wbps=max riops=max wiops=100");
    let row = |what, resources, controller, v1, v2| Row { what, resources, controller, v1, v2, kernel_file: false };
    let rows = [
        row(
            "memory.limit",
            json!({"memory": {"limit": 64 * mb}}),
            "memory",
            Some(("memory.limit_in_bytes", "67108864")),
            Some(("memory.max", "67108864")),
        ),
        row(
            "memory.reservation",
            json!({"memory": {"reservation": 32 * mb}}),
            "memory",
            Some(("memory.soft_limit_in_bytes", "33554432")),
            Some(("memory.low", "33554432")),
        ),
        // v2's memory.swap.max holds swap - limit (runc's conversion): the v2 suite checks it.
        Row {
            kernel_file: true,
            ..row(
                "memory.swap",
                json!({"memory": {"limit": 64 * mb, "swap": 128 * mb}}),
                "memory",
                Some(("memory.memsw.limit_in_bytes", "134217728")),
                None,
            )
        },
        row(
            "memory.swappiness",
            json!({"memory": {"swappiness": 10}}),
            "memory",
            Some(("memory.swappiness", "10")),
            None,
        ),
        row(
            "cpu.quota",
            json!({"cpu": {"quota": 30000, "period": 100000}}),
            "cpu",
            Some(("cpu.cfs_quota_us", "30000")),
            Some(("cpu.max", "30000 100000")),
        ),
        row(
            "cpu.period",
            json!({"cpu": {"quota": 30000, "period": 50000}}),
            "cpu",
            Some(("cpu.cfs_period_us", "50000")),
            Some(("cpu.max", "30000 50000")),
        ),
        Row {
            kernel_file: true,
            ..row(
                "cpu.burst",
                json!({"cpu": {"quota": 30000, "period": 100000, "burst": 1000}}),
                "cpu",
                Some(("cpu.cfs_burst_us", "1000")),
                Some(("cpu.max.burst", "1000")),
            )
        },
        Row {
            kernel_file: true,
            ..row("cpu.idle", json!({"cpu": {"idle": 1}}), "cpu", Some(("cpu.idle", "1")), Some(("cpu.idle", "1")))
        },
        row(
            "cpu.cpus",
            json!({"cpu": {"cpus": "0"}}),
            "cpuset",
            Some(("cpuset.cpus", "0")),
            Some(("cpuset.cpus", "0")),
        ),
        row(
            "cpu.mems",
            json!({"cpu": {"mems": "0"}}),
            "cpuset",
            Some(("cpuset.mems", "0")),
            Some(("cpuset.mems", "0")),
        ),
        row("pids.limit", json!({"pids": {"limit": 77}}), "pids", Some(("pids.max", "77")), Some(("pids.max", "77"))),
        // v2 writes both throttles to io.max, one line per device with all four limits.
        row(
            "blockIO.throttleReadBpsDevice",
            json!({"blockIO": {"throttleReadBpsDevice": [{"major": disk.0, "minor": disk.1, "rate": mb}]}}),
            "blkio",
            Some(("blkio.throttle.read_bps_device", &read_bps)),
            None,
        ),
        row(
            "blockIO.throttleReadBpsDevice",
            json!({"blockIO": {"throttleReadBpsDevice": [{"major": disk.0, "minor": disk.1, "rate": mb}]}}),
            "io",
            None,
            Some(("io.max", &io_read_bps)),
        ),
        row(
            "blockIO.throttleWriteIOPSDevice",
            json!({"blockIO": {"throttleWriteIOPSDevice": [{"major": disk.0, "minor": disk.1, "rate": 100}]}}),
            "blkio",
            Some(("blkio.throttle.write_iops_device", &write_iops)),
            None,
        ),
        row(
            "blockIO.throttleWriteIOPSDevice",
            json!({"blockIO": {"throttleWriteIOPSDevice": [{"major": disk.0, "minor": disk.1, "rate": 100}]}}),
            "io",
            None,
            Some(("io.max", &io_write_iops)),
        ),
        row(
            "hugepageLimits",
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * mb}]}),
            "hugetlb",
            Some(("hugetlb.2MB.limit_in_bytes", "4194304")),
            Some(("hugetlb.2MB.max", "4194304")),
        ),
        // The same limit caps reservations too, where the kernel has them (5.7+), as runc 1.1+
        // writes it (skiff left the rsvd files at "max").
        Row {
            kernel_file: true,
            ..row(
                "hugepageLimits.rsvd",
                json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * mb}]}),
                "hugetlb",
                Some(("hugetlb.2MB.rsvd.limit_in_bytes", "4194304")),
                Some(("hugetlb.2MB.rsvd.max", "4194304")),
            )
        },
    ];
    for r in rows {
        let what = r.what;
        // runc 1.1 writes neither cpu.burst nor cpu.idle on v1, and fails outright on hugetlb
        // when (as on this hybrid host) only the unified hierarchy has it.
        if matches!(what, "cpu.burst" | "cpu.idle" | "hugepageLimits" | "hugepageLimits.rsvd")
            && integration::runtime_is_runc()
        {
            integration::skip(format!("{what}: runc 1.1 cannot set it here"));
            continue;
        }
        if what.starts_with("blockIO.throttle") && found.is_none() {
            integration::skip(format!("{what}: no block device in /sys/block"));
            continue;
        }
        if what.starts_with("hugepageLimits")
            && !std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
        {
            integration::skip(format!("{what}: the kernel has no 2 MB huge pages"));
            continue;
        }
        let (version, expected) = match integration::host::cgroup_hierarchy(r.controller) {
            None => {
                integration::skip(format!(
                    "{what}: no cgroup hierarchy of this host has the {} controller",
                    r.controller
                ));
                continue;
            }
            Some(h @ integration::host::Hierarchy::V1(_)) => (h, r.v1),
            Some(h @ integration::host::Hierarchy::V2(_)) => (h, r.v2),
        };
        let v = if matches!(version, integration::host::Hierarchy::V1(_)) { 1 } else { 2 };
        let Some((file, want)) = expected else {
            integration::skip(format!(
                "{what}: checked on the other cgroup version (this host has {} on v{v})",
                r.controller
            ));
            continue;
        };
        if r.kernel_file && v == 1 && !version.root().join(file).exists() {
            integration::skip(format!("{what}: the kernel has no {file} in {}", version.root().display()));
            continue;
        }
        let mut b = Bundle::new();
        b.edit(|c| c["linux"]["resources"] = r.resources.clone());
        with_created(&mut b, |b| {
            let got = cgroup_file(b, &[file]).unwrap_or_else(|| {
                panic!("{what}: no {file} in {:?} though {} is on cgroup v{v}", b.cgroup_dirs(), r.controller)
            });
            assert_eq!(got, want, "{what}: {file}");
        });
    }
}

#[test]
fn disable_oom_killer_is_set_in_memory_oom_control() {
    if !std::path::Path::new("/sys/fs/cgroup/memory/memory.oom_control").exists() {
        integration::skip("v1 only (v2 has no OOM-killer switch; runc ignores the field there)");
        return;
    }
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({"disableOOMKiller": true}));
    with_created(&mut b, |b| {
        let text = b.cgroup_value(&["memory.oom_control"]);
        assert!(text.lines().any(|l| l == "oom_kill_disable 1"), "{text}");
    });
}

/// cgroup2 mounted on /sys/fs/cgroup itself (the VM of `make test-cgroup2`), not v1 or hybrid.
fn pure_v2_host() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

#[test]
fn unified_keys_land_in_their_v2_files() {
    if !pure_v2_host() {
        integration::skip("not a cgroup v2 host (see unified_is_refused_on_a_v1_or_hybrid_host)");
        return;
    }
    let mut b = Bundle::new();
    // Written after the typed fields, so "pids.max" wins over pids.limit, as in runc.
    b.edit(|c| {
        c["linux"]["resources"]["pids"] = json!({"limit": 50});
        c["linux"]["resources"]["unified"] = json!({"pids.max": "7", "memory.high": "67108864"});
    });
    with_created(&mut b, |b| {
        assert_eq!(b.cgroup_value(&["pids.max"]), "7");
        assert_eq!(b.cgroup_value(&["memory.high"]), "67108864");
    });
}

#[test]
fn bad_unified_keys_are_refused_and_leave_nothing() {
    if !pure_v2_host() {
        integration::skip("not a cgroup v2 host (see unified_is_refused_on_a_v1_or_hybrid_host)");
        return;
    }
    // The harness's parent cgroup, whose pids.max "../pids.max" would be.
    let parent = integration::bundle::cgroup_parent();
    let parent_pids = std::path::Path::new("/sys/fs/cgroup").join(parent.trim_start_matches('/')).join("pids.max");
    let read_parent = || std::fs::read_to_string(&parent_pids).ok();
    assert_ne!(read_parent().as_deref().map(str::trim), Some("13"), "the parent's pids.max is 13 already");
    for key in ["foo.bar", "../pids.max", "pidsmax", "pids.nosuchfile"] {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        b.args(&["sleep", "1000"]);
        b.edit(|c| c["linux"]["resources"]["unified"] = json!({key: "13", "pids.max": "7"}));
        let id = rt.new_id();
        let out = rt.create(&id, &b);
        out.assert_failure().assert_stderr_contains(key);
        if !integration::runtime_is_runc() {
            // runc says "unified resource KEY ..."
            out.assert_stderr_contains("linux.resources.unified");
        }
        assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new(), "{key}: the cgroup is left behind");
        assert_eq!(rt.list_ids(), Vec::<String>::new(), "{key}: the container is left behind");
        // Other tests make and remove the parent meanwhile; only this test writes 13 anywhere.
        let after = read_parent();
        assert_ne!(after.as_deref().map(str::trim), Some("13"), "{key}: written to the parent's pids.max");
    }
}

#[test]
fn unified_is_refused_on_a_v1_or_hybrid_host() {
    // runc 1.1.5 (and today's runc) validate: no `unified` keys unless /sys/fs/cgroup is cgroup2,
    // even for a controller (hugetlb here) that only the hybrid unified mount has. An empty
    // map is fine.
    if pure_v2_host() {
        integration::skip("a cgroup v2 host takes unified keys");
        return;
    }
    let hybrid_only = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").unwrap_or_default();
    let mut keys = vec!["pids.max"];
    if hybrid_only.split_whitespace().any(|c| c == "hugetlb") {
        keys.push("hugetlb.2MB.max");
    }
    for key in keys {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        b.args(&["sleep", "1000"]);
        b.edit(|c| c["linux"]["resources"]["unified"] = json!({key: "7"}));
        let id = rt.new_id();
        let out = rt.create(&id, &b);
        out.assert_failure().assert_stderr_contains("cannot use unified on cgroup v1");
        if !integration::runtime_is_runc() {
            out.assert_stderr_contains(&format!("linux.resources.unified[{key:?}]"));
        }
        assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new(), "{key}: the cgroup is left behind");
        assert_eq!(rt.list_ids(), Vec::<String>::new(), "{key}: the container is left behind");
    }
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["resources"]["unified"] = json!({}));
    with_created(&mut b, |_| {});
}

#[test]
fn block_io_weight_lands_as_runc_converts_it_on_v2() {
    // runc's fs2 setIo: io.bfq.weight takes the weight as it is when BFQ is there; else
    // io.weight (iocost) takes 1 + (weight - 10) * 9999 / 990: 100 becomes 910, 200 1920.
    if !pure_v2_host() {
        integration::skip("not a cgroup v2 host (v1: block_io_weight_lands_in_blkio_bfq_weight_on_v1)");
        return;
    }
    // Which file this kernel has, known before anything is created: BFQ's when the kernel has
    // the scheduler, else iocost's (its root-only io.cost.model shows it is built in).
    let (file, want) = if kernel_has_bfq() {
        ("io.bfq.weight", ["default 100", "default 200"])
    } else if std::path::Path::new("/sys/fs/cgroup/io.cost.model").exists() {
        ("io.weight", ["default 910", "default 1920"])
    } else {
        integration::skip("the kernel has neither BFQ nor iocost: no io.bfq.weight or io.weight to write");
        return;
    };
    let rt = Runtime::new();
    let mut plain = Bundle::new();
    plain.args(&["sleep", "1000"]);
    let id = rt.create_and_start(&plain);
    let dir = plain.cgroup_dirs().into_iter().next().expect("the container's cgroup");
    assert!(dir.join(file).exists(), "{file} missing in {}", dir.display());
    // Both files read "default N", then a line per device with a weight of its own.
    let first_line = |b: &Bundle| b.cgroup_value(&[file]).lines().next().map(str::to_string);
    rt.exec_with_stdin(&["update", "-r", "-", &id], br#"{"blockIO": {"weight": 100}}"#.to_vec()).assert_success();
    assert_eq!(first_line(&plain).as_deref(), Some(want[0]), "update: {file}");
    rt.delete_force(&id).assert_success();
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["resources"]["blockIO"] = json!({"weight": 200}));
    with_created(&mut b, |b| assert_eq!(first_line(b).as_deref(), Some(want[1]), "create: {file}"));
}

/// network.classID and network.priorities need the v1 net_cls and net_prio controllers, which
/// this host's kernel has but does not mount. Binding them to a hierarchy is kernel-wide: every
/// process then lists it in /proc/PID/cgroup until it is unmounted, and containerd's and
/// docker's stats fail meanwhile (CI showed it). So the test mounts them only on a throwaway host,
/// the qemu VM of `make test-cgroup2` (SKIFF_IT_THROWAWAY_HOST), in a private mount namespace,
/// runs the runtime there and reads the files.
#[test]
fn network_class_id_and_priorities_land_in_net_cls_and_net_prio() {
    let controllers = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
    let has = |c: &str| {
        controllers.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&c) && f.get(3) == Some(&"1")
        })
    };
    if !has("net_cls") || !has("net_prio") {
        integration::skip("no v1 net_cls/net_prio controllers in this kernel");
        return;
    }
    if std::env::var_os("SKIFF_IT_THROWAWAY_HOST").is_none() {
        integration::skip("binding net_cls/net_prio changes every process's cgroups; only on make test-cgroup2's VM");
        return;
    }
    if integration::runtime_is_runc() {
        // runc 1.1 takes only hierarchies mounted under the first one's parent (/sys/fs/cgroup)
        // and fails here with "cannot set net_cls limit: container could not join or create cgroup".
        integration::skip("runc 1.1 ignores a cgroup hierarchy mounted outside /sys/fs/cgroup");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["linux"]["resources"]["network"] = json!({"classID": 1048577, "priorities": [{"name": "lo", "priority": 7}]})
    })
    .args(&["sleep", "1000"]);
    let id = rt.new_id();
    let mnt = rt.scratch().join("net_cls,net_prio");
    let leaf = mnt.join(b.cgroup_rel().trim_start_matches('/'));
    // In the namespace: mount the hierarchy (the same one if the host has it mounted), create,
    // print the two files, delete, and say whether the directory went.
    let script = r#"set -e
mkdir -p "$MNT"
mount -t cgroup -o net_cls,net_prio skiff-it "$MNT" || { echo MOUNT-FAILED; exit 0; }
"$RT" --root "$ROOT" $SD create --bundle "$BUNDLE" "$ID" </dev/null >/dev/null
echo "classid=$(cat "$LEAF/net_cls.classid")"
grep '^lo ' "$LEAF/net_prio.ifpriomap"
"$RT" --root "$ROOT" $SD delete --force "$ID"
[ -e "$LEAF" ] && echo LEFT || echo GONE
umount "$MNT""#;
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("MNT", &mnt)
        .env("LEAF", &leaf)
        .env("RT", rt.binary())
        .env("ROOT", rt.root())
        .env("BUNDLE", b.path())
        .env("ID", &id)
        .env("SD", if integration::systemd_cgroup() { "--systemd-cgroup" } else { "" })
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stdout.contains("MOUNT-FAILED") {
        integration::skip(format!("net_cls,net_prio cannot be mounted together here: {stderr}"));
        return;
    }
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["classid=1048577", "lo 7", "GONE"], "stderr: {stderr}");
}

/// Whether the container's cgroup can take rdma limits here: a v1 rdma hierarchy, or a
/// cgroup2 mount whose root lists rdma (the VM of `make test-cgroup2`).
fn rdma_cgroup() -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo.lines().filter_map(|l| l.split_once(" - ")).any(|(left, right)| {
        let mut right = right.split(' ');
        match (right.next(), right.nth(1)) {
            (Some("cgroup"), Some(opts)) => opts.split(',').any(|o| o == "rdma"),
            (Some("cgroup2"), _) => left.split(' ').nth(4).is_some_and(|mnt| {
                let controllers = std::fs::read_to_string(format!("{mnt}/cgroup.controllers")).unwrap_or_default();
                controllers.split_whitespace().any(|c| c == "rdma")
            }),
            _ => false,
        }
    })
}

/// The first RDMA device of this host (the VM makes a soft-RoCE one, rxe0, on a dummy netdev).
fn rdma_device() -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/infiniband")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().next()
}

/// The rdma.max line of `dev` in the bundle's cgroup.
fn rdma_max_line(b: &Bundle, dev: &str) -> Option<String> {
    let text = cgroup_file(b, &["rdma.max"])?;
    text.lines().find(|l| l.split_whitespace().next() == Some(dev)).map(str::to_string)
}

#[test]
fn rdma_limits_land_in_rdma_max() {
    // runc's RdmaSet writes "DEVICE hca_handle=N hca_object=M" to rdma.max, leaving out a
    // field that is not given (the kernel keeps "max" there); runc's update ignores rdma.
    let Some(dev) = rdma_device().filter(|_| rdma_cgroup()) else {
        integration::skip("no rdma cgroup or no RDMA device here (the VM of make test-cgroup2 has both)");
        return;
    };
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["resources"]["rdma"] = json!({&dev: {"hcaHandles": 3, "hcaObjects": 100}}));
    with_created(&mut b, |b| {
        let want = format!("{dev} hca_handle=3 hca_object=100");
        assert_eq!(rdma_max_line(b, &dev).as_deref(), Some(want.as_str()), "create");
    });
    let rt = Runtime::new();
    let mut only_objects = Bundle::new();
    only_objects
        .edit(|c| c["linux"]["resources"]["rdma"] = json!({&dev: {"hcaObjects": 100}}))
        .args(&["sleep", "1000"]);
    let id = rt.create_and_start(&only_objects);
    let want = format!("{dev} hca_handle=max hca_object=100");
    assert_eq!(rdma_max_line(&only_objects, &dev).as_deref(), Some(want.as_str()), "hcaHandles not given");
    let update = format!(r#"{{"rdma": {{"{dev}": {{"hcaHandles": 1, "hcaObjects": 1}}}}}}"#);
    rt.exec_with_stdin(&["update", "-r", "-", &id], update.into_bytes()).assert_success();
    assert_eq!(rdma_max_line(&only_objects, &dev).as_deref(), Some(want.as_str()), "update -r changed rdma.max");
    rt.delete_force(&id).assert_success();
}

#[test]
fn an_unknown_rdma_device_is_refused_and_leaves_nothing() {
    // The kernel refuses an rdma.max line for a device it does not have (ENODEV).
    if !rdma_cgroup() {
        integration::skip("no rdma cgroup here (see rdma_is_refused_where_there_is_no_rdma_cgroup)");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    b.edit(|c| c["linux"]["resources"]["rdma"] = json!({"nosuchrdma0": {"hcaHandles": 3}}));
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    out.assert_failure().assert_stderr_contains("nosuchrdma0");
    if !integration::runtime_is_runc() {
        out.assert_stderr_contains(r#"linux.resources.rdma["nosuchrdma0"]"#).assert_stderr_contains("No such device");
    }
    assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new(), "the cgroup is left behind");
    assert_eq!(rt.list_ids(), Vec::<String>::new(), "the container is left behind");
}

#[test]
fn rdma_is_refused_where_there_is_no_rdma_cgroup() {
    // runc 1.1.5 on a host without an rdma controller: "cannot set rdma limit: container could
    // not join or create cgroup" for a non-empty map; an empty one is fine, and update -r
    // ignores rdma.
    if rdma_cgroup() {
        integration::skip("this host has an rdma cgroup (see an_unknown_rdma_device_is_refused_and_leaves_nothing)");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    b.edit(|c| c["linux"]["resources"]["rdma"] = json!({"rxe0": {"hcaHandles": 3, "hcaObjects": 100}}));
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    out.assert_failure();
    if integration::runtime_is_runc() {
        out.assert_stderr_contains("cannot set rdma limit");
    } else {
        out.assert_stderr_contains(r#"linux.resources.rdma["rxe0"]: no rdma cgroup on this host"#);
    }
    assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new(), "the cgroup is left behind");
    assert_eq!(rt.list_ids(), Vec::<String>::new(), "the container is left behind");
    let mut empty = Bundle::new();
    empty.edit(|c| c["linux"]["resources"]["rdma"] = json!({})).args(&["sleep", "1000"]);
    let id = rt.create_and_start(&empty);
    let update = br#"{"rdma": {"rxe0": {"hcaHandles": 1}}}"#.to_vec();
    rt.exec_with_stdin(&["update", "-r", "-", &id], update).assert_success();
    rt.delete_force(&id).assert_success();
}

/// True when the kernel has the BFQ I/O scheduler: every block device lists the schedulers the
/// kernel has, and BFQ's cgroup files (blkio.bfq.*, io.bfq.*) exist only then.
fn kernel_has_bfq() -> bool {
    let Ok(rd) = std::fs::read_dir("/sys/block") else { return false };
    rd.flatten().any(|d| {
        std::fs::read_to_string(d.path().join("queue/scheduler"))
            .is_ok_and(|s| s.split_whitespace().any(|w| w.trim_matches(['[', ']']) == "bfq"))
    })
}

/// On v1, runc writes the weight to BFQ's blkio.bfq.weight where the kernel has BFQ (CFQ's
/// blkio.weight went with Linux 5.0), at create and at `update --blkio-weight`. Without BFQ the
/// kernel cannot weight block I/O at all: create fails, names the field, and leaves nothing.
#[test]
fn block_io_weight_lands_in_blkio_bfq_weight_on_v1() {
    if !std::path::Path::new("/sys/fs/cgroup/blkio").is_dir() {
        integration::skip("no v1 blkio hierarchy on this host (v2: block_io_weight_lands_as_runc_converts_it_on_v2)");
        return;
    }
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["resources"]["blockIO"] = json!({"weight": 300}));
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new();
    let id = rt.new_id();
    if !kernel_has_bfq() {
        let out = rt.exec(&["create", "--bundle", b.path_str(), &id]);
        out.assert_failure();
        if !integration::runtime_is_runc() {
            out.assert_stderr_contains("linux.resources.blockIO.weight: this host's kernel cannot set it");
            out.assert_stderr_contains("the kernel has no BFQ I/O scheduler");
        }
        assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new(), "the cgroup is left behind");
        assert_eq!(rt.list_ids(), Vec::<String>::new(), "the container is left behind");
        integration::skip("the kernel has no BFQ scheduler: only the refusal is checked, not the weight");
        return;
    }
    rt.create_ok(&id, &b);
    let file = b.cgroup_dirs().into_iter().map(|d| d.join("blkio.bfq.weight")).find(|f| f.exists());
    let file = file.expect("BFQ is in the kernel, so the container's blkio cgroup has blkio.bfq.weight");
    let read = || std::fs::read_to_string(&file).expect("read blkio.bfq.weight").trim().to_string();
    assert_eq!(read(), "300", "{}", file.display());
    rt.exec(&["update", "--blkio-weight", "400", &id]).assert_success();
    assert_eq!(read(), "400", "{}", file.display());
    rt.delete_force(&id).assert_success();
}

/// A loop device on a scratch file, detached on drop.
struct LoopDevice(String);

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// blockIO.weightDevice on v1: BFQ takes a per-device weight only for a device BFQ schedules,
/// so the test makes a loop device of its own and gives it BFQ (no host disk is touched).
#[test]
fn block_io_weight_device_lands_in_blkio_bfq_weight_device_on_v1() {
    if !std::path::Path::new("/sys/fs/cgroup/blkio").is_dir() {
        integration::skip("no v1 blkio hierarchy on this host");
        return;
    }
    let rt = Runtime::new();
    let img = rt.scratch().join("bfq.img");
    std::fs::File::create(&img).and_then(|f| f.set_len(16 << 20)).expect("make the loop image");
    let out = std::process::Command::new("losetup").args(["-f", "--show"]).arg(&img).output().expect("run losetup");
    assert!(out.status.success(), "losetup: {}", String::from_utf8_lossy(&out.stderr));
    let dev = LoopDevice(String::from_utf8_lossy(&out.stdout).trim().to_string());
    let name = dev.0.trim_start_matches("/dev/");
    let scheduler = format!("/sys/block/{name}/queue/scheduler");
    if std::fs::write(&scheduler, "bfq").is_err() {
        integration::skip(format!("the kernel has no BFQ scheduler for {}", dev.0));
        return;
    }
    let numbers = std::fs::read_to_string(format!("/sys/block/{name}/dev")).expect("read the device numbers");
    let (major, minor) = numbers.trim().split_once(':').expect("MAJ:MIN");
    let (major, minor): (u64, u64) = (major.parse().unwrap(), minor.parse().unwrap());
    let mut b = Bundle::new();
    b.edit(|c| {
        c["linux"]["resources"]["blockIO"] = json!({"weightDevice": [{"major": major, "minor": minor, "weight": 500}]})
    })
    .args(&["sleep", "1000"]);
    let id = rt.new_id();
    rt.create_ok(&id, &b);
    let text = b.cgroup_value(&["blkio.bfq.weight_device"]);
    rt.delete_force(&id).assert_success();
    assert!(text.lines().any(|l| l == format!("{major}:{minor} 500")), "blkio.bfq.weight_device: {text:?}");
}
