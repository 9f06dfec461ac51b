//! The store under stress: SIGKILL at any moment leaves a store the next command can read and
//! clean, and two builds can share one store.

use integration::slipway::{bin, failpoint_bin, runtime, Slipway};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn leftovers(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("tmp"))
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.retain(|n| n != "runtime");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // under the store (the store itself may be a mount of the test's: see ScratchFs)
    let r = format!("{}/", root.to_string_lossy());
    v.extend(mounts.lines().filter(|l| l.contains(&r)).map(|l| format!("mount: {l}")));
    v
}

fn build_cmd(s: &Slipway, ctx: &Path, tag: &str) -> Command {
    let mut c = Command::new(bin());
    c.arg("--root").arg(s.root()).args(["build", "-t", tag, "--runtime", &runtime()]).arg(ctx);
    c
}

/// Starts a build and reads its output until a RUN step prints `started`; returns the build.
fn build_until_started(s: &Slipway, ctx: &Path, tag: &str) -> std::process::Child {
    let mut child = build_cmd(s, ctx, tag).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    assert!(
        lines.by_ref().map_while(Result::ok).any(|l| l.trim() == "started"),
        "the build ended before its RUN step printed `started`"
    );
    // keep draining, so the build never blocks on a full pipe
    std::thread::spawn(move || lines.for_each(drop));
    child
}

#[test]
fn sigkill_during_run_is_cleaned_up_by_the_next_command() {
    let s = Slipway::new();
    s.base("sw-base");
    // The RUN step would sleep for longer than any test run: the next command must kill it,
    // not wait for it (if it waited, `images` would outlive PATIENCE and the test fail).
    let ctx = s.context("slow", &[("Dockerfile", "FROM sw-base\nRUN echo started; sleep 100000\n")]);
    let mut child = build_until_started(&s, &ctx, "slow");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!leftovers(&s.root()).is_empty(), "the kill left a running container behind");
    // the next command reaps the container, unmounts and removes temp files
    s.run_bounded(&["images"]).ok();
    assert!(leftovers(&s.root()).is_empty(), "{:?}", leftovers(&s.root()));
    let list =
        Command::new(runtime()).arg("--root").arg(s.root().join("tmp/runtime")).args(["list", "-q"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "", "no container left");
    // No check of /sys/fs/cgroup/*/slipway here: the other tests of this file build at the same
    // time and have live RUN cgroups there. The runtime's empty `list` above is what says the
    // killed build's container is gone (its delete removes its cgroups).
    assert_ne!(s.run(&["inspect", "slow"]).code, 0);
    // and the store still builds
    let ok = s.context("ok", &[("Dockerfile", "FROM sw-base\nRUN echo fine > /f\n")]);
    s.build(&ok, "ok", &[]).ok();
}

#[test]
fn sigkill_at_any_moment_of_a_build_leaves_a_usable_store() {
    let s = Slipway::new();
    let mut df = String::from("FROM scratch\n");
    let mut files = Vec::new();
    for i in 0..12 {
        df.push_str(&format!("COPY f{i} /d{i}/\nENV V{i}={i}\n"));
        files.push((format!("f{i}"), "x".repeat(50_000 + i)));
    }
    let mut all: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    all.push(("Dockerfile", &df));
    let ctx = s.context("many", &all);
    for ms in [0u64, 3, 7, 12, 20, 30, 45, 70] {
        let mut child =
            build_cmd(&s, &ctx, "many").stdout(Stdio::null()).stderr(Stdio::null()).arg("--no-cache").spawn().unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        let _ = child.wait();
        // whatever state it was in, the next command reads the store and cleans up
        s.run(&["images"]).ok();
        assert!(leftovers(&s.root()).is_empty(), "after kill at {ms}ms: {:?}", leftovers(&s.root()));
    }
    s.build(&ctx, "many", &[]).ok();
    let fresh = Slipway::new();
    let ctx2 = fresh.context("many", &all);
    fresh.build(&ctx2, "many", &[]).ok();
    assert_eq!(s.save("many").id(), fresh.save("many").id(), "cache after kills gives the clean result");
}

#[test]
fn two_builds_share_one_store() {
    let s = Slipway::new();
    let mut kids = Vec::new();
    for i in 0..3 {
        let ctx = s.context(
            &format!("c{i}"),
            &[("Dockerfile", &format!("FROM scratch\nCOPY a /a\nLABEL n={i}\nCOPY a /b\n")), ("a", "same")],
        );
        kids.push(
            build_cmd(&s, &ctx, &format!("par{i}")).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap(),
        );
    }
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for i in 0..3 {
        let img = s.save(&format!("par{i}"));
        assert_eq!(img.cfg("Labels")["n"], i.to_string());
    }
}

#[test]
fn prune_waits_for_running_builds() {
    let s = Slipway::new();
    s.base("sw-base");
    let ctx = s.context("busy", &[("Dockerfile", "FROM sw-base\nRUN echo started && sleep 2 && echo done > /d\n")]);
    let child = build_until_started(&s, &ctx, "busy");
    // The build holds the store's use lock from start to tag; a prune that waits for it returns
    // only once the image is tagged. One that did not wait would return while the RUN sleeps.
    s.run(&["prune"]).ok();
    let tagged = s.run(&["inspect", "busy"]);
    assert_eq!(tagged.code, 0, "prune returned before the running build finished: {}", tagged.stderr);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "the build survives a concurrent prune");
    assert_eq!(s.save("busy").find("d").map(|e| e.data.clone()), Some(b"done\n".to_vec()));
}

/// Bytes that gzip cannot shrink (xorshift), so a layer's size shows in the store.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn blobs(root: &Path) -> (Vec<String>, u64) {
    let mut names = Vec::new();
    let mut size = 0;
    for e in std::fs::read_dir(root.join("blobs/sha256")).unwrap().flatten() {
        size += e.metadata().unwrap().len();
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    (names, size)
}

/// The blobs (manifest, config, layers) of a named image, from the store's OCI layout.
fn image_blobs(s: &Slipway, name: &str) -> Vec<String> {
    let out = s.run(&["inspect", name]).ok().stdout;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let manifest = v[0]["Manifest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.root().join("blobs/sha256").join(&manifest)).unwrap()).unwrap();
    let mut b = vec![manifest, m["config"]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string()];
    for l in m["layers"].as_array().unwrap() {
        b.push(l["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string());
    }
    b
}

#[test]
fn prune_drops_what_no_name_uses_and_keeps_named_images_working() {
    let s = Slipway::new();
    s.base("sw-base");
    let keep = s.context("keep", &[("Dockerfile", "FROM sw-base\nCOPY k.bin /k.bin\nRUN echo kept > /kept\n")]);
    std::fs::write(keep.join("k.bin"), noise(300_000, 1)).unwrap();
    let gone = s.context("gone", &[("Dockerfile", "FROM sw-base\nCOPY g.bin /g.bin\nRUN echo gone > /gone\n")]);
    std::fs::write(gone.join("g.bin"), noise(2_000_000, 2)).unwrap();
    // an image without layers: its cache entries restore no layer, and still go with its name
    let meta = s.context("meta", &[("Dockerfile", "FROM scratch\nLABEL a=1\nENV B=2\n")]);
    s.build(&keep, "keep", &[]).ok();
    s.build(&gone, "gone", &[]).ok();
    s.build(&meta, "meta", &[]).ok();
    let gone_blobs = image_blobs(&s, "gone");
    let keep_blobs = image_blobs(&s, "keep");
    s.run(&["rmi", "gone"]).ok();
    s.run(&["rmi", "meta"]).ok();
    let (_, before) = blobs(&s.root());

    let out = s.run(&["prune"]).ok().stdout;
    assert!(out.contains("Total reclaimed space"), "{out}");
    let (names, after) = blobs(&s.root());
    assert!(before - after > 2_000_000, "the unnamed image's 2 MB layer is freed: {before} -> {after}");
    let only_gone: Vec<&String> = gone_blobs.iter().filter(|b| !keep_blobs.contains(b)).collect();
    assert_eq!(only_gone.len(), 4, "manifest, config, COPY and RUN layers of the unnamed image");
    for b in &only_gone {
        assert!(!names.contains(b), "blob {b} of the unnamed image is gone");
    }
    for b in &keep_blobs {
        assert!(names.contains(b), "blob {b} of a named image is kept");
    }

    // the named images still save, run and serve as a base
    let img = s.save("keep");
    assert_eq!(img.find("kept").map(|e| e.data.clone()), Some(b"kept\n".to_vec()));
    assert_eq!(img.find("k.bin").map(|e| e.data.len()), Some(300_000));
    let child = s.context("child", &[("Dockerfile", "FROM keep\nRUN cat /kept /kept > /twice\n")]);
    s.build(&child, "child", &[]).ok();
    assert_eq!(s.save("child").find("twice").map(|e| e.data.clone()), Some(b"kept\nkept\n".to_vec()));
    // the cache of a named image survives (its rebuild runs nothing); the unnamed one's does not
    let r = s.build(&keep, "keep", &[]).ok();
    assert_eq!(r.stdout.matches("Using cache").count(), 2, "{}", r.stdout);
    let r = s.build(&gone, "gone", &[]).ok();
    assert!(!r.stdout.contains("Using cache"), "{}", r.stdout);
    let r = s.build(&meta, "meta", &[]).ok();
    assert!(!r.stdout.contains("Using cache"), "{}", r.stdout);
    assert_eq!(s.save("gone").find("gone").map(|e| e.data.clone()), Some(b"gone\n".to_vec()));
}

#[test]
fn a_relative_root_works() {
    // the store's paths go into overlay options and bundles, read from other directories
    let s = Slipway::new();
    let ctx = s.context("rel", &[("Dockerfile", "FROM scratch\nCOPY a /a\nCOPY b /b\n"), ("a", "a"), ("b", "b")]);
    let run = |args: &[&str]| {
        let o =
            Command::new(bin()).current_dir(s.dir.path()).args(["--root", "rel-store"]).args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    run(&["build", "-t", "rel", "--runtime", &runtime(), &ctx.to_string_lossy()]);
    run(&["save", "rel", "-o", "rel.tar"]);
    let img = integration::slipway::read_saved(&s.dir.path().join("rel.tar"));
    assert_eq!(img.find("b").map(|e| e.data.clone()), Some(b"b".to_vec()));
}

/// Every blob in the store hashes to its name (no partial blob is visible).
fn assert_blobs_intact(root: &Path, when: &str) {
    let dir = root.join("blobs/sha256");
    let Ok(rd) = std::fs::read_dir(&dir) else { return };
    let names: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    if names.is_empty() {
        return;
    }
    let out = Command::new("sha256sum").current_dir(&dir).args(&names).output().expect("sha256sum");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (hash, name) = line.split_once("  ").expect("sha256sum line");
        assert_eq!(hash, name, "{when}: blob {name} does not match its digest");
    }
}

#[test]
fn sigkill_during_save_load_rmi_and_prune_leaves_a_readable_store() {
    let s = Slipway::new();
    let mut files = Vec::new();
    let mut df = String::from("FROM scratch\n");
    for i in 0..6 {
        df.push_str(&format!("COPY f{i} /d{i}/\n"));
        files.push((
            format!("f{i}"),
            noise(200_000, i as u64).iter().map(|b| (b'a' + b % 26) as char).collect::<String>(),
        ));
    }
    let mut all: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    all.push(("Dockerfile", &df));
    let ctx = s.context("big", &all);
    s.build(&ctx, "big", &[]).ok();
    let archive = s.root().join("..").join("big.tar");
    s.run(&["save", "big", "-o", archive.to_str().unwrap()]).ok();
    let out = s.root().join("..").join("out.tar");
    let out_s = out.to_str().unwrap().to_string();
    let archive_s = archive.to_str().unwrap().to_string();
    let commands: [(&str, Vec<&str>); 4] = [
        ("save", vec!["save", "big", "-o", &out_s]),
        ("load", vec!["load", "-i", &archive_s]),
        ("rmi", vec!["rmi", "victim"]),
        ("prune", vec!["prune"]),
    ];
    for (what, args) in &commands {
        for ms in [0u64, 2, 5, 10, 20, 40] {
            if *what == "rmi" {
                s.run(&["tag", "big", "victim"]).ok();
            }
            let mut child = Command::new(bin())
                .arg("--root")
                .arg(s.root())
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn slipway");
            std::thread::sleep(Duration::from_millis(ms));
            let _ = child.kill();
            let _ = child.wait();
            let when = format!("{what} killed at {ms} ms");
            // The next command reads the store and cleans what the kill left.
            s.run(&["images"]).ok();
            assert!(leftovers(&s.root()).is_empty(), "{when}: {:?}", leftovers(&s.root()));
            assert_blobs_intact(&s.root(), &when);
            // The named image is whole: every blob it references is there.
            for b in image_blobs(&s, "big") {
                assert!(s.root().join("blobs/sha256").join(&b).is_file(), "{when}: blob {b} of big is missing");
            }
        }
    }
    // And the next build still reuses what is intact.
    let again = s.build(&ctx, "big", &[]).ok();
    assert!(again.stdout.contains("Using cache"), "{}", again.stdout);
}

/// The blob names under blobs/sha256.
/// `build ARGS CTX` through the failpoints binary, killed at `point` (asserted).
fn build_killed_at(s: &Slipway, ctx: &Path, args: &[&str], point: &str) {
    use std::os::unix::process::ExitStatusExt;
    let st = Command::new(failpoint_bin())
        .arg("--root")
        .arg(s.root())
        .arg("build")
        .args(args)
        .args(["--runtime", &runtime()])
        .arg(ctx)
        .env("SLIPWAY_FAILPOINT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn slipway");
    assert_eq!(st.signal(), Some(9), "{point}: the build was not killed there: {st}");
}

fn blob_names(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("blobs/sha256"))
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A build killed at each point of the store's commit (builder/src/failpoint.rs): with its new
/// blobs written but none synced or in blobs/ yet, and with all of them synced and in blobs/
/// but index.json not rewritten. Either way index.json does not name the image, every file in
/// blobs/ is whole, the next command removes the staging directory, and a rebuild works: after
/// the first kill it builds every step again (the cache entries name blobs that never reached
/// blobs/), after the second it takes them from the cache. Both give the image a fresh store
/// builds.
#[test]
fn a_build_killed_between_its_blobs_and_index_json_leaves_a_whole_store() {
    let s = Slipway::new();
    let mut files = Vec::new();
    let mut df = String::from("FROM scratch\n");
    for i in 0..4 {
        df.push_str(&format!("COPY f{i} /d{i}/\nENV V{i}={i}\n"));
        files.push((
            format!("f{i}"),
            noise(100_000, i as u64).iter().map(|b| (b'a' + b % 26) as char).collect::<String>(),
        ));
    }
    let mut all: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    all.push(("Dockerfile", &df));
    let ctx = s.context("crash", &all);
    let killed_at = |point: &str| {
        build_killed_at(&s, &ctx, &["-t", "crash"], point);
        let index = std::fs::read_to_string(s.root().join("index.json")).unwrap();
        assert!(!index.contains("crash"), "{point}: index.json names the image: {index}");
        assert!(!leftovers(&s.root()).is_empty(), "{point}: no staging directory left in tmp/");
    };

    killed_at("store:blobs-staged");
    assert_eq!(blob_names(&s.root()), Vec::<String>::new(), "a blob reached blobs/ before the commit");
    s.run(&["images"]).ok();
    assert!(leftovers(&s.root()).is_empty(), "{:?}", leftovers(&s.root()));

    killed_at("store:blobs-committed");
    let committed = blob_names(&s.root());
    assert!(committed.len() >= 5, "the commit put the layers and configs in blobs/: {committed:?}");
    assert_blobs_intact(&s.root(), "killed after the commit");
    assert_ne!(s.run(&["inspect", "crash"]).code, 0, "the image is named");
    assert!(leftovers(&s.root()).is_empty(), "{:?}", leftovers(&s.root()));

    let again = s.build(&ctx, "crash", &[]).ok();
    assert_eq!(again.stdout.matches("Using cache").count(), 8, "{}", again.stdout);
    for b in image_blobs(&s, "crash") {
        assert!(committed.contains(&b), "blob {b} of the rebuilt image was not among the committed ones");
    }
    let fresh = Slipway::new();
    let ctx2 = fresh.context("crash", &all);
    fresh.build(&ctx2, "crash", &[]).ok();
    assert_eq!(s.save("crash").id(), fresh.save("crash").id());
}

/// The snapshots under snapshots/, sorted.
fn snapshot_names(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("snapshots"))
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Removes every snapshot of the store, so that the next build extracts them.
fn drop_snapshots(root: &Path) {
    for n in snapshot_names(root) {
        std::fs::remove_dir_all(root.join("snapshots").join(n)).unwrap();
    }
}

/// The RUN step needs the base's snapshots (overlay lower dirs), and prints what the busybox
/// of its rootfs holds: a snapshot with a torn /bin/busybox cannot even start the step.
const SNAP_DOCKERFILE: &str = "FROM sw-base\nRUN busybox wc -c < /bin/busybox > /size; echo built > /x\n";

fn assert_snapshot_build(s: &Slipway, tag: &str, when: &str) {
    let want = std::fs::metadata("/usr/bin/busybox").unwrap().len();
    let img = s.save(tag);
    let size = img.find("size").map(|e| String::from_utf8_lossy(&e.data).trim().to_string());
    assert_eq!(size, Some(want.to_string()), "{when}: the step saw a busybox of another size");
    assert_eq!(img.find("x").map(|e| e.data.clone()), Some(b"built\n".to_vec()), "{when}");
}

/// A build killed while it makes the snapshots its RUN step runs on (builder/src/failpoint.rs):
/// with the first one extracted and synced but not renamed into snapshots/ (`tree:synced`),
/// and just after the rename (`tree:published`). No half-made snapshot is ever under
/// snapshots/; the next command removes the one left in tmp/; the next build uses the
/// published one and makes the rest, and its step runs on a whole busybox.
#[test]
fn a_build_killed_while_it_makes_a_snapshot_leaves_none_half_made() {
    let s = Slipway::new();
    s.base("sw-base");
    let ctx = s.context("snap", &[("Dockerfile", SNAP_DOCKERFILE)]);
    for point in ["tree:synced", "tree:published"] {
        drop_snapshots(&s.root());
        build_killed_at(&s, &ctx, &["--no-cache", "-t", "snap"], point);
        let snaps = snapshot_names(&s.root());
        assert_eq!(snaps.len(), usize::from(point == "tree:published"), "{point}: {snaps:?}");
        assert!(!leftovers(&s.root()).is_empty(), "{point}: the extraction's temp dir is not in tmp/");
        s.run(&["images"]).ok();
        assert!(leftovers(&s.root()).is_empty(), "{point}: {:?}", leftovers(&s.root()));

        s.build(&ctx, "snap", &["--no-cache"]).ok();
        assert_snapshot_build(&s, "snap", point);
        assert!(snapshot_names(&s.root()).len() > snaps.len(), "{point}: {:?}", snapshot_names(&s.root()));
    }
}

/// A power loss, as near as a test gets to one: the store is on an ext4 file system of its
/// own (a loop device, journal commit every second) that the test shuts down without writing
/// anything more (what a power cut leaves on the disk: the metadata the journal committed, not
/// file data still in the page cache), then mounts again.
///
/// First a build is killed right after renaming the base's first snapshot into snapshots/;
/// a file is written beside it, the journal committed (an fsync of the store's directory:
/// every name made so far, not the file data that delayed allocation has not placed yet),
/// and the power cut: the snapshot is there under its name and its /bin/busybox is whole, as
/// it was synced before the rename, while the file written unsynced lost its bytes (so the
/// cut does take such data: without the sync the snapshot's busybox comes back empty). The
/// next build runs on it. Then a whole build and the cut just after it: its image, named
/// when the build returned, is there and the same, and another build works on whatever of
/// the store the cut left.
///
/// What this cannot show: the order of writes on a real disk with a volatile write cache
/// (the loop device's backing file is in the host's page cache), nor what a file system other
/// than ext4 (data=ordered, delayed allocation) keeps.
#[test]
fn after_a_power_cut_every_snapshot_and_image_made_before_it_is_whole() {
    use std::os::unix::process::ExitStatusExt;
    let s = Slipway::new();
    let fs = match integration::host::ScratchFs::new(&s.dir.path().join("fs.img"), &s.root(), 256) {
        Ok(fs) => fs,
        Err(why) => {
            integration::skip(format!("no ext4 file system of the test's own: {why}"));
            return;
        }
    };
    s.base("sw-base");
    drop_snapshots(&s.root());
    assert!(Command::new("sync").arg("-f").arg(s.root()).status().unwrap().success());

    let ctx = s.context("snap", &[("Dockerfile", SNAP_DOCKERFILE)]);
    let o = Command::new(failpoint_bin())
        .arg("--root")
        .arg(s.root())
        .args(["build", "-t", "snap", "--runtime", &runtime()])
        .arg(&ctx)
        .env("SLIPWAY_FAILPOINT", "tree:published")
        .output()
        .expect("spawn slipway");
    assert_eq!(o.status.signal(), Some(9), "the build was not killed after its first snapshot: {o:?}");
    let busybox = std::fs::read("/usr/bin/busybox").unwrap();
    let control = s.root().join("unsynced");
    std::fs::write(&control, &busybox).unwrap();
    // an fsync of the directory commits the journal: every name made so far (the control's,
    // the snapshot's rename), not file data that delayed allocation has not placed yet
    std::fs::File::open(s.root()).unwrap().sync_all().unwrap();
    fs.power_cut();
    let kept = std::fs::metadata(&control).map(|m| m.len()).unwrap_or(0);
    assert!(
        kept < busybox.len() as u64,
        "the cut did not take a file's unsynced data ({kept} bytes kept): the test shows nothing"
    );
    let snaps = snapshot_names(&s.root());
    assert_eq!(snaps.len(), 1, "the snapshot renamed before the cut: {snaps:?}");
    let snap_busybox = s.root().join("snapshots").join(&snaps[0]).join("bin/busybox");
    let got = std::fs::read(&snap_busybox).unwrap_or_default();
    assert!(
        got == busybox,
        "{} has {} bytes after the cut, not busybox's {}",
        snap_busybox.display(),
        got.len(),
        busybox.len()
    );

    s.build(&ctx, "snap", &[]).ok();
    assert_snapshot_build(&s, "snap", "built after the cut");
    assert!(leftovers(&s.root()).is_empty(), "{:?}", leftovers(&s.root()));

    // A build that returned, then the cut: nothing of it is lost.
    let ctx2 = s.context(
        "whole",
        &[
            ("Dockerfile", "FROM sw-base\nCOPY f /f\nRUN busybox wc -c < /bin/busybox > /size; cat /f > /x\n"),
            ("f", "built\n"),
        ],
    );
    s.build(&ctx2, "whole", &[]).ok();
    let id = s.save("whole").id();
    fs.power_cut();
    assert_blobs_intact(&s.root(), "after the cut");
    assert_eq!(s.save("whole").id(), id, "the image named before the cut is not the same after it");
    s.build(&ctx2, "whole2", &["--no-cache"]).ok();
    assert_snapshot_build(&s, "whole2", "built after the second cut");
    assert!(leftovers(&s.root()).is_empty(), "{:?}", leftovers(&s.root()));
}
