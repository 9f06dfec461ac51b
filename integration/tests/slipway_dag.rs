//! Stages built at once (`build --jobs`), checked from the outside: two stages that can only
//! both finish if they run at the same time (each waits for a file the other makes in a shared
//! cache mount), the labelled log, the same image for `--jobs 1` and `--jobs 2`, and a failing
//! step that stops the other stages (their containers deleted, nothing left behind) with an
//! error naming its stage and line; the same for the platforms of `--platform a,b`. How much
//! faster that is lives in `make bench`, not here.

use integration::slipway::Slipway;
use std::fs;
use std::path::PathBuf;

/// A fresh store with the busybox base `bb` and a context holding `df`.
fn setup(name: &str, df: &str) -> (Slipway, PathBuf) {
    let s = Slipway::new();
    s.base("bb");
    let ctx = s.context(name, &[("Dockerfile", df)]);
    (s, ctx)
}

/// Stage `me` marks itself in the shared cache mount `/rv`, then waits (up to WAIT tenths of a
/// second) for stage `other`'s mark: it can only end well while `other` runs too.
fn rendezvous(me: &str, other: &str) -> String {
    format!(
        "FROM bb AS {me}\nARG WAIT\n\
         RUN --mount=type=cache,id=rv,target=/rv,sharing=shared sh -c 'touch /rv/{me}; i=0; \
         while [ ! -e /rv/{other} ]; do i=$((i+1)); [ $i -gt $WAIT ] && {{ echo {me} gave up; exit 7; }}; sleep 0.1; done; \
         echo {me} met {other}; echo {me} > /{me}'\n"
    )
}

fn two_stages_that_meet() -> String {
    format!("{}{}FROM bb\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n", rendezvous("a", "b"), rendezvous("b", "a"))
}

#[test]
fn independent_stages_run_at_once_and_say_so_in_the_log() {
    let (s, ctx) = setup("meet", &two_stages_that_meet());
    let r = s.run_bounded(&[
        "build",
        "-t",
        "met",
        "--runtime",
        &integration::slipway::runtime(),
        "--jobs",
        "2",
        "--progress",
        "plain",
        "--build-arg",
        "WAIT=250",
        &ctx.to_string_lossy(),
    ]);
    let r = r.ok();
    let img = s.save("met");
    assert_eq!(img.find("a").map(|e| e.data.clone()), Some(b"a\n".to_vec()));
    assert_eq!(img.find("b").map(|e| e.data.clone()), Some(b"b\n".to_vec()));
    // every line of a stage that ran beside another says its stage and step; the numbers are
    // those of a build in order (a: 1-3, b: 4-6, the last stage 7-9)
    for want in [
        "[a 2/9] Step 2/9 : ARG WAIT",
        "[b 6/9] Step 6/9 : RUN --mount=type=cache",
        "[a 3/9] a met b",
        "[b 6/9] b met a",
        "[stage-2 9/9] Step 9/9 : COPY --from=b /b /b",
    ] {
        assert!(r.stdout.lines().any(|l| l.starts_with(want)), "no line starting {want:?} in:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("Successfully tagged met:latest"), "{}", r.stdout);
}

#[test]
fn jobs_1_builds_one_stage_at_a_time() {
    // the same stages in order: the first gives up waiting for the second, which never started
    let (s, ctx) = setup("alone", &two_stages_that_meet());
    let r = s.run_bounded(&[
        "build",
        "--runtime",
        &integration::slipway::runtime(),
        "--jobs",
        "1",
        "--build-arg",
        "WAIT=10",
        &ctx.to_string_lossy(),
    ]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("a gave up"), "{}", r.stdout);
    assert!(!r.stdout.contains("Step 4/9"), "stage b started:\n{}", r.stdout);
    assert!(r.stderr.contains("Dockerfile:3: RUN: process"), "{}", r.stderr);
}

#[test]
fn jobs_1_and_jobs_2_make_the_same_image() {
    let df = "FROM bb AS one\nRUN echo one > /one && mkdir -p /d/x && echo deep > /d/x/f\n\
              FROM bb AS two\nENV T=2\nRUN echo two $T > /two\n\
              FROM scratch AS three\nCOPY Dockerfile /df\n\
              FROM bb\nCOPY --from=one /one /d /got/\nCOPY --from=two /two /got/two\nCOPY --from=three /df /got/df\nRUN ls -R /got > /listing\n";
    let mut ids = Vec::new();
    for jobs in ["1", "2", "3"] {
        let (s, ctx) = setup("same", df);
        let iid = s.dir.path().join("iid");
        s.build(&ctx, "same", &["--jobs", jobs, "--iidfile", &iid.to_string_lossy()]).ok();
        ids.push(fs::read_to_string(&iid).expect("iidfile"));
        let img = s.save("same");
        assert_eq!(img.find("got/two").map(|e| e.data.clone()), Some(b"two 2\n".to_vec()));
    }
    assert_eq!(ids[0], ids[1], "--jobs 1 and --jobs 2 gave different images");
    assert_eq!(ids[0], ids[2], "--jobs 1 and --jobs 3 gave different images");
}

#[test]
fn a_failing_step_cancels_the_stages_running_beside_it() {
    // `slow` is in its RUN when `bad` fails (bad waits for slow's mark): the build ends at once,
    // slow's container is deleted, and the error names bad's stage and line
    let df = "FROM bb AS slow\n\
              RUN --mount=type=cache,id=rv,target=/rv,sharing=shared sh -c 'touch /rv/slow; sleep 600'\n\
              FROM bb AS bad\n\
              RUN --mount=type=cache,id=rv,target=/rv,sharing=shared sh -c 'while [ ! -e /rv/slow ]; do sleep 0.1; done; exit 3'\n\
              FROM bb\nCOPY --from=slow /etc/passwd /a\nCOPY --from=bad /etc/passwd /b\n";
    let (s, ctx) = setup("cancel", df);
    let r = s.run_bounded(&[
        "build",
        "-t",
        "never",
        "--runtime",
        &integration::slipway::runtime(),
        "--jobs",
        "2",
        &ctx.to_string_lossy(),
    ]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr.contains("Dockerfile:4: stage bad: RUN: process") && r.stderr.contains("exit code: 3"),
        "{}",
        r.stderr
    );
    // no name, no container of ours in the runtime's state, no bundle or mount left behind
    assert_ne!(s.run(&["inspect", "never"]).code, 0);
    let state = s.root().join("tmp/runtime");
    let left: Vec<_> = fs::read_dir(&state).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "containers left in {}: {left:?}", state.display());
    let tmp: Vec<_> = fs::read_dir(s.root().join("tmp"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(tmp.iter().all(|n| n == "runtime"), "left in the store's tmp: {tmp:?}");
    let root = s.root().to_string_lossy().into_owned();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(!mounts.contains(&root), "mounts left under {root}");
}

/// This machine's platform and a foreign one (RUN steps of the Dockerfiles below are all on
/// `$BUILDPLATFORM`, so the foreign platform needs no binfmt_misc handler).
fn platforms() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "linux/amd64,linux/arm64".into(),
        "aarch64" => "linux/arm64,linux/amd64".into(),
        a => panic!("no foreign platform chosen for {a}"),
    }
}

/// Each platform's build-platform stage marks itself with its TARGETARCH in the shared cache
/// mount and waits (up to WAIT tenths of a second) until both marks are there: only platforms
/// built at the same time both finish.
const PLATFORMS_MEET: &str = "FROM --platform=$BUILDPLATFORM bb AS tools\nARG TARGETARCH WAIT\n\
    RUN --mount=type=cache,id=rv,target=/rv,sharing=shared sh -c 'touch /rv/$TARGETARCH; i=0; \
    while [ $(ls /rv | wc -l) -lt 2 ]; do i=$((i+1)); [ $i -gt $WAIT ] && { echo $TARGETARCH gave up; exit 7; }; sleep 0.1; done; \
    echo $TARGETARCH met; echo $TARGETARCH > /for'\n\
    FROM scratch\nCOPY --from=tools /for /for\n";

#[test]
fn the_platforms_of_a_build_run_at_once() {
    let (s, ctx) = setup("platforms", PLATFORMS_MEET);
    let platforms = platforms();
    let (host, foreign) = platforms.split_once(',').unwrap_or_default();
    let layout = s.dir.path().join("both.tar");
    let out = format!("type=oci,dest={},tar=false", layout.display());
    let r = s.run_bounded(&[
        "build",
        "-t",
        "both",
        "--runtime",
        &integration::slipway::runtime(),
        "--platform",
        &platforms,
        "--jobs",
        "2",
        "--progress",
        "plain",
        "--build-arg",
        "WAIT=300",
        "-o",
        "type=image",
        "-o",
        &out,
        &ctx.to_string_lossy(),
    ]);
    let r = r.ok();
    // each line says its platform, stage and step (each platform numbered as built alone)
    let (ha, fa) = (host.rsplit('/').next().unwrap_or_default(), foreign.rsplit('/').next().unwrap_or_default());
    for want in [
        format!("[{host} tools 3/5] {ha} met"),
        format!("[{foreign} tools 3/5] {fa} met"),
        format!("[{foreign} stage-1 5/5] Step 5/5 : COPY --from=tools /for /for"),
    ] {
        assert!(r.stdout.lines().any(|l| l.starts_with(&want)), "no line starting {want:?} in:\n{}", r.stdout);
    }
    // the index holds both images, each with its platform's file
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index.json")).expect("JSON");
    assert_eq!(index["manifests"].as_array().map(Vec::len), Some(1), "{index}");
    let r = s.run(&["inspect", "both"]).ok();
    assert!(r.stdout.contains(&format!("\"Architecture\": \"{ha}\"")), "{}", r.stdout);

    // one platform at a time (--jobs 1), the first gives up waiting for the second
    let (s, ctx) = setup("platforms-alone", PLATFORMS_MEET);
    let r = s.run_bounded(&[
        "build",
        "--runtime",
        &integration::slipway::runtime(),
        "--platform",
        &platforms,
        "--jobs",
        "1",
        "--build-arg",
        "WAIT=10",
        &ctx.to_string_lossy(),
    ]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains(&format!("{ha} gave up")), "{}", r.stdout);
    assert!(!r.stdout.contains(&format!("# building for {foreign}")), "the second platform started:\n{}", r.stdout);
}

#[test]
fn several_platforms_make_the_same_index_with_any_jobs() {
    let df = "FROM --platform=$BUILDPLATFORM bb AS tools\nARG TARGETPLATFORM\n\
              RUN echo \"for $TARGETPLATFORM\" > /for && mkdir -p /d && echo x > /d/x\n\
              FROM scratch AS other\nCOPY Dockerfile /df\n\
              FROM scratch\nCOPY --from=tools /for /d /out/\nCOPY --from=other /df /out/df\n";
    let mut ids = Vec::new();
    for jobs in ["1", "2", "4"] {
        let (s, ctx) = setup("index", df);
        let iid = s.dir.path().join("iid");
        s.build(&ctx, "idx", &["--platform", &platforms(), "--jobs", jobs, "--iidfile", &iid.to_string_lossy()]).ok();
        ids.push(fs::read_to_string(&iid).expect("iidfile"));
        let img = s.save("idx");
        assert!(img.find("out/for").is_some() && img.find("out/df").is_some(), "--jobs {jobs}");
    }
    assert_eq!(ids[0], ids[1], "--jobs 1 and --jobs 2 gave different indexes");
    assert_eq!(ids[0], ids[2], "--jobs 1 and --jobs 4 gave different indexes");
}

#[test]
fn a_failing_platform_cancels_the_others() {
    // the foreign platform's step fails once the host's is in its RUN (sleeping): the build ends
    // at once, the sleeping container is deleted, nothing is named, nothing left behind
    let platforms = platforms();
    let (_, foreign) = platforms.split_once(',').unwrap_or_default();
    let fa = foreign.rsplit('/').next().unwrap_or_default();
    let df = format!(
        "FROM --platform=$BUILDPLATFORM bb AS tools\nARG TARGETARCH\n\
         RUN --mount=type=cache,id=rv,target=/rv,sharing=shared sh -c 'if [ $TARGETARCH = {fa} ]; then \
         while [ ! -e /rv/sleeping ]; do sleep 0.1; done; exit 3; fi; touch /rv/sleeping; sleep 600'\n\
         FROM scratch\nCOPY --from=tools /etc/passwd /p\n"
    );
    let (s, ctx) = setup("platform-fails", &df);
    let r = s.run_bounded(&[
        "build",
        "-t",
        "never",
        "--runtime",
        &integration::slipway::runtime(),
        "--platform",
        &platforms,
        "--jobs",
        "2",
        "--progress",
        "plain",
        &ctx.to_string_lossy(),
    ]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    let want = format!("Dockerfile:3: stage {foreign} tools: RUN: process");
    assert!(r.stderr.contains(&want) && r.stderr.contains("exit code: 3"), "{want:?} in:\n{}", r.stderr);
    assert!(r.stdout.lines().any(|l| l.ends_with("CANCELED")), "{}", r.stdout);
    assert_ne!(s.run(&["inspect", "never"]).code, 0);
    let state = s.root().join("tmp/runtime");
    let left: Vec<_> = fs::read_dir(&state).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "containers left in {}: {left:?}", state.display());
    let tmp: Vec<_> = fs::read_dir(s.root().join("tmp"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(tmp.iter().all(|n| n == "runtime"), "left in the store's tmp: {tmp:?}");
    let root = s.root().to_string_lossy().into_owned();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(!mounts.contains(&root), "mounts left under {root}");
}

/// A stage read before it is defined (`COPY --from`, `RUN --mount from=`, by name or index) is
/// refused before anything runs, with BuildKit's words: it dispatches stages in file order and
/// refuses a source not yet dispatched since 0.13 (moby/buildkit 0615bb4b9,
/// testCopyFromLaterStage... in dockerfile_multistage_test.go: "cannot copy from stage",
/// "needs to be defined before current stage"; convert_runmount.go for mounts). docker
/// 20.10's BuildKit predates that check: it copies from the later stage's base and fails with
/// `lstat`, which is the bug the check closed.
#[test]
fn a_stage_read_before_it_is_defined_is_refused() {
    let cases = [
        (
            "FROM bb AS app\nCOPY --from=tools /t /t\nFROM bb AS tools\nRUN touch /t\n",
            "Dockerfile:2: cannot copy from stage \"tools\", it needs to be defined before current stage \"app\"",
        ),
        (
            "FROM bb\nCOPY --from=1 /t /t\nFROM bb\nRUN touch /t\n",
            "Dockerfile:2: cannot copy from stage \"1\", it needs to be defined before current stage \"stage-0\"",
        ),
        (
            "FROM bb AS app\nRUN --mount=from=tools,target=/m cat /m/t\nFROM bb AS tools\nRUN touch /t\n",
            "Dockerfile:2: cannot mount from stage \"tools\" to \"/m\", stage needs to be defined before current command",
        ),
    ];
    for (df, want) in cases {
        let (s, ctx) = setup("later", df);
        let r = s.run(&["build", "-t", "never", "--runtime", &integration::slipway::runtime(), &ctx.to_string_lossy()]);
        assert_ne!(r.code, 0, "{df}: {}", r.stdout);
        assert!(r.stderr.contains(want), "{df}: want {want:?}: {}", r.stderr);
        // refused before any step ran
        assert!(!r.stdout.contains("RUN touch"), "{df}: {}", r.stdout);
    }
}

/// BuildKit (frontend 1.11, testOnBuildDeps): an ONBUILD trigger of the base may copy or mount
/// from a stage of the Dockerfile that builds FROM it; that stage is built first, though nothing
/// else needs it. The same for a base that is a stage of the Dockerfile.
#[test]
fn onbuild_triggers_read_stages_of_the_child() {
    let (s, _) = setup("none", "FROM bb\n");
    let base = s.context(
        "onb",
        &[(
            "Dockerfile",
            "FROM bb\nONBUILD COPY --from=build /out/app /app\n\
             ONBUILD RUN --mount=from=config,target=/cfg cat /cfg/conf > /conf.txt\n",
        )],
    );
    s.build(&base, "onb", &[]).ok();
    let df = "FROM bb AS build\nRUN mkdir /out && echo built > /out/app\n\
              FROM bb AS unused\nRUN echo unused stage ran; exit 3\n\
              FROM bb AS config\nRUN echo setting > /conf\n\
              FROM onb\nRUN cat /app /conf.txt > /both\n";
    let ctx = s.context("child", &[("Dockerfile", df)]);
    for jobs in ["1", "2"] {
        let tag = format!("child{jobs}");
        let r = s.build(&ctx, &tag, &["--jobs", jobs, "--no-cache"]).ok();
        assert!(!r.stdout.contains("unused stage ran"), "{}", r.stdout);
        let img = s.save(&tag);
        let text = |p: &str| img.find(p).map(|e| String::from_utf8_lossy(&e.data).into_owned());
        assert_eq!(text("app").as_deref(), Some("built\n"));
        assert_eq!(text("conf.txt").as_deref(), Some("setting\n"));
        assert_eq!(text("both").as_deref(), Some("built\nsetting\n"));
    }
    // the base a stage: its children run its triggers (BuildKit's nested case)
    let df = "FROM bb AS src\nRUN echo from src > /f\n\
              FROM bb AS base\nONBUILD COPY --from=src /f /out/foo\n\
              FROM base AS mid\nRUN cp /out/foo /out/bar\n\
              FROM bb\nCOPY --from=mid /out/bar /bar\n";
    let ctx = s.context("nested", &[("Dockerfile", df)]);
    s.build(&ctx, "nested", &[]).ok();
    let img = s.save("nested");
    assert_eq!(img.find("bar").map(|e| e.data.clone()), Some(b"from src\n".to_vec()));
}

/// What BuildKit refuses of such triggers, in its words (it dispatches stages in file order):
/// a stage defined after the one building FROM the base, or that stage itself (a cycle), an index
/// out of range; a name that is no stage is an image, and one not to be had fails the build.
#[test]
fn onbuild_triggers_reading_stages_refused() {
    let cases = [
        (
            "COPY --from=later /x /x",
            "cannot copy from stage \"later\", it needs to be defined before current stage \"app\"",
        ),
        ("COPY --from=app /x /x", "cannot copy from stage \"app\", it needs to be defined before current stage \"app\""),
        (
            "RUN --mount=from=later,target=/m cat /m/x",
            "cannot mount from stage \"later\" to \"/m\", stage needs to be defined before current command",
        ),
        ("COPY --from=9 /x /x", "invalid stage index 9"),
        (
            "COPY --from=localhost:1/nosuch /x /x",
            "COPY --from=localhost:1/nosuch: no stage named \"localhost:1/nosuch\", no such image in the store, and the pull failed",
        ),
    ];
    let (s, _) = setup("none", "FROM bb\n");
    for (n, (trigger, want)) in cases.into_iter().enumerate() {
        let tag = format!("onb{n}");
        let base = s.context(&tag, &[("Dockerfile", &format!("FROM bb\nONBUILD {trigger}\n"))]);
        s.build(&base, &tag, &[]).ok();
        let df = format!("FROM {tag} AS app\nRUN echo app ran\nFROM bb AS later\nRUN echo later ran; touch /x\n");
        let ctx = s.context(&format!("c{n}"), &[("Dockerfile", &df)]);
        let r = s.build(&ctx, "never", &["--target", "app"]);
        assert_ne!(r.code, 0, "{trigger}: {}", r.stdout);
        assert!(r.stderr.contains("Dockerfile:1: "), "{trigger}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{trigger}: want {want:?}: {}", r.stderr);
        // refused before any step ran
        assert!(!r.stdout.contains("app ran") && !r.stdout.contains("later ran"), "{trigger}: {}", r.stdout);
    }
    assert_ne!(s.run(&["inspect", "never"]).code, 0, "no image named after a refused build");
}
