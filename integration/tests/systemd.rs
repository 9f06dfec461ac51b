//! The systemd cgroup driver (`--systemd-cgroup`) seen from outside: the container is a scope
//! unit in its slice (nested slices made when missing) with Delegate=yes and the limits systemd
//! knows as unit properties, in the cgroup files too; update changes both; delete (also after a
//! killed create) leaves no unit and no cgroup. Only where pid 1 is systemd (`make
//! test-systemd`, which sets SKIFF_IT_SYSTEMD=1); against runc too. On a cgroup v2 host (the
//! default) and a hybrid or legacy one (`SD_CGROUP=hybrid|legacy make test-systemd`), where the
//! properties are the v1 ones (MemoryLimit, CPUShares) and each controller has its hierarchy.

use integration::host::{systemctl, unit_property, wait_until};
use integration::{Bundle, Runtime};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn have_systemd() -> bool {
    if std::env::var_os("SKIFF_IT_SYSTEMD").is_some_and(|v| v == "1") {
        return true;
    }
    integration::skip("pid 1 is not systemd here (make test-systemd runs these in a VM)");
    false
}

/// True where /sys/fs/cgroup is the cgroup v2 hierarchy.
fn unified() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// The property systemd has for the memory limit: MemoryMax on v2, MemoryLimit on v1.
fn memory_limit_property() -> &'static str {
    if unified() {
        "MemoryMax"
    } else {
        "MemoryLimit"
    }
}

/// The file `name` of the cgroup `cg` (a ControlGroup property's value): in the v2 hierarchy,
/// or on v1 in the hierarchy of the controller the name starts with (cgroup.procs in systemd's
/// own, name=systemd).
fn cg_file(cg: &str, name: &str) -> PathBuf {
    let root = Path::new("/sys/fs/cgroup");
    let rel = cg.trim_start_matches('/');
    if unified() {
        return root.join(rel).join(name);
    }
    let controller = match name.split('.').next() {
        Some("cgroup") | None => "systemd",
        Some(c) => c,
    };
    root.join(controller).join(rel).join(name)
}

/// `cg_file`'s content, trimmed ("" when it cannot be read).
fn read_cg(cg: &str, name: &str) -> String {
    std::fs::read_to_string(cg_file(cg, name)).unwrap_or_default().trim().to_string()
}

/// The directories of the cgroup `cg` that exist, in every hierarchy.
fn cg_dirs_left(cg: &str) -> Vec<PathBuf> {
    let rel = cg.trim_start_matches('/');
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if !unified() {
        roots = std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten().map(|e| e.path()).collect();
    }
    roots.into_iter().map(|r| r.join(rel)).filter(|d| d.is_dir()).collect()
}

/// A container of its own slice three levels deep (`skiffsd-n-UNIQUE.slice`, so systemd has to
/// make skiffsd.slice and skiffsd-n.slice too); Drop stops the leaf slice.
struct Scoped {
    rt: Runtime,
    b: Bundle,
    id: String,
    slice: String,
    unit: String,
}

impl Scoped {
    fn new(resources: serde_json::Value) -> Scoped {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        let u = integration::unique_name("sd").replace('-', "_");
        let slice = format!("skiffsd-n-{u}.slice");
        b.args(&["sleep", "1000"]).edit(|c| {
            c["linux"]["cgroupsPath"] = json!(format!("{slice}:it:{u}"));
            c["linux"]["resources"] = resources;
        });
        let id = rt.new_id();
        Scoped { rt, b, id, slice, unit: format!("it-{u}.scope") }
    }

    fn sd(&self, args: &[&str]) -> integration::Output {
        let mut all = vec!["--systemd-cgroup"];
        all.extend_from_slice(args);
        self.rt.exec(&all)
    }

    /// The scope's cgroup, from systemd's ControlGroup property.
    fn cgroup(&self) -> String {
        let cg = unit_property(&self.unit, "ControlGroup");
        assert!(!cg.is_empty(), "{} has no ControlGroup", self.unit);
        cg
    }

    /// The scope's file `name` (in its controller's hierarchy on v1).
    fn file(&self, name: &str) -> String {
        let p = cg_file(&self.cgroup(), name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())).trim().to_string()
    }

    fn prop(&self, name: &str) -> String {
        unit_property(&self.unit, name)
    }

    /// No unit, no cgroup directory (systemd forgets a stopped scope: LoadState not-found).
    #[track_caller]
    fn assert_gone(&self) {
        wait_until(&format!("{} to be gone", self.unit), || (self.prop("LoadState") == "not-found").then_some(()));
        let cg = format!("/skiffsd.slice/skiffsd-n.slice/{}/{}", self.slice, self.unit);
        let left = cg_dirs_left(&cg);
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

impl Drop for Scoped {
    fn drop(&mut self) {
        let _ = self.rt.try_exec_cmd(self.rt.command(&["--systemd-cgroup", "delete", "--force", &self.id]), None);
        systemctl(&["stop", &self.unit]);
        systemctl(&["reset-failed", &self.unit]);
        systemctl(&["stop", &self.slice]);
    }
}

#[test]
fn a_container_is_a_scope_in_its_slices_with_its_limits() {
    if !have_systemd() {
        return;
    }
    let s = Scoped::new(json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 50},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0"}
    }));
    s.sd(&["create", "--bundle", s.b.path_str(), &s.id]).assert_success();
    s.sd(&["start", &s.id]).assert_success();
    let pid = s.rt.pid(&s.id);
    assert_eq!(s.prop("ActiveState"), "active");
    assert_eq!(s.prop("Slice"), s.slice);
    assert_eq!(s.prop("Delegate"), "yes");
    // The nested slice naming: skiffsd-n-U.slice is in skiffsd-n.slice in skiffsd.slice.
    let want = format!("/skiffsd.slice/skiffsd-n.slice/{}/{}", s.slice, s.unit);
    assert_eq!(s.prop("ControlGroup"), want);
    assert_eq!(unit_property(&s.slice, "ActiveState"), "active", "the slice was made");
    // The limits, as unit properties and in the files.
    assert_eq!(s.prop(memory_limit_property()), "67108864");
    assert_eq!(s.prop("TasksMax"), "50");
    assert_eq!(s.prop("CPUQuotaPerSecUSec"), "500ms");
    if !unified() {
        assert_eq!(s.prop("CPUShares"), "1024");
    } else if !integration::runtime_is_runc() {
        // runc 1.1 sets CPUWeight on v2 only from unified cpu.weight; AllowedCPUs too.
        assert_eq!(s.prop("CPUWeight"), "39");
        assert_eq!(s.prop("AllowedCPUs"), "0");
    }
    if unified() {
        assert_eq!(s.file("memory.max"), "67108864");
        assert_eq!(s.file("cpu.max"), "50000 100000");
        assert_eq!(s.file("cpu.weight"), "39");
    } else {
        assert_eq!(s.file("memory.limit_in_bytes"), "67108864");
        assert_eq!(s.file("cpu.cfs_quota_us"), "50000");
        assert_eq!(s.file("cpu.cfs_period_us"), "100000");
        assert_eq!(s.file("cpu.shares"), "1024");
    }
    assert_eq!(s.file("pids.max"), "50");
    // On v1 systemd has no cpuset hierarchy of its own: the runtime made the scope's there.
    assert_eq!(s.file("cpuset.cpus"), "0");
    // The container's processes are in the scope: its cgroup.procs, ps, /proc/PID/cgroup.
    assert!(
        s.file("cgroup.procs").lines().any(|l| l == pid.to_string()),
        "pid {pid} not in {}",
        s.file("cgroup.procs")
    );
    let ps = s.sd(&["ps", "--format", "json", &s.id]);
    ps.assert_success();
    assert!(ps.stdout.contains(&pid.to_string()), "ps: {ps}");
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/PID/cgroup");
    assert!(own.contains(&want), "{pid} is in {own}");
    s.sd(&["delete", "--force", &s.id]).assert_success();
    s.assert_gone();
}

#[test]
fn a_container_without_resources_or_slice_gets_the_defaults() {
    if !have_systemd() {
        return;
    }
    // ":prefix:name": system.slice, as runc.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let u = integration::unique_name("sd").replace('-', "_");
    b.args(&["sleep", "1000"]).edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!(":it:{u}"));
        c["linux"]["resources"] = json!({});
    });
    let unit = format!("it-{u}.scope");
    let id = rt.new_id();
    rt.exec(&["--systemd-cgroup", "run", "--detach", "--bundle", b.path_str(), &id]).assert_success();
    assert_eq!(unit_property(&unit, "Slice"), "system.slice");
    assert_eq!(unit_property(&unit, "ActiveState"), "active");
    assert_eq!(unit_property(&unit, "ControlGroup"), format!("/system.slice/{unit}"));
    rt.exec(&["--systemd-cgroup", "kill", &id, "KILL"]).assert_success();
    rt.wait_for_status(&id, "stopped");
    rt.exec(&["--systemd-cgroup", "delete", &id]).assert_success();
    wait_until("the unit to be gone", || (unit_property(&unit, "LoadState") == "not-found").then_some(()));
    systemctl(&["reset-failed", &unit]);
}

#[test]
fn update_changes_the_units_properties_and_files() {
    if !have_systemd() {
        return;
    }
    let s = Scoped::new(json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}}));
    s.sd(&["run", "--detach", "--bundle", s.b.path_str(), &s.id]).assert_success();
    let up = s.sd(&[
        "update",
        "--memory",
        "128M",
        "--pids-limit",
        "20",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "100000",
        &s.id,
    ]);
    up.assert_success();
    assert_eq!(s.prop(memory_limit_property()), "134217728");
    assert_eq!(s.prop("TasksMax"), "20");
    assert_eq!(s.prop("CPUQuotaPerSecUSec"), "200ms");
    let memory_file = if unified() { "memory.max" } else { "memory.limit_in_bytes" };
    assert_eq!(s.file(memory_file), "134217728");
    assert_eq!(s.file("pids.max"), "20");
    if unified() {
        assert_eq!(s.file("cpu.max"), "20000 100000");
    } else {
        assert_eq!(s.file("cpu.cfs_quota_us"), "20000");
    }
    // A daemon-reload makes systemd apply its properties to the cgroup again: the limits hold.
    systemctl(&["daemon-reload"]).expect("systemctl daemon-reload");
    assert_eq!(s.file(memory_file), "134217728");
    assert_eq!(s.file("pids.max"), "20");
    s.sd(&["delete", "--force", &s.id]).assert_success();
    s.assert_gone();
}

#[test]
fn pause_and_resume_freeze_the_scope() {
    if !have_systemd() {
        return;
    }
    let s = Scoped::new(json!({}));
    s.sd(&["run", "--detach", "--bundle", s.b.path_str(), &s.id]).assert_success();
    let frozen = |yes: bool| {
        if unified() {
            s.file("cgroup.events").lines().any(|l| l == if yes { "frozen 1" } else { "frozen 0" })
        } else {
            s.file("freezer.state") == if yes { "FROZEN" } else { "THAWED" }
        }
    };
    s.sd(&["pause", &s.id]).assert_success();
    assert!(frozen(true), "not frozen");
    assert_eq!(s.rt.status(&s.id), "paused");
    s.sd(&["resume", &s.id]).assert_success();
    assert!(frozen(false), "still frozen");
    // A paused container is deleted with --force too: thawed, killed, the unit stopped.
    s.sd(&["pause", &s.id]).assert_success();
    s.sd(&["delete", "--force", &s.id]).assert_success();
    s.assert_gone();
}

#[test]
fn a_killed_create_leaves_nothing_delete_force_cannot_remove() {
    if !have_systemd() {
        return;
    }
    // SIGKILL `create` after a growing delay: before the state, around the unit's start, after
    // the init is ready. delete --force must always leave no unit, cgroup, process or state.
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 80, 160, 320] {
        let s = Scoped::new(json!({"pids": {"limit": 30}}));
        let mut child =
            s.rt.command(&["--systemd-cgroup", "create", "--bundle", s.b.path_str(), &s.id])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn create");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        s.sd(&["delete", "--force", &s.id]).assert_success();
        assert!(!s.rt.list_ids().contains(&s.id), "{delay_ms} ms: the container is still listed");
        s.assert_gone();
        // Nothing of it left running: no process of the bundle's rootfs.
        let rootfs = s.b.rootfs();
        wait_until(&format!("{delay_ms} ms: the container's processes to exit"), || {
            let left = integration::processes_rooted_at(&rootfs);
            (left == 0).then_some(())
        });
    }
}

#[test]
fn systemd_property_annotations_are_unit_properties() {
    if !have_systemd() {
        return;
    }
    // runc's org.systemd.property.NAME: a GVariant value; NAME...Sec is sent as ...USec.
    let mut s = Scoped::new(json!({}));
    s.b.edit(|c| {
        c["annotations"] = json!({
            "org.systemd.property.CollectMode": "'inactive-or-failed'",
            "org.systemd.property.TimeoutStopSec": "uint64 7",
            "org.systemd.property.RuntimeMaxUSec": "@t 3600000000",
        })
    });
    s.sd(&["run", "--detach", "--bundle", s.b.path_str(), &s.id]).assert_success();
    assert_eq!(s.prop("ActiveState"), "active");
    assert_eq!(s.prop("CollectMode"), "inactive-or-failed");
    assert_eq!(s.prop("TimeoutStopUSec"), "7s");
    assert_eq!(s.prop("RuntimeMaxUSec"), "1h");
    s.sd(&["delete", "--force", &s.id]).assert_success();
    s.assert_gone();
    // A value that is not GVariant text is refused, naming the annotation; nothing is left.
    let mut s = Scoped::new(json!({}));
    s.b.edit(|c| c["annotations"] = json!({"org.systemd.property.CollectMode": "inactive"}));
    let out = s.sd(&["create", "--bundle", s.b.path_str(), &s.id]);
    out.assert_failure();
    if !integration::runtime_is_runc() {
        out.assert_stderr_contains("annotations[\"org.systemd.property.CollectMode\"]");
    }
    assert!(!s.rt.list_ids().contains(&s.id), "the container is left behind");
    assert_eq!(s.prop("LoadState"), "not-found", "the unit was started");
}

#[test]
fn a_bad_cgroups_path_is_refused_and_leaves_nothing() {
    if !have_systemd() {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["cgroupsPath"] = json!("/not/systemd/form"));
    let id = rt.new_id();
    let out = rt.exec(&["--systemd-cgroup", "create", "--bundle", b.path_str(), &id]);
    out.assert_failure().assert_stderr_contains("slice:prefix:name");
    assert!(rt.list_ids().is_empty(), "the container is left behind");
}

#[test]
fn containerd_runs_the_runtime_with_systemd_cgroups() {
    use integration::engines::{eventually, Engine, Kind, IMAGE};
    if !have_systemd() {
        return;
    }
    // containerd's shim gives the runtime --systemd-cgroup on every command when the runc
    // options say SystemdCgroup = true: `ctr run --runc-systemd-cgroup` sets them per container
    // (the CRI plugin sets them from its config's SystemdCgroup = true).
    let Some(c) = Engine::start(Kind::Containerd) else { return };
    let u = integration::unique_name("ctr").replace('-', "_");
    let slice = format!("skiffsd-ctr_{u}.slice");
    let unit = format!("ctr-{u}.scope");
    let cgroup = format!("{slice}:ctr:{u}");
    let log = c.dir().join("out.log");
    let uri = format!("file://{}", log.display());
    let run = c.run(&[
        "run",
        "-d",
        "--runc-systemd-cgroup",
        "--cgroup",
        &cgroup,
        "--memory-limit",
        "67108864",
        "--log-uri",
        &uri,
        IMAGE,
        &u,
        "sh",
        "-c",
        "echo started; cat /proc/self/cgroup; sleep 1000",
    ]);
    run.ok();
    eventually("the container to print", || std::fs::read_to_string(&log).unwrap_or_default().contains("started"));
    assert!(c.runtime_state(&u).is_some(), "the runtime under test does not know {u}: not run through it");
    assert_eq!(unit_property(&unit, "ActiveState"), "active");
    assert_eq!(unit_property(&unit, "Slice"), slice);
    assert_eq!(unit_property(&unit, memory_limit_property()), "67108864");
    let cg = format!("/skiffsd.slice/{slice}/{unit}");
    let memory_file = if unified() { "memory.max" } else { "memory.limit_in_bytes" };
    assert_eq!(read_cg(&cg, memory_file), "67108864");
    let own = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(own.contains(&unit), "the container's /proc/self/cgroup: {own}");
    c.run(&["task", "kill", "-s", "SIGKILL", &u]).ok();
    eventually("the task to stop", || !c.run(&["task", "ls"]).stdout.contains(" RUNNING"));
    c.run(&["task", "rm", &u]).ok();
    c.run(&["containers", "rm", &u]).ok();
    wait_until("the scope to be gone", || (unit_property(&unit, "LoadState") == "not-found").then_some(()));
    let left = cg_dirs_left(&cg);
    assert!(left.is_empty(), "left behind: {left:?}");
    systemctl(&["stop", &slice]);
}

/// Stops a slice the test's units were in (systemd keeps a slice it made until told).
struct SliceGuard(String);

impl Drop for SliceGuard {
    fn drop(&mut self) {
        systemctl(&["stop", &self.0]);
    }
}

#[test]
fn containerd_cri_with_systemd_cgroup_true_runs_pods_in_scopes() {
    use integration::engines::{eventually, Engine, CRI_HANDLER, IMAGE};
    if !have_systemd() {
        return;
    }
    // containerd's CRI plugin as kubelet drives it, the runtime under test as the runtime of the
    // README's snippet with SystemdCgroup = true: the shim gives it --systemd-cgroup and the CRI
    // plugin gives each container the cgroupsPath SLICE:cri-containerd:ID of its pod's
    // cgroup_parent (a .slice, as the kubelet's systemd cgroup driver sends).
    let Some(c) = Engine::containerd_cri(true) else { return };
    let u = integration::unique_name("cri").replace('-', "_");
    let slice = format!("skiffsd-cri_{u}.slice");
    let _slice = SliceGuard(slice.clone());
    let cri = |method: &str, req: serde_json::Value| {
        c.cri(method, req).unwrap_or_else(|e| panic!("{e}\ncontainerd's log:\n{}", c.daemon_log()))
    };
    let logs = c.dir().join("logs");
    let sandbox = json!({
        "metadata": {"name": format!("pod-{u}"), "uid": u, "namespace": "default"},
        "log_directory": logs.to_string_lossy(),
        "linux": {
            "cgroup_parent": slice,
            // host network: no CNI plugin needed
            "security_context": {"namespace_options": {"network": 2, "pid": 0, "ipc": 0}}
        }
    });
    let pod = cri("RunPodSandbox", json!({"config": sandbox, "runtime_handler": CRI_HANDLER}));
    let pod = pod["pod_sandbox_id"].as_str().expect("pod_sandbox_id").to_string();
    let pod_unit = format!("cri-containerd-{pod}.scope");
    assert_eq!(unit_property(&pod_unit, "ActiveState"), "active", "the sandbox's scope");
    assert_eq!(unit_property(&pod_unit, "Slice"), slice);
    let created = cri(
        "CreateContainer",
        json!({
            "pod_sandbox_id": pod,
            "config": {
                "metadata": {"name": "limited"},
                "image": {"image": IMAGE},
                "command": ["sh", "-c", "echo started; exec sleep 1000"],
                "log_path": "limited.log",
                "linux": {"resources": {
                    "memory_limit_in_bytes": 67108864, "cpu_quota": 50000, "cpu_period": 100000, "cpu_shares": 512
                }}
            },
            "sandbox_config": sandbox
        }),
    );
    let id = created["container_id"].as_str().expect("container_id").to_string();
    cri("StartContainer", json!({"container_id": id}));
    let log = logs.join("limited.log");
    eventually("the container to print", || std::fs::read_to_string(&log).unwrap_or_default().contains("started"));
    let status = cri("ContainerStatus", json!({"container_id": id}));
    assert_eq!(status["status"]["state"], json!(1), "CONTAINER_RUNNING: {status}");
    assert!(c.runtime_state(&id).is_some(), "the runtime under test does not know {id}: not run through it");
    // The container's scope, in the pod's slice, with the pod's limits as properties and files.
    let unit = format!("cri-containerd-{id}.scope");
    assert_eq!(unit_property(&unit, "ActiveState"), "active");
    assert_eq!(unit_property(&unit, "Slice"), slice);
    assert_eq!(unit_property(&unit, memory_limit_property()), "67108864");
    assert_eq!(unit_property(&unit, "CPUQuotaPerSecUSec"), "500ms");
    let cg = unit_property(&unit, "ControlGroup");
    assert_eq!(cg, format!("/skiffsd.slice/{slice}/{unit}"));
    if unified() {
        assert_eq!(read_cg(&cg, "memory.max"), "67108864");
        assert_eq!(read_cg(&cg, "cpu.max"), "50000 100000");
    } else {
        assert_eq!(read_cg(&cg, "memory.limit_in_bytes"), "67108864");
        assert_eq!(read_cg(&cg, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read_cg(&cg, "cpu.shares"), "512");
    }
    // Its process is in the scope (seen from the host: on v2 the CRI gives it a cgroup namespace).
    let state = c.runtime_state(&id).unwrap_or_default();
    let pid = state["pid"].as_i64().unwrap_or_else(|| panic!("no pid in the runtime's state: {state}"));
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    assert!(own.contains(&format!("/{slice}/{unit}")), "the container's init {pid} is in {own}");
    // Stop (SIGTERM ends the sleep) and remove: the scope goes with the container.
    cri("StopContainer", json!({"container_id": id, "timeout": 30}));
    let status = cri("ContainerStatus", json!({"container_id": id}));
    assert_eq!(status["status"]["state"], json!(2), "CONTAINER_EXITED: {status}");
    cri("RemoveContainer", json!({"container_id": id}));
    wait_until("the container's scope to be gone", || (unit_property(&unit, "LoadState") == "not-found").then_some(()));
    let left = cg_dirs_left(&cg);
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(c.runtime_state(&id).is_none(), "the runtime still has {id}");
    cri("StopPodSandbox", json!({"pod_sandbox_id": pod}));
    cri("RemovePodSandbox", json!({"pod_sandbox_id": pod}));
    wait_until("the sandbox's scope to be gone", || {
        (unit_property(&pod_unit, "LoadState") == "not-found").then_some(())
    });
    assert!(c.runtime_state(&pod).is_none(), "the runtime still has the sandbox {pod}");
}

/// `slipway build --cgroup-parent SLICE:PREFIX:` (BuildKit's systemd form; dockerd's systemd
/// driver passes `system.slice:docker:`): slipway runs the runtime with `--systemd-cgroup` and
/// each RUN step gets the cgroupsPath `SLICE:PREFIX:<container>`, so the step is the scope unit
/// `PREFIX-<container>.scope` in that slice (its /proc/self/cgroup, written while it ran, shows
/// both, and the limit it reads is `-m`'s), and the unit and its cgroup are gone once the step
/// ends. Through skiff and, where it is installed (the VM has Debian's), runc.
#[test]
fn slipway_runs_steps_as_scopes_of_a_systemd_cgroup_parent() {
    use integration::slipway::Slipway;
    if !have_systemd() {
        return;
    }
    let mut runtimes: Vec<PathBuf> = Vec::new();
    for r in [
        integration::runtime_path(),
        integration::workspace_dir().join("target/release/skiff"),
        PathBuf::from("/usr/sbin/runc"),
    ] {
        if r.is_file() && !runtimes.contains(&r) {
            runtimes.push(r);
        }
    }
    let s = Slipway::new();
    s.base("base:1");
    // the limit where the step sees it: skiff mounts its own cgroup at /sys/fs/cgroup; runc
    // (no cgroup namespace) the v2 hierarchy's root, where the step's is at its own path; v1
    let df = "FROM base:1\n\
              RUN cat /proc/self/cgroup > /cgroup && p=$(sed -n 's/^0:://p' /proc/self/cgroup) && \
                  (cat /sys/fs/cgroup/memory.max || cat /sys/fs/cgroup$p/memory.max || \
                   cat /sys/fs/cgroup/memory/memory.limit_in_bytes) 2>/dev/null > /limit\n";
    let ctx = s.context("sd", &[("Dockerfile", df)]);
    for (n, rt) in runtimes.iter().enumerate() {
        let u = integration::unique_name("slw").replace('-', "_");
        let slice = format!("skiffsd-{u}.slice");
        let _slice = SliceGuard(slice.clone());
        let parent = format!("{slice}:slipwayit:");
        let tag = format!("sd:{n}");
        let rt = rt.to_string_lossy();
        let args = ["build", "-t", &tag, "--runtime", &rt, "--network", "none", "--no-cache"];
        let ctx = ctx.to_string_lossy();
        let r = s.run(&[&args[..], &["--cgroup-parent", &parent, "-m", "64m", &ctx]].concat());
        assert_eq!(r.code, 0, "{rt}: stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
        let img = s.save(&tag);
        let f = |p: &str| img.find(p).map(|e| String::from_utf8_lossy(&e.data).into_owned()).unwrap_or_default();
        let cgroup = f("cgroup");
        // systemd's own tree: the v2 line, or name=systemd's on v1 (hybrid keeps it on cgroup2,
        // also as its 0:: line)
        let path = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::").or_else(|| l.split_once(":name=systemd:").map(|(_, p)| p)))
            .unwrap_or_else(|| panic!("{rt}: no systemd cgroup in {cgroup}"));
        let want_dir = format!("/skiffsd.slice/{slice}/slipwayit-slipway-");
        assert!(path.starts_with(&want_dir) && path.ends_with(".scope"), "{rt}: {path} (all: {cgroup})");
        let unit = path.rsplit('/').next().unwrap_or_default().to_string();
        assert_eq!(f("limit").trim(), "67108864", "{rt}: the step's memory limit");
        // the unit went with the step, and its cgroup; the slice stays until the guard
        wait_until(&format!("{unit} to be gone"), || (unit_property(&unit, "LoadState") == "not-found").then_some(()));
        assert!(cg_dirs_left(path).is_empty(), "{rt}: {path} left: {:?}", cg_dirs_left(path));
        assert_eq!(unit_property(&slice, "LoadState"), "loaded", "{rt}: the slice the step was in");
    }
}
