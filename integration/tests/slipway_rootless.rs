//! slipway run by an unprivileged user, as buildah and BuildKit run in CI: its store under
//! `~/.local/share/slipway`, its own user namespace (the user as root, its /etc/subuid range
//! after it, through newuidmap), overlays with `userxattr`, RUN steps through the runtime under
//! test run as root of that namespace; the image loads into the same user's rootless podman and
//! runs there with the owners, whiteouts and opaque directories the build made. The RUN steps go
//! through `$OCI_RUNTIME`, so the suite checks runc too.

use integration::rootless::{Podman, User};
use std::path::{Path, PathBuf};

/// A context the user owns: busybox and a Dockerfile (`FROM scratch`: no registry needed).
fn context(user: &User, dockerfile: &str) -> PathBuf {
    let dir = user.home.join("ctx");
    std::fs::create_dir_all(&dir).expect("mkdir ctx");
    std::fs::copy("/bin/busybox", dir.join("busybox")).expect("copy busybox (busybox-static)");
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("write Dockerfile");
    user.give(&dir);
    dir
}

/// `slipway ARGS` as the user, with its default store; (exit code, stdout, stderr).
fn slipway(user: &User, bin: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = user.command(bin).args(args).output().expect("run slipway as the user");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const BASE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";

#[test]
fn a_user_builds_in_its_own_user_namespace_and_rootless_podman_runs_the_image() {
    let Some(p) = Podman::new() else { return };
    let bin = p.user.install(&integration::slipway::bin());
    let rt = p.runtime.to_string_lossy().into_owned();
    let dockerfile = format!(
        "{BASE}RUN mkdir -p /etc /gone/sub /home/bob && echo 'root:x:0:0::/root:/bin/sh' > /etc/passwd \
         && echo 'bob:x:1000:1000::/home/bob:/bin/sh' >> /etc/passwd && echo x > /gone/sub/f && echo y > /rmme\n\
         RUN rm /rmme && rm -rf /gone && mkdir /gone && echo new > /gone/n && chown 1000:1000 /home/bob \
         && id -u > /ran-as\n\
         COPY --chown=1000:1000 Dockerfile /home/bob/\n"
    );
    let ctx = context(&p.user, &dockerfile);
    let ctx = ctx.to_string_lossy().into_owned();
    let (code, out, err) = slipway(&p.user, &bin, &["build", "-t", "rl:1", "--runtime", &rt, &ctx]);
    assert_eq!(code, Some(0), "build failed\nstdout:\n{out}\nstderr:\n{err}");
    // the runtime ran as root of slipway's namespace: nothing to say about cgroups
    assert!(!err.contains("level=warning") && !out.contains("level=warning"), "{out}\n{err}");
    // the store is the user's, where buildah and podman keep theirs
    let store = p.user.home.join(".local/share/slipway");
    assert!(store.join("index.json").is_file(), "no store at {}", store.display());
    // the same build again comes from the cache
    let (code, out, err) = slipway(&p.user, &bin, &["build", "-t", "rl:1", "--runtime", &rt, &ctx]);
    assert_eq!(code, Some(0), "rebuild failed\n{out}\n{err}");
    assert_eq!(out.matches("Using cache").count(), 5, "every step cached:\n{out}");
    // into rootless podman
    let tar = p.user.home.join("rl.tar");
    let (code, out, err) = slipway(&p.user, &bin, &["save", "rl:1", "-o", &tar.to_string_lossy()]);
    assert_eq!(code, Some(0), "save failed\n{out}\n{err}");
    p.run(&["load", "-i", &tar.to_string_lossy()]).ok();
    let run = p.run(&[
        "run",
        "--rm",
        "docker.io/library/rl:1",
        "sh",
        "-c",
        "cat /ran-as; ls /rmme 2>/dev/null || echo rmme-gone; ls -R /gone; \
         stat -c '%n %u:%g' /home/bob /home/bob/Dockerfile /bin/busybox",
    ]);
    let want = "0\nrmme-gone\n/gone:\nn\n/home/bob 1000:1000\n/home/bob/Dockerfile 1000:1000\n/bin/busybox 0:0";
    assert_eq!(run.ok().text(), want);
}

#[test]
fn without_subordinate_ranges_only_the_users_own_id_is_there() {
    let Some(user) = User::new(false) else { return };
    let bin = user.install(&integration::slipway::bin());
    let rt = user.install(&integration::runtime_path());
    let rt = rt.to_string_lossy().into_owned();
    let ctx = context(&user, &format!("{BASE}RUN echo hi > /made\n"));
    let ctx = ctx.to_string_lossy().into_owned();
    let (code, out, err) = slipway(&user, &bin, &["build", "-t", "single:1", "--runtime", &rt, &ctx]);
    assert_eq!(code, Some(0), "build failed\nstdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("no ranges"), "the single-id map is said: {err}");
    // its RUN steps get no cgroup of their own: a cgroup parent or a limit is refused, not dropped
    for flags in [["--cgroup-parent", "ci"], ["--memory", "64m"]] {
        let mut args = vec!["build", "-t", "single:0", "--runtime", &rt];
        args.extend_from_slice(&flags);
        args.push(&ctx);
        let (code, out, err) = slipway(&user, &bin, &args);
        assert_ne!(code, Some(0), "{flags:?} accepted rootless\n{out}\n{err}");
        assert!(err.contains("rootless slipway does not give them"), "{flags:?}: {err}");
    }
    // a file of another owner cannot be made there: the RUN step fails and the build says so
    let ctx2 = user.home.join("ctx2");
    std::fs::create_dir_all(&ctx2).expect("mkdir");
    std::fs::write(ctx2.join("Dockerfile"), "FROM single:1\nRUN chown 1000 /made\n").expect("write");
    user.give(&ctx2);
    let (code, out, err) =
        slipway(&user, &bin, &["build", "-t", "single:2", "--runtime", &rt, &ctx2.to_string_lossy()]);
    assert_ne!(code, Some(0), "chown to an unmapped id succeeded?\n{out}\n{err}");
    assert!(err.contains("RUN chown 1000 /made"), "the failing step is named: {err}");
}

#[test]
fn device_nodes_of_a_base_image_are_skipped_in_the_users_namespace() {
    let Some(user) = User::new(true) else { return };
    // root builds a base image holding a device node and a fifo, as distribution images hold
    // /dev/null and friends, and saves it
    let root = integration::slipway::Slipway::new();
    let ctx = context(&user, &format!("{BASE}RUN mknod /node c 1 3 && mkfifo /fifo\n"));
    root.build(&ctx, "devbase:1", &[]).ok();
    let tar = user.home.join("devbase.tar");
    root.run(&["save", "devbase:1", "-o", &tar.to_string_lossy()]).ok();
    let saved = integration::slipway::read_saved(&tar);
    assert_eq!(saved.find("node").map(|e| e.kind), Some('c'), "the base image's /node");
    user.give(&tar);
    // the user loads it and builds on it: the node is left out (a user namespace cannot make
    // one), the fifo is made, the build goes on
    let bin = user.install(&integration::slipway::bin());
    let rt = user.install(&integration::runtime_path());
    let rt = rt.to_string_lossy().into_owned();
    let (code, out, err) = slipway(&user, &bin, &["load", "-i", &tar.to_string_lossy()]);
    assert_eq!(code, Some(0), "load failed\n{out}\n{err}");
    let ctx2 = user.home.join("ctx2");
    std::fs::create_dir_all(&ctx2).expect("mkdir");
    std::fs::write(
        ctx2.join("Dockerfile"),
        "FROM devbase:1\nRUN test ! -e /node && test -p /fifo && echo ok > /checked\n",
    )
    .expect("write");
    user.give(&ctx2);
    let (code, out, err) = slipway(&user, &bin, &["build", "-t", "ondev:1", "--runtime", &rt, &ctx2.to_string_lossy()]);
    assert_eq!(code, Some(0), "build on a base with a device node failed\nstdout:\n{out}\nstderr:\n{err}");
    // the base layer itself is unchanged: the image still has its node for whoever runs it
    let tar2 = user.home.join("ondev.tar");
    let (code, out, err) = slipway(&user, &bin, &["save", "ondev:1", "-o", &tar2.to_string_lossy()]);
    assert_eq!(code, Some(0), "save failed\n{out}\n{err}");
    let saved = integration::slipway::read_saved(&tar2);
    assert_eq!(saved.find("node").map(|e| e.kind), Some('c'), "ondev:1's /node");
    assert_eq!(saved.find("checked").map(|e| e.data.as_slice()), Some(&b"ok\n"[..]), "ondev:1's /checked");
}

/// `--sbom` rootless: the generator runs as root of the user's namespace and sees the image and
/// its scan extras (a stage, the context) read-only; a context file of an owner the namespace
/// does not map (root's, with no subordinate ranges: only the user's own id is mapped) is in
/// the context extra with the user's owner rather than failing the scan.
#[test]
fn a_user_scans_a_stage_and_the_context_with_an_sbom_generator() {
    let Some(user) = User::new(false) else { return };
    let bin = user.install(&integration::slipway::bin());
    let rt = user.install(&integration::runtime_path());
    let rt = rt.to_string_lossy().into_owned();
    let scan = "set -e\nfor d in \"$BUILDKIT_SCAN_SOURCE\" \"${BUILDKIT_SCAN_SOURCE_EXTRAS:?}\"/*; do\n\
                f=$(cd \"$d\" && find . -type f | sort | tr '\\n' ' ')\n\
                echo \"{\\\"_type\\\":\\\"https://in-toto.io/Statement/v0.1\\\",\\\"predicateType\\\":\\\"https://spdx.dev/Document\\\",\
                \\\"predicate\\\":{\\\"name\\\":\\\"$d\\\",\\\"files\\\":\\\"$f\\\"}}\" > \"$BUILDKIT_SCAN_DESTINATION/$(basename \"$d\").json\"\n\
                done\n";
    let sctx = context(&user, &format!("{BASE}COPY scan.sh /scan.sh\nENTRYPOINT [\"/bin/sh\", \"/scan.sh\"]\n"));
    std::fs::write(sctx.join("scan.sh"), scan).expect("write scan.sh");
    user.give(&sctx);
    let (code, out, err) = slipway(&user, &bin, &["build", "-t", "scan:1", "--runtime", &rt, &sctx.to_string_lossy()]);
    assert_eq!(code, Some(0), "scanner build failed\nstdout:\n{out}\nstderr:\n{err}");
    let app = user.home.join("app");
    std::fs::create_dir_all(&app).expect("mkdir app");
    std::fs::write(
        app.join("Dockerfile"),
        "FROM scratch AS build\nARG BUILDKIT_SBOM_SCAN_STAGE=true\nCOPY a.txt /a\n\
         FROM scratch\nARG BUILDKIT_SBOM_SCAN_CONTEXT=true\nCOPY --from=build /a /a\nCOPY roots.txt /r\n",
    )
    .expect("write Dockerfile");
    std::fs::write(app.join("a.txt"), "a\n").expect("write a.txt");
    user.give(&app);
    // root's file, readable by all
    std::fs::write(app.join("roots.txt"), "r\n").expect("write roots.txt");
    let out_dir = user.home.join("out");
    let dest = format!("type=local,dest={}", out_dir.display());
    let (code, out, err) = slipway(
        &user,
        &bin,
        &["build", "--runtime", &rt, "--sbom=generator=scan:1", "-o", &dest, &app.to_string_lossy()],
    );
    assert_eq!(code, Some(0), "build with --sbom failed\nstdout:\n{out}\nstderr:\n{err}");
    let pred = |n: &str| -> serde_json::Value {
        let p = out_dir.join(n);
        let st: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap();
        st["predicate"].clone()
    };
    assert_eq!(pred("sbom.json")["files"], "./a ./r ");
    assert_eq!(pred("sbom-build.json")["files"], "./a ");
    assert_eq!(pred("sbom-context.json")["files"], "./a.txt ./roots.txt ");
}
