//! What a docker user meets first with slipway: every image ID it prints works where docker's do
//! (inspect, tag, save, rmi, unpack, FROM), `images` shows docker's columns (unpacked SIZE,
//! CREATED as "... ago"), and the creation time is documented and selectable.

use integration::slipway::Slipway;

/// The IDs a plain build log prints: each step's ` ---> ID`, then `Successfully built ID`.
fn printed_ids(log: &str) -> (Vec<String>, String) {
    let steps = log
        .lines()
        .filter_map(|l| l.strip_prefix(" ---> "))
        .filter(|rest| !rest.starts_with("Using cache") && !rest.starts_with("Running in"))
        .map(|id| id.trim().to_string())
        .collect();
    let built = log
        .lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no `Successfully built` in {log}"))
        .trim()
        .to_string();
    (steps, built)
}

fn inspect_id(s: &Slipway, name: &str) -> String {
    let r = s.run(&["inspect", name]);
    assert_eq!(r.code, 0, "inspect {name}: {}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("inspect prints JSON");
    v[0]["Id"].as_str().expect("Id").to_string()
}

fn two_layer_context(s: &Slipway, name: &str) -> std::path::PathBuf {
    s.context(
        name,
        &[
            ("Dockerfile", "FROM scratch\nCOPY a /a\nENV STEP=two\nCOPY b /b\n"),
            ("a", "first layer\n"),
            ("b", "second layer\n"),
        ],
    )
}

#[test]
fn every_id_a_build_prints_is_an_image() {
    let s = Slipway::new();
    let ctx = two_layer_context(&s, "ids");
    let c = ctx.to_string_lossy().into_owned();
    // no -t: docker's `Successfully built ID` of an untagged build is an image too
    let log = s.run(&["build", "--progress", "plain", &c]).ok().stdout;
    let (steps, built) = printed_ids(&log);
    assert_eq!(steps.len(), 3, "one ID per step but FROM scratch: {log}");
    assert_eq!(steps.last(), Some(&built), "the last step's ID is the image's: {log}");
    for id in steps.iter().chain([&built]) {
        assert!(inspect_id(&s, id).starts_with(&format!("sha256:{id}")), "{id}");
    }
    // an untagged build is listed as docker lists a dangling image
    let images = s.run(&["images"]).ok().stdout;
    assert!(images.lines().any(|l| l.starts_with("<none>") && l.contains(&built)), "{images}");

    // a step's ID: tag, save, unpack and FROM it
    let first = &steps[0];
    s.run(&["tag", first, "step-one:v1"]).ok();
    assert_eq!(inspect_id(&s, "step-one:v1"), inspect_id(&s, first));
    let tar = s.dir.path().join("first.tar");
    s.run(&["save", first, "-o", &tar.to_string_lossy()]).ok();
    let saved = integration::slipway::read_saved(&tar);
    assert!(saved.find("a").is_some() && saved.find("b").is_none(), "the first step's layer alone");
    let bundle = s.dir.path().join("bundle");
    s.run(&["unpack", &steps[1], &bundle.to_string_lossy()]).ok();
    assert_eq!(std::fs::read_to_string(bundle.join("rootfs/a")).unwrap(), "first layer\n");
    let child = s.context("child", &[("Dockerfile", &format!("FROM {first}\nCOPY c /c\n")), ("c", "c\n")]);
    s.build(&child, "child", &[]).ok();
    assert!(s.save("child").find("a").is_some(), "FROM a step's ID has that step's files");

    // rmi: the untagged image goes; a step that is only cache says what removes it
    let r = s.run(&["rmi", &built]).ok();
    assert!(r.stdout.contains("Deleted: sha256:"), "{r:?}");
    let images = s.run(&["images"]).ok().stdout;
    assert!(!images.lines().any(|l| l.starts_with("<none>")), "{images}");
    let r = s.run(&["rmi", &steps[1]]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("intermediate build step") && r.stderr.contains("prune"), "{r:?}");
}

#[test]
fn quiet_iidfile_and_label_ids_are_images() {
    let s = Slipway::new();
    let ctx = two_layer_context(&s, "q");
    let c = ctx.to_string_lossy().into_owned();
    let iid = s.dir.path().join("iid");
    let out = s.run(&["build", "-q", "--iidfile", &iid.to_string_lossy(), &c]).ok().stdout;
    let id = out.trim();
    assert!(id.starts_with("sha256:"), "{out:?}");
    assert_eq!(inspect_id(&s, id), id);
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), id);
    // --label is a last LABEL step, as in docker's classic builder: its ID is the image's
    let log = s.run(&["build", "--progress", "plain", "--label", "who=$me \"quoted\"", &c]).ok().stdout;
    assert!(log.contains("Step 5/5 : LABEL who=$me \"quoted\""), "{log}");
    let (steps, built) = printed_ids(&log);
    assert_eq!(steps.last(), Some(&built), "{log}");
    let v: serde_json::Value = serde_json::from_str(&s.run(&["inspect", &built]).ok().stdout).unwrap();
    assert_eq!(v[0]["Config"]["Labels"]["who"], "$me \"quoted\"", "a label value is taken literally");
}

#[test]
fn an_unnamed_image_loaded_from_an_archive_is_usable_by_id() {
    let s = Slipway::new();
    let ctx = two_layer_context(&s, "l");
    s.build(&ctx, "named", &[]).ok();
    let id = inspect_id(&s, "named");
    let tar = s.dir.path().join("by-id.tar");
    s.run(&["save", &id, "-o", &tar.to_string_lossy()]).ok();
    let other = Slipway::new();
    let out = other.run(&["load", "-i", &tar.to_string_lossy()]).ok().stdout;
    assert_eq!(out.trim(), format!("Loaded image ID: {id}"));
    assert_eq!(inspect_id(&other, &id), id);
}

#[test]
fn images_shows_the_unpacked_size_and_how_long_ago() {
    let s = Slipway::new();
    // 1,000,000 bytes that gzip cannot shrink: the unpacked size, not the compressed one
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let noise: Vec<u8> = (0..1_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let ctx =
        s.context("size", &[("Dockerfile", "FROM scratch\nCOPY big /big\nCOPY small /small\n"), ("small", "12345")]);
    std::fs::write(ctx.join("big"), &noise).unwrap();
    s.build(&ctx, "sized", &[]).ok();
    let v: serde_json::Value = serde_json::from_str(&s.run(&["inspect", "sized"]).ok().stdout).unwrap();
    assert_eq!(v[0]["Size"], 1_000_005);
    let images = s.run(&["images"]).ok().stdout;
    let row = images.lines().find(|l| l.starts_with("sized ")).unwrap_or_else(|| panic!("{images}"));
    assert!(row.ends_with(" 1MB"), "docker's SIZE format: {row:?}");
    // the reproducible default time is 1970: docker shows such images as "N years ago"
    assert!(row.contains(" years ago "), "{row:?}");
}

#[test]
fn the_creation_time_is_reproducible_by_default_and_docker_like_on_request() {
    let s = Slipway::new();
    let ctx = two_layer_context(&s, "t");
    let c = ctx.to_string_lossy().into_owned();
    let inspect = |name: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&s.run(&["inspect", name]).ok().stdout).unwrap()[0].clone()
    };
    s.run(&["build", "-t", "repro", &c]).ok();
    let v = inspect("repro");
    assert_eq!(v["Created"], "1970-01-01T00:00:00Z");
    assert!(v["CreatedFrom"].as_str().is_some_and(|f| f.contains("SOURCE_DATE_EPOCH unset")), "{v}");

    let before = now();
    s.run(&["build", "-t", "now", "--timestamp", "now", &c]).ok();
    let after = now();
    let v = inspect("now");
    let created = v["Created"].as_str().unwrap();
    let t = rfc3339_secs(created);
    assert!((before..=after).contains(&t), "created {created} is not the build's time ({before}..={after})");
    assert_eq!(v["CreatedFrom"], "--timestamp now: the build's time");

    // the default again, after a `now` build on the same cache: still 1970, the same image
    s.run(&["build", "-t", "again", &c]).ok();
    assert_eq!(inspect("again")["Id"], inspect("repro")["Id"]);
    let bad = s.run(&["build", "--timestamp", "tomorrow", &c]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("--timestamp \"tomorrow\""), "{bad:?}");
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// `YYYY-MM-DDTHH:MM:SSZ` (what slipway writes) as seconds since the epoch, through date(1).
fn rfc3339_secs(t: &str) -> u64 {
    let out = std::process::Command::new("date").args(["-u", "-d", t, "+%s"]).output().expect("date");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|e| panic!("date -d {t}: {e}"))
}

/// Runs `slipway --root ROOT build ARGS` on a terminal of the test's (so `auto` progress is
/// the tty view) and returns its exit code and everything the terminal showed.
fn build_on_a_terminal(s: &Slipway, args: &[&str]) -> (Option<i32>, String) {
    let root = s.root().to_string_lossy().into_owned();
    let mut all = vec!["--root", &root, "build"];
    all.extend_from_slice(args);
    let mut term = integration::console::PtySession::spawn(&integration::slipway::bin(), &all, 40, 160);
    let code = term.wait();
    (code, term.seen.clone())
}

#[test]
fn a_failure_in_the_tty_view_is_marked_with_the_dockerfile_around_it() {
    let s = Slipway::new();
    // a failure before any RUN starts: the step line is still open when it fails
    let ctx = s
        .context("fail", &[("Dockerfile", "FROM scratch\nCOPY a /a\nENV A=1\nCOPY missing /x\nENV B=2\n"), ("a", "a")]);
    let (code, seen) = build_on_a_terminal(&s, &[&ctx.to_string_lossy()]);
    assert_eq!(code, Some(1), "{seen}");
    let lines: Vec<&str> = seen.split("\r\n").map(|l| l.rsplit('\r').next().unwrap_or(l)).collect();
    assert!(
        lines.iter().any(|l| l.trim_start_matches("\x1b[K").starts_with(" => ERROR [4/5] COPY missing /x")),
        "the failing step is marked ERROR on a line of its own: {seen:?}"
    );
    let at = lines.iter().position(|l| *l == "Dockerfile:4").unwrap_or_else(|| panic!("no excerpt header: {seen:?}"));
    assert_eq!(
        lines[at..at + 8],
        [
            "Dockerfile:4",
            "--------------------",
            "   2 |     COPY a /a",
            "   3 |     ENV A=1",
            "   4 | >>> COPY missing /x",
            "   5 |     ENV B=2",
            "   6 |     ",
            "--------------------",
        ],
        "{seen:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("slipway: Dockerfile:4: COPY") && l.contains("missing")),
        "the error starts a line of its own with the binary's name: {seen:?}"
    );
}

#[test]
fn a_failing_run_in_the_tty_view_is_marked_and_excerpted() {
    let s = Slipway::new();
    s.base("sw-base");
    let ctx = s.context("runfail", &[("Dockerfile", "FROM sw-base\nRUN echo before\nRUN exit 3\n")]);
    let rt = integration::slipway::runtime();
    let (code, seen) = build_on_a_terminal(&s, &["--runtime", &rt, &ctx.to_string_lossy()]);
    assert_eq!(code, Some(1), "{seen}");
    assert!(seen.contains(" => ERROR [3/3] RUN exit 3"), "{seen:?}");
    assert!(seen.contains("   3 | >>> RUN exit 3\r\n"), "{seen:?}");
    assert!(seen.contains("\r\nslipway: Dockerfile:3: RUN: ") && seen.contains("exit code: 3"), "{seen:?}");
}

#[test]
fn dockerfile_mistakes_get_docker_s_hints() {
    let s = Slipway::new();
    // an unknown instruction: BuildKit's suggestion, and the excerpt in a plain log too
    let ctx = s.context("typo", &[("Dockerfile", "FROM scratch\nRUUN true\n")]);
    let r = s.run(&["build", "--progress", "plain", &ctx.to_string_lossy()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("   2 | >>> RUUN true\n"), "{r:?}");
    assert!(r.stderr.contains("slipway: Dockerfile:2: unknown instruction: RUUN (did you mean RUN?)"), "{r:?}");

    // a --build-arg no ARG declares: docker's warning; one that is declared: none
    let ctx = s.context("args", &[("Dockerfile", "FROM scratch\nARG USED\nLABEL u=$USED\n")]);
    let r = s
        .run(&[
            "build",
            "--build-arg",
            "USED=1",
            "--build-arg",
            "UNUSED=2",
            "--build-arg",
            "HTTP_PROXY=http://proxy",
            &ctx.to_string_lossy(),
        ])
        .ok();
    assert!(r.stderr.contains("slipway: warning: one or more build-args were not consumed: UNUSED\n"), "{r:?}");
    let r = s.run(&["build", "--build-arg", "USED=1", &ctx.to_string_lossy()]).ok();
    assert!(!r.stderr.contains("warning"), "{r:?}");

    // BuildKit's frontend args are consumed by the frontend (dockerui/config.go), a local context
    // or not; those slipway does not implement get a warning naming them
    let r = s
        .run(&[
            "build",
            "--build-arg",
            "BUILDKIT_CONTEXT_KEEP_GIT_DIR=1",
            "--build-arg",
            "BUILDKIT_INLINE_CACHE=1",
            "--build-arg",
            "BUILDKIT_ATTEST_PROVENANCE=mode=max",
            "--build-arg",
            "BUILDKIT_BUILD_NAME=nightly",
            &ctx.to_string_lossy(),
        ])
        .ok();
    assert!(!r.stderr.contains("not consumed"), "{r:?}");
    // the attestation args are read (slipway_attest.rs checks what they make)
    assert!(!r.stderr.contains("BUILDKIT_ATTEST_PROVENANCE"), "{r:?}");
    let want = "slipway: warning: --build-arg BUILDKIT_BUILD_NAME: slipway does not implement the build's name in \
                buildx's build history; the build goes on without it\n";
    assert!(r.stderr.contains(want), "want {want:?} in {r:?}");
    assert!(!r.stderr.contains("KEEP_GIT_DIR"), "{r:?}");
    // BuildKit's frontend refuses BUILDKIT_DISABLE_FILEOP true (dockerui/config.go validateMinCaps)
    // and takes it false; docker 20.10's BuildKit still had the option, so no comparison
    let r = s.run(&["build", "--build-arg", "BUILDKIT_DISABLE_FILEOP=TRUE", &ctx.to_string_lossy()]);
    assert_ne!(r.code, 0);
    let want = "support for \"BUILDKIT_DISABLE_FILEOP\" build-arg was removed in BuildKit 0.11";
    assert!(r.stderr.contains(want), "{r:?}");
    let r = s.run(&["build", "--build-arg", "BUILDKIT_DISABLE_FILEOP=false", &ctx.to_string_lossy()]).ok();
    assert!(!r.stderr.contains("not consumed"), "{r:?}");
    // implemented (an inline cache in the image config: slipway_registry.rs tests it)
    assert!(!r.stderr.contains("BUILDKIT_INLINE_CACHE"), "{r:?}");
}

#[test]
fn both_binaries_prefix_their_errors_with_their_name() {
    let s = Slipway::new();
    let r = s.run(&["inspect", "no-such-image"]);
    assert_ne!(r.code, 0);
    assert_eq!(r.stderr, "slipway: No such image: no-such-image\n");
    // a usage error too, with clap's message and usage line
    let r = s.run(&["build", "--no-such-flag", "."]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.starts_with("slipway: unexpected argument '--no-such-flag'"), "{r:?}");
    assert!(r.stderr.contains("Usage: slipway build"), "{r:?}");
    let rt = integration::Runtime::new();
    if integration::runtime_is_runc() {
        integration::skip("the skiff: prefix is skiff's");
        return;
    }
    let out = rt.exec(&["state", "no-such-container"]);
    out.assert_failure();
    assert_eq!(out.stderr, "skiff: container \"no-such-container\" does not exist\n");
    let out = rt.exec(&["kill", "--no-such-flag", "x"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.starts_with("skiff: unexpected argument '--no-such-flag'"), "{out}");
}

fn slipway_cmd(s: &Slipway) -> std::process::Command {
    let mut c = std::process::Command::new(integration::slipway::bin());
    c.arg("--root").arg(s.root());
    c
}

#[test]
fn load_of_a_file_that_is_no_tar_says_so_and_changes_nothing() {
    let s = Slipway::new();
    let ctx = two_layer_context(&s, "x");
    s.build(&ctx, "keep", &[]).ok();
    let before = integration::slipway::store_listing(&s.root());
    let text = s.dir.path().join("notes.txt");
    std::fs::write(&text, "these are not the layers you are looking for\n".repeat(40)).unwrap();
    let binary = s.dir.path().join("noise.bin");
    std::fs::write(&binary, (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>()).unwrap();
    for f in [&text, &binary] {
        let r = s.run(&["load", "-i", &f.to_string_lossy()]);
        assert_ne!(r.code, 0);
        assert!(r.stderr.contains(&format!("{}: not a tar archive", f.display())), "{r:?}");
        assert!(r.stderr.contains("docker save"), "says what load reads: {r:?}");
    }
    let r = slipway_cmd(&s).arg("load").stdin(std::fs::File::open(&text).unwrap()).output().unwrap();
    assert!(String::from_utf8_lossy(&r.stderr).contains("stdin: not a tar archive"), "{r:?}");
    assert_eq!(integration::slipway::store_listing(&s.root()), before, "a failed load leaves the store as it was");
}

#[test]
fn save_writes_to_stdout_and_load_reads_stdin_as_docker_does() {
    let s = Slipway::new();
    let ctx = two_layer_context(&s, "io");
    s.build(&ctx, "piped:1", &[]).ok();
    let id = inspect_id(&s, "piped:1");
    // `save -o -`, and `save` without -o into a pipe: the archive on stdout
    for args in [vec!["save", "piped:1", "-o", "-"], vec!["save", "piped:1"]] {
        let out = slipway_cmd(&s).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let tar = s.dir.path().join("from-stdout.tar");
        std::fs::write(&tar, &out.stdout).unwrap();
        let saved = integration::slipway::read_saved(&tar);
        assert_eq!(saved.id(), id, "{args:?}");
        assert_eq!(saved.repo_tags, ["piped:1"], "{args:?}");
        assert!(!s.dir.path().join("-").exists(), "no file named -");
        // `load` without -i, and `load -i -`: the archive from stdin
        for load in [vec!["load"], vec!["load", "-i", "-"]] {
            let other = Slipway::new();
            let r = slipway_cmd(&other).args(&load).stdin(std::fs::File::open(&tar).unwrap()).output().unwrap();
            assert!(r.status.success(), "{load:?}: {}", String::from_utf8_lossy(&r.stderr));
            assert_eq!(String::from_utf8_lossy(&r.stdout), "Loaded image: piped:1\n");
            assert_eq!(inspect_id(&other, "piped:1"), id);
        }
    }
    // on a terminal, `save` without -o refuses rather than print binary
    let root = s.root().to_string_lossy().into_owned();
    let mut term = integration::console::PtySession::spawn(
        &integration::slipway::bin(),
        &["--root", &root, "save", "piped:1"],
        24,
        80,
    );
    assert_eq!(term.wait(), Some(1));
    assert!(term.seen.contains("refusing to write an image archive to a terminal"), "{:?}", term.seen);
}

#[test]
fn unpack_refuses_a_directory_that_holds_a_bundle() {
    let s = Slipway::new();
    let ctx = two_layer_context(&s, "u");
    s.build(&ctx, "unp", &[]).ok();
    let b = s.dir.path().join("bundle");
    s.run(&["unpack", "unp", &b.to_string_lossy()]).ok();
    // the user's own file in the rootfs, and an image whose files differ
    std::fs::write(b.join("rootfs/mine"), "mine").unwrap();
    let other = s.context("other", &[("Dockerfile", "FROM scratch\nCOPY z /z\n"), ("z", "z")]);
    s.build(&other, "other", &[]).ok();
    let r = s.run(&["unpack", "other", &b.to_string_lossy()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("already holds a bundle"), "{r:?}");
    assert_eq!(std::fs::read_to_string(b.join("rootfs/mine")).unwrap(), "mine", "the old rootfs is untouched");
    assert!(!b.join("rootfs/z").exists(), "nothing of the other image was merged in");
    let mut names: Vec<_> = std::fs::read_dir(&b).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["config.json", "rootfs"], "no temp dir left beside");
    // an empty directory is fine; a failed unpack leaves no directory behind
    let empty = s.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    s.run(&["unpack", "other", &empty.to_string_lossy()]).ok();
    assert_eq!(std::fs::read_to_string(empty.join("rootfs/z")).unwrap(), "z");
    let none = s.dir.path().join("never");
    assert_ne!(s.run(&["unpack", "no-such-image", &none.to_string_lossy()]).code, 0);
    assert!(!none.exists());
}

#[test]
fn a_build_context_that_is_a_file_is_refused_as_such() {
    let s = Slipway::new();
    let ctx = two_layer_context(&s, "c");
    let file = ctx.join("a");
    let df = ctx.join("Dockerfile");
    for extra in [vec![], vec!["-f", df.to_str().unwrap()]] {
        let mut args = vec!["build"];
        args.extend(extra.iter().copied());
        let f = file.to_string_lossy().into_owned();
        args.push(&f);
        let r = s.run(&args);
        assert_ne!(r.code, 0);
        assert_eq!(
            r.stderr,
            format!("slipway: the build context must be a directory: {} is not one\n", file.display()),
            "{args:?}"
        );
    }
}

/// `slipway build ARGS` with `stdin` as its standard input.
fn build_with_stdin(s: &Slipway, args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut c = slipway_cmd(s);
    c.arg("build").args(["--runtime", &integration::slipway::runtime()]).args(args);
    let mut child = c
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // a build refused before it reads stdin closes it: the write then fails, which is fine
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

/// A gzip tar of `files` (path, content), as `tar czf` makes one.
fn tgz(files: &[(&str, &str)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (p, c) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(c.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, p, c.as_bytes()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// buildx's stdin forms: `build - < Dockerfile` (no context: the Dockerfile alone),
/// `build - < context.tar.gz` (the archive is the context), `build -f - DIR < Dockerfile`
/// (the Dockerfile from stdin, the context DIR), and both at once refused with buildx's words.
#[test]
fn a_dockerfile_or_a_context_archive_on_stdin() {
    let s = Slipway::new();
    s.base("bb");
    let out = build_with_stdin(&s, &["-t", "in:1", "-"], b"FROM bb\nRUN echo from-stdin > /f\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.save("in:1").find("f").expect("/f").data, b"from-stdin\n");
    // a Dockerfile on stdin has no other file: a COPY fails naming the file
    let out = build_with_stdin(&s, &["-t", "in:2", "-"], b"FROM bb\nCOPY a /a\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Dockerfile:2"), "{}", String::from_utf8_lossy(&out.stderr));

    let tar = tgz(&[("Dockerfile", "FROM bb\nCOPY a /a\n"), ("a", "from the archive\n")]);
    let out = build_with_stdin(&s, &["-t", "in:3", "-"], &tar);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.save("in:3").find("a").expect("/a").data, b"from the archive\n");

    let ctx = s.context("dir", &[("a", "from the directory\n"), ("Dockerfile", "FROM bb\nRUN false\n")]);
    let c = ctx.to_string_lossy().into_owned();
    let out = build_with_stdin(&s, &["-t", "in:4", "-f", "-", &c], b"FROM bb\nCOPY a /a\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.save("in:4").find("a").expect("/a").data, b"from the directory\n");
    assert!(!ctx.join("-").exists());

    let out = build_with_stdin(&s, &["-t", "in:5", "-f", "-", "-"], b"FROM bb\n");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("invalid argument: can't use stdin for both build context and dockerfile"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// buildx's --progress values: `quiet` is -q (only the image ID, printed at the end), `none`
/// prints nothing, -q with plain is refused; `--platform` repeats, and `local` is this
/// machine's platform.
#[test]
fn progress_quiet_and_none_and_platform_as_buildx_takes_them() {
    let s = Slipway::new();
    let ctx = two_layer_context(&s, "p");
    let c = ctx.to_string_lossy().into_owned();
    let out = s.run(&["build", "--progress", "quiet", "-t", "pq:1", &c]).ok().stdout;
    assert_eq!(out.trim(), inspect_id(&s, "pq:1"), "{out:?}");
    let r = s.run(&["build", "--progress", "none", "-t", "pq:2", &c]).ok();
    assert_eq!(r.stdout, "", "{r:?}");
    assert_eq!(inspect_id(&s, "pq:2"), inspect_id(&s, "pq:1"));
    let r = s.run(&["build", "-q", "--progress", "plain", &c]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("progress=plain and quiet cannot be used together"), "{r:?}");

    let df = "FROM scratch\nCOPY a /a\n";
    let ctx = s.context("plat", &[("Dockerfile", df), ("a", "x")]);
    let c = ctx.to_string_lossy().into_owned();
    s.run(&["build", "-t", "two:1", "--platform", "linux/amd64", "--platform", "linux/arm64", &c]).ok();
    s.run(&["build", "-t", "two:2", "--platform", "linux/amd64,linux/arm64", &c]).ok();
    assert_eq!(inspect_id(&s, "two:1"), inspect_id(&s, "two:2"), "repeated --platform is the comma list");
    s.run(&["build", "-t", "local:1", "--platform", "local", &c]).ok();
    s.run(&["build", "-t", "local:2", &c]).ok();
    assert_eq!(inspect_id(&s, "local:1"), inspect_id(&s, "local:2"), "local is this machine's platform");
}

/// docker build's flags that BuildKit made moot, as buildx takes them: `--rm` and `--force-rm`
/// ask for what always happens (a step's container is removed) and change nothing;
/// `--rm=false` is refused; `--squash`, `--isolation`, `--security-opt` get buildx's warnings
/// and `--compress` says it has no effect; the image is the one a plain build makes.
#[test]
fn docker_build_s_old_flags_as_buildx_takes_them() {
    let s = Slipway::new();
    let ctx = two_layer_context(&s, "old");
    let c = ctx.to_string_lossy().into_owned();
    s.run(&["build", "-t", "plain:1", &c]).ok();
    let r = s.run(&["build", "--rm", "--force-rm", "-t", "old:1", &c]).ok();
    assert!(!r.stderr.contains("warning"), "{r:?}");
    assert_eq!(inspect_id(&s, "old:1"), inspect_id(&s, "plain:1"));
    let r = s.run(&["build", "--rm=false", "-t", "old:2", &c]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--rm=false: a RUN step's container is always removed"), "{r:?}");
    let r = s
        .run(&[
            "build",
            "--squash",
            "--isolation",
            "default",
            "--security-opt",
            "seccomp=unconfined",
            "--compress",
            "-t",
            "old:3",
            &c,
        ])
        .ok();
    for w in [
        "experimental flag squash is removed with BuildKit",
        "isolation flag is deprecated with BuildKit.",
        "security-opt flag is deprecated. \"RUN --security=insecure\" should be used with BuildKit.",
        "--compress has no effect",
    ] {
        assert!(r.stderr.contains(w), "{w}: {r:?}");
    }
    assert_eq!(inspect_id(&s, "old:3"), inspect_id(&s, "plain:1"));
}
