//! `RUN --device` (CDI devices, Dockerfile labs) through slipway and a real runtime: a spec dir
//! the test writes (`--cdi-spec-dir`), a device that injects an environment variable, a device
//! node with /dev/null's numbers at new paths (one in /dev, one in the rootfs) and a bind mount
//! of a test file. What the step saw is written to files of the image and read from the outside;
//! no layer holds the node or the mount. Then BuildKit's rules: the mainline frontend's refusal,
//! required and optional devices, the `device` entitlement and auto-allowed devices, the cache
//! key, and spec errors naming the file and the field.

use integration::slipway::{Saved, Slipway};
use std::fs;
use std::path::{Path, PathBuf};

const LABS: &str = "# syntax=docker/dockerfile:1-labs\n";

fn text(img: &Saved, p: &str) -> String {
    let e = img.find(p).unwrap_or_else(|| panic!("{p} not in any layer"));
    String::from_utf8_lossy(&e.data).into_owned()
}

fn paths(img: &Saved) -> Vec<String> {
    img.layers.iter().flatten().map(|e| e.path.trim_end_matches('/').to_string()).collect()
}

/// A spec dir in the test's scratch space with the test's devices, and the file one mounts.
fn spec_dir(s: &Slipway) -> (PathBuf, PathBuf) {
    let dir = s.dir.path().join("cdi");
    fs::create_dir_all(&dir).unwrap();
    let data = s.dir.path().join("cdi-data.txt");
    fs::write(&data, "from the host\n").unwrap();
    // YAML, as BuildKit's docs write it: the spec's own edits, a device with every edit the
    // test checks, and one its spec lets every build have
    let spec = format!(
        "cdiVersion: \"0.6.0\"\nkind: slipway.test/dev\ncontainerEdits:\n  env:\n  - SPEC_WIDE=1\ndevices:\n\
         - name: one\n  containerEdits:\n    env:\n    - SLIPWAY_CDI=injected\n    deviceNodes:\n\
         \x20   - path: /dev/slipway-test0\n      hostPath: /dev/null\n\
         \x20   - path: /opt/node0\n      hostPath: /dev/null\n      fileMode: 0640\n\
         \x20   mounts:\n    - hostPath: {}\n      containerPath: /opt/cdi/data.txt\n      options: [ro, bind]\n\
         - name: free\n  annotations:\n    org.mobyproject.buildkit.device.autoallow: \"true\"\n  containerEdits:\n\
         \x20   env:\n    - FREE=yes\n",
        data.display()
    );
    fs::write(dir.join("slipway-test.yaml"), spec).unwrap();
    (dir, data)
}

fn setup(name: &str, df: &str) -> (Slipway, PathBuf, String) {
    let s = Slipway::new();
    s.base("bb");
    let (dir, _) = spec_dir(&s);
    let ctx = s.context(name, &[("Dockerfile", df)]);
    (s, ctx, dir.to_string_lossy().into_owned())
}

/// Steps that ran (not cache hits) in a build's log.
fn ran(log: &str) -> usize {
    log.lines().filter(|l| l.contains("---> Running in")).count()
}

#[test]
fn a_device_gives_the_step_its_env_nodes_and_mounts_and_no_layer_keeps_them() {
    let df = format!(
        "{LABS}FROM bb\nRUN --device=slipway.test/dev=one sh -c '\
         echo \"$SLIPWAY_CDI $SPEC_WIDE\" > /env.txt; \
         stat -c \"%t %T %F\" /dev/slipway-test0 > /node.txt; \
         echo hi > /dev/slipway-test0 && echo writable >> /node.txt; \
         stat -c \"%t %T %F %a\" /opt/node0 > /node2.txt; \
         cat /opt/cdi/data.txt > /mount.txt; \
         (echo x > /opt/cdi/data.txt) 2>/dev/null || echo read-only >> /mount.txt'\n"
    );
    let (s, ctx, dir) = setup("one", &df);
    let r = s.build(&ctx, "cdi:1", &["--cdi-spec-dir", &dir, "--allow", "device"]).ok();
    assert_eq!(ran(&r.stdout), 1, "{}", r.stdout);
    let img = s.save("cdi:1");
    assert_eq!(text(&img, "env.txt"), "injected 1\n", "the device's env and its spec's");
    // /dev/null's numbers, and the cgroup rule that lets the step write it
    assert_eq!(text(&img, "node.txt"), "1 3 character special file\nwritable\n");
    assert_eq!(text(&img, "node2.txt"), "1 3 character special file 640\n", "fileMode as YAML's octal 0640");
    assert_eq!(text(&img, "mount.txt"), "from the host\nread-only\n");
    // the nodes and the mount point are the runtime's, not the step's: no layer has them
    let all = paths(&img);
    for p in ["dev/slipway-test0", "opt", "opt/node0", "opt/cdi", "opt/cdi/data.txt"] {
        assert!(!all.iter().any(|x| x == p), "{p} is in a layer: {all:?}");
    }
    assert!(img.layers.iter().flatten().all(|e| e.kind != 'c'), "no device node in any layer");

    // the device is part of the step's key: the same build is a cache hit, another device not
    let again = s.build(&ctx, "cdi:1", &["--cdi-spec-dir", &dir, "--allow", "device"]).ok();
    assert_eq!(ran(&again.stdout), 0, "{}", again.stdout);
    let other = df.replace("slipway.test/dev=one", "slipway.test/dev=one --device=slipway.test/dev=free");
    let ctx2 = s.context("one-free", &[("Dockerfile", &other)]);
    let r = s.build(&ctx2, "cdi:2", &["--cdi-spec-dir", &dir, "--allow", "device"]).ok();
    assert_eq!(ran(&r.stdout), 1, "another device set is another key: {}", r.stdout);
}

/// A device's hooks run as the runtime runs OCI hooks (here on the host, where the test reads
/// what the hook wrote), and its additional gids are the step's.
#[test]
fn a_device_adds_hooks_and_groups() {
    let df = format!("{LABS}FROM bb\nRUN --device=slipway.test/extra=hooked sh -c 'id -G > /gids'\n");
    let (s, ctx, dir) = setup("hooks", &df);
    let marker = s.dir.path().join("hook-ran");
    let spec = serde_json::json!({
        "cdiVersion": "0.7.0", "kind": "slipway.test/extra",
        "devices": [{"name": "hooked", "containerEdits": {
            "additionalGids": [0, 44],
            "hooks": [{"hookName": "createRuntime", "path": "/bin/sh",
                       "args": ["sh", "-c", format!("echo $CDI_HOOK > {}", marker.display())],
                       "env": ["CDI_HOOK=from-the-spec"], "timeout": 10}]
        }}]
    });
    fs::write(Path::new(&dir).join("extra.json"), spec.to_string()).unwrap();
    s.build(&ctx, "cdi:hooks", &["--cdi-spec-dir", &dir, "--allow", "device"]).ok();
    assert_eq!(fs::read_to_string(&marker).unwrap_or_default(), "from-the-spec\n", "the hook ran with its env");
    let gids = text(&s.save("cdi:hooks"), "gids");
    assert_eq!(gids.split_whitespace().collect::<Vec<_>>(), ["0", "44"], "{gids}");
}

#[test]
fn the_mainline_frontend_refuses_devices_as_buildkits_does() {
    let s = Slipway::new();
    s.base("bb");
    let (dir, _) = spec_dir(&s);
    let dir = dir.to_string_lossy().into_owned();
    for syntax in ["", "# syntax=docker/dockerfile:1\n", "# syntax=docker/dockerfile:1.14\n"] {
        let df = format!("{syntax}FROM bb\nRUN --device=slipway.test/dev=free true\n");
        let ctx = s.context("mainline", &[("Dockerfile", &df)]);
        let r = s.build(&ctx, "cdi:mainline", &["--cdi-spec-dir", &dir]);
        assert_ne!(r.code, 0, "{syntax:?}");
        let line = if syntax.is_empty() { 2 } else { 3 };
        assert!(
            r.stderr.contains(&format!(
                "Dockerfile:{line}: device feature is only supported in Dockerfile frontend 1.14.0-labs or later"
            )),
            "{syntax:?}: {}",
            r.stderr
        );
    }
    // every labs image of the frontend takes it, the build arg's too
    for syntax in ["docker/dockerfile:1.14-labs", "docker.io/docker/dockerfile-upstream:master-labs"] {
        let df = format!("# syntax={syntax}\nFROM bb\nRUN --device=slipway.test/dev=free sh -c 'echo $FREE > /free'\n");
        let ctx = s.context("labs", &[("Dockerfile", &df)]);
        s.build(&ctx, "cdi:labs", &["--cdi-spec-dir", &dir]).ok();
        assert_eq!(text(&s.save("cdi:labs"), "free"), "yes\n", "{syntax}");
    }
    let ctx =
        s.context("arg", &[("Dockerfile", "FROM bb\nRUN --device=slipway.test/dev=free sh -c 'echo $FREE > /free'\n")]);
    s.build(&ctx, "cdi:arg", &["--cdi-spec-dir", &dir, "--build-arg", "BUILDKIT_SYNTAX=docker/dockerfile:labs"]).ok();
    // flags parse in every frontend, with BuildKit's messages
    let ctx = s.context("bad", &[("Dockerfile", "FROM bb\nRUN --device=a,b true\n")]);
    let r = s.build(&ctx, "cdi:bad", &[]);
    assert!(r.code != 0 && r.stderr.contains("invalid field 'b' must be a key=value pair"), "{}", r.stderr);
}

#[test]
fn a_required_device_must_exist_and_an_optional_one_is_skipped() {
    let df = format!("{LABS}FROM bb\nRUN echo before > /before\nRUN --device=slipway.test/dev=nope,required true\n");
    let (s, ctx, dir) = setup("required", &df);
    let r = s.build(&ctx, "cdi:req", &["--cdi-spec-dir", &dir, "--allow", "device"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("Dockerfile:4: RUN --device: required device \"slipway.test/dev=nope\" is not registered")
            && r.stderr.contains(&dir),
        "{}",
        r.stderr
    );
    assert_ne!(s.run(&["inspect", "cdi:req"]).code, 0, "nothing tagged");
    // `--check` runs nothing, so it resolves no device (BuildKit's lint request neither)
    s.build(&ctx, "cdi:req", &["--check", "--cdi-spec-dir", &dir]).ok();
    // BuildKit's default is required=false: the step runs without it, and the build says so
    let df = format!(
        "{LABS}FROM bb\nRUN --device=slipway.test/dev=nope --device=nothing,required=false sh -c 'echo ran > /ran'\n"
    );
    let ctx = s.context("optional", &[("Dockerfile", &df)]);
    let r = s.build(&ctx, "cdi:opt", &["--cdi-spec-dir", &dir]).ok();
    for d in ["slipway.test/dev=nope", "nothing"] {
        assert!(
            r.stderr.contains(&format!("Dockerfile:3: RUN --device={d}: optional device is not registered")),
            "{d}: {}",
            r.stderr
        );
    }
    assert_eq!(text(&s.save("cdi:opt"), "ran"), "ran\n");
}

#[test]
fn devices_need_the_device_entitlement_unless_auto_allowed() {
    let df = format!(
        "{LABS}FROM bb\nRUN echo first > /first\nRUN --device=slipway.test/dev=one sh -c 'echo $SLIPWAY_CDI > /got'\n"
    );
    let (s, ctx, dir) = setup("allow", &df);
    // checked on the whole build before any step runs, in BuildKit's words
    let r = s.build(&ctx, "cdi:allow", &["--cdi-spec-dir", &dir]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains(
            "Dockerfile:4: RUN --device: device slipway.test/dev=one is requested by the build but not allowed"
        ) && r.stderr.contains("--allow device"),
        "{}",
        r.stderr
    );
    assert_eq!(ran(&r.stdout), 0, "no step ran: {}", r.stdout);
    // a grant of another device is not this one's
    let r = s.build(&ctx, "cdi:allow", &["--cdi-spec-dir", &dir, "--allow", "device=slipway.test/dev=free"]);
    assert!(r.code != 0 && r.stderr.contains("not allowed"), "{}", r.stderr);
    // by name, by kind (all of it), or everything
    for grant in ["device=slipway.test/dev=one", "device=slipway.test/dev=*", "device"] {
        s.build(&ctx, "cdi:allow", &["--no-cache", "--cdi-spec-dir", &dir, "--allow", grant]).ok();
        assert_eq!(text(&s.save("cdi:allow"), "got"), "injected\n", "{grant}");
    }
    // an alias gives the device its name, granted
    let alias = format!("{LABS}FROM bb\nRUN --device=gpu sh -c 'echo $SLIPWAY_CDI > /got'\n");
    let actx = s.context("alias", &[("Dockerfile", &alias)]);
    s.build(&actx, "cdi:alias", &["--cdi-spec-dir", &dir, "--allow", "device=slipway.test/dev=one,alias=gpu"]).ok();
    assert_eq!(text(&s.save("cdi:alias"), "got"), "injected\n");
    // the spec's autoallow annotation needs no grant
    let free = format!("{LABS}FROM bb\nRUN --device=slipway.test/dev=free sh -c 'echo $FREE > /got'\n");
    let fctx = s.context("free", &[("Dockerfile", &free)]);
    s.build(&fctx, "cdi:free", &["--cdi-spec-dir", &dir]).ok();
    assert_eq!(text(&s.save("cdi:free"), "got"), "yes\n");
    let r = s.run(&["build", "--allow", "devices", "."]);
    assert!(r.code != 0 && r.stderr.contains("unknown entitlement devices"), "{}", r.stderr);
}

#[test]
fn spec_errors_name_the_file_and_the_field() {
    let df = format!("{LABS}FROM bb\nRUN --device=slipway.test/dev=free true\n");
    let (s, ctx, dir) = setup("broken", &df);
    let rows: [(&str, &str, &str); 4] = [
        (
            "bad.yaml",
            "cdiVersion: 0.6.0\nkind: x.com/y\ndevices:\n- name: d\n  containerEdits:\n    deviceNodes:\n    - path: /dev/x\n      majr: 1\n",
            "bad.yaml: devices[0].containerEdits.deviceNodes[0].majr: unknown field",
        ),
        ("bad.json", "{\"cdiVersion\": \"0.3.0\", \"kind\": \"x.com/y\"", "bad.json: EOF while parsing"),
        (
            "old.json",
            r#"{"cdiVersion": "0.5.0", "kind": "x.com/y", "devices": [{"name": "d", "annotations": {"a": "b"}, "containerEdits": {"env": ["A=1"]}}]}"#,
            "old.json: cdiVersion: the spec version must be at least v0.6.0",
        ),
        (
            "rdt.json",
            r#"{"cdiVersion": "0.7.0", "kind": "slipway.test/dev", "devices": [{"name": "free", "containerEdits": {"intelRdt": {"closID": "c"}}}]}"#,
            "rdt.json: devices[0].containerEdits.intelRdt: not applied",
        ),
    ];
    for (name, body, want) in rows {
        let other = Path::new(&dir).join(name);
        fs::write(&other, body).unwrap();
        // rdt.json redefines the device in the same dir: move the good spec away for it
        let good = Path::new(&dir).join("slipway-test.yaml");
        let aside = s.dir.path().join("aside.yaml");
        if name == "rdt.json" {
            fs::rename(&good, &aside).unwrap();
        }
        let r = s.build(&ctx, "cdi:broken", &["--cdi-spec-dir", &dir]);
        assert_ne!(r.code, 0, "{name}");
        assert!(
            r.stderr.contains(&format!("CDI spec {dir}/")) && r.stderr.contains(want),
            "{name}: want {want:?} in {}",
            r.stderr
        );
        fs::remove_file(&other).unwrap();
        if name == "rdt.json" {
            fs::rename(&aside, &good).unwrap();
        }
    }
    // a build with no RUN --device never reads the specs
    fs::write(Path::new(&dir).join("bad.json"), "{").unwrap();
    let plain = s.context("plain", &[("Dockerfile", &format!("{LABS}FROM bb\nRUN true\n"))]);
    s.build(&plain, "cdi:plain", &["--cdi-spec-dir", &dir]).ok();
}
