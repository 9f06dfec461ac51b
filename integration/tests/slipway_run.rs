//! slipway RUN steps through a real OCI runtime (`$SLIPWAY_RUNTIME`, else the runtime under test) on a
//! busybox base: environment, build args, SHELL, USER, WORKDIR, whiteouts, heredocs, ONBUILD.

use integration::slipway::Slipway;

fn text(img: &integration::slipway::Saved, p: &str) -> String {
    let e = img.find(p).unwrap_or_else(|| panic!("{p} not in any layer"));
    String::from_utf8_lossy(&e.data).into_owned()
}

#[test]
fn run_steps_env_user_and_whiteouts() {
    let s = Slipway::new();
    s.base("sw-base");
    let ctx = s.fixture("run");
    let r = s.build(&ctx, "run", &["--build-arg", "BUILD_ARG=given"]).ok();
    assert!(r.stdout.contains("Step 1/"), "{}", r.stdout);
    let img = s.save("run");
    assert_eq!(text(&img, "run-env.txt"), "arg=given env=from-env\n");
    assert_eq!(text(&img, "exec.txt"), "exec\n");
    // build args are not persisted in the image
    let env = img.cfg("Env").to_string();
    assert!(!env.contains("BUILD_ARG"), "{env}");
    // history records the args RUN saw, docker style
    assert!(img.history().iter().any(|h| h.starts_with("RUN |1 BUILD_ARG=given /bin/sh -c")), "{:?}", img.history());
    // deleting a lower file is a .wh. entry; replacing a dir is an opaque dir
    let wh = img.layers.iter().flatten().find(|e| e.path == "bin/.wh.vi");
    assert!(wh.is_some(), "whiteout for /bin/vi");
    let last_opq = img.layers.iter().position(|l| l.iter().any(|e| e.path == "opq/.wh..wh..opq"));
    assert!(last_opq.is_some(), "replacing a lower dir gives an opaque whiteout");
    assert!(img.find("opq/new").is_some());
    // USER by name from /etc/passwd; WORKDIR created owned by that user
    assert_eq!(text(&img, "home/bob/work/uid.txt"), "1000\n");
    assert_eq!(text(&img, "home/bob/work/groups.txt"), "1000 50\n");
    assert_eq!(text(&img, "home/bob/work/pwd.txt"), "/home/bob/work\n");
    let wd =
        img.layers.iter().flatten().find(|e| e.path.trim_end_matches('/') == "home/bob/work" && e.kind == 'd').unwrap();
    assert_eq!((wd.uid, wd.gid), (1000, 1000));
    assert_eq!(img.cfg("WorkingDir"), "/home/bob/work");
    // SHELL applies to shell-form RUN
    assert_eq!(text(&img, "shell.txt"), "shell=/bin/sh\n");
    // a later ARG of the same name wins over ENV in RUN (BuildKit), the config keeps ENV's
    assert_eq!(text(&img, "later-wins.txt"), "from-arg\n");
    assert!(env.contains("IN_ENV=from-env"), "{env}");
    // no runtime mount points leak into layers
    for l in &img.layers {
        for e in l {
            assert!(
                !e.path.starts_with("proc") && !e.path.starts_with("sys") && !e.path.starts_with("dev"),
                "{}",
                e.path
            );
        }
    }
    // rebuilding hits the cache for every step
    let r = s.build(&ctx, "run", &["--build-arg", "BUILD_ARG=given"]).ok();
    assert!(!r.stdout.contains("---> Running"), "{}", r.stdout);
    let misses = r.stdout.lines().filter(|l| l.starts_with("Step ")).count() - 1;
    assert_eq!(r.stdout.matches("Using cache").count(), misses, "{}", r.stdout);
}

#[test]
fn heredocs_in_run_and_copy() {
    let s = Slipway::new();
    s.base("sw-base");
    let ctx = s.fixture("heredoc");
    s.build(&ctx, "hd", &[]).ok();
    let img = s.save("hd");
    assert_eq!(text(&img, "greeting"), "hello world\n");
    assert_eq!(text(&img, "script.txt"), "script /dev/pipes/EOT\n");
    assert_eq!(text(&img, "two-a"), "first\n");
    assert_eq!(text(&img, "two-b"), "second\n");
    assert_eq!(text(&img, "etc/app.conf"), "who=world\n");
    assert_eq!(text(&img, "raw.txt"), "who=$WHO\n");
    assert_eq!(text(&img, "tabs.txt"), "indented\n");
    assert_eq!(text(&img, "spaced.txt"), "spaced world\n");
    assert_eq!(text(&img, "slash1"), "\n");
    assert_eq!(text(&img, "escapes.txt"), "$WHO \\ anb \"world\" 'd e'\n");
    assert_eq!(text(&img, "raw-escapes.txt"), "\\$WHO \\\\ a\\nb\n");
}

#[test]
fn onbuild_triggers_run_in_the_child() {
    let s = Slipway::new();
    s.base("sw-base");
    let parent = s.context(
        "parent",
        &[(
            "Dockerfile",
            "FROM sw-base\nONBUILD RUN echo triggered > /trigger.txt\nONBUILD COPY marker /marker\n\
             ONBUILD RUN <<EOF\necho from a heredoc > /heredoc.txt\nEOF\n",
        )],
    );
    s.build(&parent, "parent", &[]).ok();
    let p = s.save("parent");
    assert!(p.find("trigger.txt").is_none());
    // a trigger's heredoc is kept with it (BuildKit's parseOnBuild)
    let on_build: Vec<&str> = p.cfg("OnBuild").as_array().unwrap().iter().filter_map(|t| t.as_str()).collect();
    assert_eq!(on_build.len(), 3);
    assert_eq!(on_build[2], "RUN <<EOF\necho from a heredoc > /heredoc.txt\nEOF");
    // ONBUILD adds no history entry, as in BuildKit (checked with docker 20.10's)
    assert!(!p.history().iter().any(|h| h.contains("ONBUILD")), "{:?}", p.history());
    let child = s.context("child", &[("Dockerfile", "FROM parent\nCMD [\"true\"]\n"), ("marker", "m")]);
    let r = s.build(&child, "child", &[]).ok();
    assert!(r.stdout.contains("Executing 3 build triggers"), "{}", r.stdout);
    let c = s.save("child");
    assert_eq!(text(&c, "trigger.txt"), "triggered\n");
    assert_eq!(text(&c, "heredoc.txt"), "from a heredoc\n");
    assert_eq!(text(&c, "marker"), "m");
    assert!(c.cfg("OnBuild").is_null(), "triggers are not inherited further");
}

#[test]
fn failing_run_shows_output_and_status() {
    let s = Slipway::new();
    s.base("sw-base");
    let ctx =
        s.context("fail", &[("Dockerfile", "FROM sw-base\nRUN echo before\nRUN echo out; echo err >&2; exit 7\n")]);
    let r = s.build(&ctx, "fail", &[]);
    assert_ne!(r.code, 0);
    assert!(r.stdout.contains("out"), "{r:?}");
    assert!(r.stderr.contains("err"), "{r:?}");
    assert!(r.stderr.contains("Dockerfile:3:") && r.stderr.contains("exit code: 7"), "{}", r.stderr);
    assert_ne!(s.run(&["inspect", "fail"]).code, 0, "no image named after a failed build");
}

#[test]
fn chown_by_name_from_image_and_compressed_add() {
    let s = Slipway::new();
    s.base("sw-base");
    let ctx = s.context(
        "misc",
        &[
            (
                "Dockerfile",
                "FROM sw-base\nCOPY --chown=bob f /bob-owned\nCOPY --chown=bob:staff f /bob-staff\nCOPY --from=sw-base /etc/passwd /copied-passwd\nADD t.tar.gz /gz/\nADD t.tar.bz2 /bz/\nADD t.tar.xz /xz/\n",
            ),
            ("f", "f"),
            ("src/inner/file", "packed"),
        ],
    );
    for (name, flag) in [("t.tar.gz", "-z"), ("t.tar.bz2", "-j"), ("t.tar.xz", "-J")] {
        let st = std::process::Command::new("tar")
            .args([flag, "-cf"])
            .arg(ctx.join(name))
            .arg("-C")
            .arg(ctx.join("src"))
            .arg("inner")
            .status()
            .unwrap();
        assert!(st.success());
    }
    s.build(&ctx, "misc", &[]).ok();
    let img = s.save("misc");
    let e = img.find("bob-owned").unwrap();
    // a name without a group uses the uid as the gid too (docker's documented rule)
    assert_eq!((e.uid, e.gid), (1000, 1000));
    let e = img.find("bob-staff").unwrap();
    assert_eq!((e.uid, e.gid), (1000, 50));
    assert!(text(&img, "copied-passwd").contains("bob:x:1000"));
    for d in ["gz", "bz", "xz"] {
        assert_eq!(text(&img, &format!("{d}/inner/file")), "packed", "{d}");
    }
}

#[test]
fn network_none_and_host() {
    let s = Slipway::new();
    s.base("sw-base");
    let ctx = s.context("net", &[("Dockerfile", "FROM sw-base\nRUN ls /sys/class/net > /ifaces\n")]);
    s.build(&ctx, "net-none", &["--network", "none"]).ok();
    assert_eq!(text(&s.save("net-none"), "ifaces"), "lo\n", "a fresh netns has only lo");
    if integration::engines::have("slirp4netns") {
        // the default, BuildKit's sandbox: the step's own namespace with slirp4netns's tap0
        s.build(&ctx, "net-default", &[]).ok();
        assert_eq!(text(&s.save("net-default"), "ifaces"), "lo\ntap0\n");
    }
    s.build(&ctx, "net-host", &["--network", "host", "--no-cache"]).ok();
    let host = text(&s.save("net-host"), "ifaces");
    let mut want: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    want.sort();
    assert_eq!(host.lines().collect::<Vec<_>>(), want);
    let img = s.save("net-host");
    assert!(img.find("etc/resolv.conf").is_none() && img.find("etc/hosts").is_none(), "bind-mount stubs do not leak");
}

#[test]
fn steps_that_make_the_same_layer_twice() {
    // Two RUN steps that change nothing make the same (empty) layer, and so do two steps that
    // write the same bytes: one snapshot dir, which overlay refuses twice in one mount
    // ("conflicting lowerdir path"). Every later step must still get its rootfs, and the image
    // keeps every layer, as BuildKit's does.
    let s = Slipway::new();
    s.base("sw-base");
    let df =
        "FROM sw-base\nRUN true\nRUN echo same > /same\nRUN true\nRUN echo same > /same\nRUN echo after > /after\n\
              COPY Dockerfile /copied\nRUN cat /same /after > /both\n";
    let ctx = s.context("twice", &[("Dockerfile", df)]);
    s.build(&ctx, "twice", &[]).ok();
    let img = s.save("twice");
    assert_eq!(text(&img, "both"), "same\nafter\n");
    let base = s.save("sw-base").layers.len();
    assert_eq!(img.layers.len(), base + 7, "one layer per RUN and COPY step");
}

#[test]
fn proxy_build_args_reach_run_steps_without_an_arg() {
    // BuildKit's predefined proxy args (reference.md "Predefined ARGs"; convert.go
    // proxyEnvFromBuildArgs, ops/exec.go proxyEnvList): a step gets each as upper and lower
    // case without an ARG, they stay out of the history and the image, and a new value is no
    // cache miss. Checked with docker 20.10's BuildKit: `RUN env` shows HTTP_PROXY and
    // http_proxy.
    let s = Slipway::new();
    s.base("sw-base");
    let df = "FROM sw-base\nRUN env | grep -i _proxy= | sort > /proxies\n";
    let ctx = s.context("proxy", &[("Dockerfile", df)]);
    s.build(&ctx, "proxy", &["--build-arg", "HTTP_PROXY=http://p:3128", "--build-arg", "no_proxy=localhost"]).ok();
    let img = s.save("proxy");
    assert_eq!(
        text(&img, "proxies"),
        "HTTP_PROXY=http://p:3128\nNO_PROXY=localhost\nhttp_proxy=http://p:3128\nno_proxy=localhost\n"
    );
    assert!(!img.history().iter().any(|h| h.contains("p:3128")), "{:?}", img.history());
    assert!(!img.cfg("Env").to_string().contains("p:3128"));
    let r = s.build(&ctx, "proxy", &["--build-arg", "HTTP_PROXY=http://other:3128"]).ok();
    assert!(r.stdout.contains("Using cache"), "a new proxy is no cache miss: {}", r.stdout);
    assert!(!r.stderr.contains("not consumed"), "{}", r.stderr);
}
