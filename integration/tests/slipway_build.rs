//! slipway builds without RUN: metadata instructions, COPY/ADD rules, .dockerignore,
//! multi-stage graphs, determinism and the cache. Everything is checked in the saved archive.

use integration::buildkit::BuildKit;
use integration::slipway::{store_listing, Slipway};
use std::fs;
use std::os::unix::fs::PermissionsExt;

#[test]
fn metadata_instructions_land_in_the_config() {
    let s = Slipway::new();
    let ctx = s.fixture("metadata");
    s.build(&ctx, "meta:1", &["--build-arg", "NAME=built", "--label", "cli=yes"]).ok();
    let img = s.save("meta:1");
    assert_eq!(img.repo_tags, ["meta:1"]);
    assert_eq!(img.layers.len(), 0, "no filesystem changes");
    let env: Vec<String> = img.cfg("Env").as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    // same-line references see the old value: B and C use A=1, D too
    for want in [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "A=changed",
        "B=1",
        "C=12",
        "D=1",
        "legacy=form with spaces",
        "Q=quoted value",
        "E=a b",
        "FROM_ARG=1.0-built-dflt",
    ] {
        assert!(env.contains(&want.to_string()), "{want} in {env:?}");
    }
    // build args are not in the image
    assert!(!env.iter().any(|e| e.starts_with("NAME=") || e.starts_with("VERSION=")));
    let labels = img.cfg("Labels");
    assert_eq!(labels["version"], "1.0");
    assert_eq!(labels["name"], "built");
    assert_eq!(labels["multi word"], "x y");
    assert_eq!(labels["cli"], "yes");
    assert_eq!(img.config["author"], "someone <me@example.com>");
    let ports = img.cfg("ExposedPorts").as_object().unwrap();
    let mut p: Vec<&String> = ports.keys().collect();
    p.sort();
    assert_eq!(p, ["443/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
    let vols = img.cfg("Volumes").as_object().unwrap();
    let mut v: Vec<&String> = vols.keys().collect();
    v.sort();
    assert_eq!(v, ["/cache", "/data", "/json"]);
    assert_eq!(img.cfg("User"), "1000:1000");
    assert_eq!(img.cfg("WorkingDir"), "/");
    assert_eq!(img.cfg("StopSignal"), "SIGTERM");
    let hc = img.cfg("Healthcheck");
    assert_eq!(hc["Test"], serde_json::json!(["CMD-SHELL", "wget -q localhost"]));
    assert_eq!(hc["Interval"], 30_000_000_000u64);
    assert_eq!(hc["Timeout"], 5_000_000_000u64);
    assert_eq!(hc["Retries"], 3);
    assert_eq!(img.cfg("Shell"), &serde_json::json!(["/bin/ash", "-eo", "pipefail", "-c"]));
    // shell-form CMD uses SHELL; ENTRYPOINT after CMD in the same stage keeps CMD
    assert_eq!(img.cfg("Cmd"), &serde_json::json!(["/bin/ash", "-eo", "pipefail", "-c", "echo $HOME"]));
    assert_eq!(img.cfg("Entrypoint"), &serde_json::json!(["/bin/tini", "--"]));
    assert_eq!(img.cfg("OnBuild"), &serde_json::json!(["RUN echo child"]));
    // history: one entry per step, all metadata
    let h = img.history();
    assert!(h.iter().any(|x| x == "ENV A=1"), "{h:?}");
    assert!(h.iter().any(|x| x.starts_with("ARG NAME=built")), "{h:?}");
    assert!(img.config["history"].as_array().unwrap().iter().all(|e| e["empty_layer"] == true));
    assert_eq!(img.config["created"], "1970-01-01T00:00:00Z");
}

#[test]
fn builds_without_run_are_reproducible() {
    let a = Slipway::new();
    let b = Slipway::new();
    let ca = a.fixture("copy");
    let cb = b.fixture("copy");
    for c in [&ca, &cb] {
        make_archive(c);
    }
    a.build(&ca, "copy", &[]).ok();
    // touch every file: mtimes must not matter
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for e in fs::read_dir(&cb).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let d = fs::read(&p).unwrap();
            fs::write(&p, d).unwrap();
        }
    }
    b.build(&cb, "copy", &["--no-cache"]).ok();
    assert_eq!(a.save("copy").id(), b.save("copy").id());
    // and SOURCE_DATE_EPOCH sets every timestamp
    let img = a.save("copy");
    assert!(img.layers.iter().flatten().all(|e| e.mtime == 0));
}

fn make_archive(ctx: &std::path::Path) {
    // a tar with an owner, a mode and a symlink, built by hand with the system tar
    let src = ctx.join("archive-src");
    fs::create_dir_all(src.join("pkg")).unwrap();
    fs::write(src.join("pkg/tool"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(src.join("pkg/tool"), fs::Permissions::from_mode(0o4750)).unwrap();
    std::os::unix::fs::symlink("tool", src.join("pkg/tool-link")).ok();
    let st = std::process::Command::new("tar")
        .args(["--owner=42", "--group=43", "--mtime=@0", "--sort=name", "-cf"])
        .arg(ctx.join("archive.tar"))
        .arg("-C")
        .arg(&src)
        .arg("pkg")
        .status()
        .unwrap();
    assert!(st.success());
    fs::remove_dir_all(&src).unwrap();
}

#[test]
fn copy_and_add_rules() {
    let s = Slipway::new();
    let ctx = s.fixture("copy");
    make_archive(&ctx);
    fs::set_permissions(ctx.join("file.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::hard_link(ctx.join("links/target"), ctx.join("links/hard")).unwrap();
    s.build(&ctx, "copy", &[]).ok();
    let img = s.save("copy");
    let f = |p: &str| {
        img.find(p)
            .unwrap_or_else(|| {
                panic!("{p} missing; layers: {:#?}", img.layers.iter().flatten().map(|e| &e.path).collect::<Vec<_>>())
            })
            .clone()
    };
    // file to a new name; into a dir with a trailing slash
    assert_eq!(f("f/renamed.txt").data, b"hello file\n");
    assert_eq!(f("into/file.txt").data, b"hello file\n");
    // mode kept, owner reset to 0:0
    let e = f("f/renamed.txt");
    assert_eq!((e.mode & 0o7777, e.uid, e.gid), (0o640, 0, 0));
    // a dir copies its contents, not itself
    assert_eq!(f("dircopy/a.txt").data, b"in dir\n");
    assert_eq!(f("dircopy/sub/main.c").data, b"int main;\n");
    assert!(img.find("dircopy/dir").is_none());
    assert!(img.find("dircopy2/a.txt").is_some());
    // wildcards: *.md at the root only; a pattern inside a dir
    assert!(img.find("docs/README.md").is_some() && img.find("docs/CHANGES.md").is_some());
    assert!(img.find("csrc/main.c").is_some() && img.find("csrc/skip.h").is_none());
    // --chown by id, --chmod
    let e = f("owned/file.txt");
    assert_eq!((e.uid, e.gid), (1234, 5678));
    assert_eq!(f("secret.txt").mode & 0o7777, 0o600);
    // symlinks kept as symlinks, hardlinks as tar hardlinks
    let l = f("links/rel-link");
    assert_eq!((l.kind, l.link.as_deref()), ('l', Some("target")));
    assert_eq!(f("links/abs-link").link.as_deref(), Some("/etc/passwd"));
    let h = f("links/target");
    let hl = f("links/hard");
    assert!(h.kind == 'h' || hl.kind == 'h', "one of the pair is a hardlink: {h:?} {hl:?}");
    // WORKDIR-relative destination
    assert!(img.find("work/rel.txt").is_some());
    // ADD extracts a local tar keeping owners, modes and links
    let t = f("extracted/pkg/tool");
    assert_eq!((t.mode & 0o7777, t.uid, t.gid), (0o4750, 42, 43));
    assert_eq!(f("extracted/pkg/tool-link").link.as_deref(), Some("tool"));
    // ADD of a plain file copies it
    assert!(img.find("added.txt").is_some());
    // layer count: one per COPY/ADD plus WORKDIR
    assert_eq!(img.layers.len(), 13);
    assert_eq!(img.config["rootfs"]["diff_ids"].as_array().unwrap().len(), 13);
}

#[test]
fn dockerignore_semantics() {
    let s = Slipway::new();
    let ctx = s.fixture("dockerignore");
    s.build(&ctx, "ign", &[]).ok();
    let img = s.save("ign");
    let has = |p: &str| img.find(&format!("ctx/{p}")).is_some();
    assert!(!has("a.log"), "*.log excluded");
    assert!(has("important.log"), "!important.log re-included");
    assert!(!has("build/out"), "/build: leading slash dropped, root only");
    assert!(has("sub/build/kept"), "/build does not match sub/build (unlike gitignore's **)");
    assert!(has("sub/a.log"), "*.log does not cross directories");
    assert!(has("src/main.rs"));
    assert!(!has("src/x.tmp") && !has("src/deep/y.tmp"), "**/*.tmp at any depth");
    assert!(has("vendor/keep.txt") && !has("vendor/drop.txt"), "exception under an excluded dir");
    assert!(!has("docs/a.md") && has("docs/keep.txt"));
    assert!(!has("Dockerfile"), "Dockerfile matched like any file, yet still read");
    // copying an excluded file fails as a missing source
    fs::write(ctx.join("Dockerfile.bad"), "FROM scratch\nCOPY a.log /\n").unwrap();
    let r = s.run(&["build", "-t", "bad", "-f", &ctx.join("Dockerfile.bad").to_string_lossy(), &ctx.to_string_lossy()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(":2:") && r.stderr.contains("excluded by .dockerignore"), "{}", r.stderr);
}

#[test]
fn multistage_graph_and_target() {
    let s = Slipway::new();
    let ctx = s.fixture("multistage");
    // the unused stage copies a missing file: it must not be built
    let r = s.build(&ctx, "ms", &[]).ok();
    assert!(!r.stdout.contains("does-not-exist"), "{}", r.stdout);
    // the log shows each FROM as written, as docker's does (not a resolved stage number)
    assert!(r.stdout.contains("Step 3/8 : FROM first AS second\n"), "{}", r.stdout);
    let img = s.save("ms");
    assert_eq!(img.find("from-second/a.txt").unwrap().data, b"a\n");
    assert_eq!(img.find("from-index.txt").unwrap().data, b"a\n");
    assert_eq!(img.find("b.txt").unwrap().data, b"b\n");
    assert_eq!(img.layers.len(), 3);
    // --target builds a middle stage with its parent's layers
    s.build(&ctx, "ms-second", &["--target", "second"]).ok();
    let img = s.save("ms-second");
    assert_eq!(img.layers.len(), 2);
    assert!(img.find("a.txt").is_some() && img.find("b.txt").is_some());
    // and a target that is the broken stage fails with its line
    let r = s.build(&ctx, "ms-unused", &["--target", "unused"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Dockerfile:5:"), "{}", r.stderr);
}

#[test]
fn cache_hits_misses_and_explanations() {
    let s = Slipway::new();
    let ctx = s.context(
        "cache",
        &[
            ("Dockerfile", "FROM scratch\nCOPY a.txt /a\nARG V=1\nLABEL v=$V\nCOPY b.txt /b\n"),
            ("a.txt", "a"),
            ("b.txt", "b"),
        ],
    );
    let r1 = s.build(&ctx, "c", &[]).ok();
    assert!(!r1.stdout.contains("Using cache"), "{}", r1.stdout);
    assert!(r1.stdout.contains("Step 1/5 : FROM scratch"), "{}", r1.stdout);
    let r2 = s.build(&ctx, "c", &[]).ok();
    assert_eq!(r2.stdout.matches("Using cache").count(), 4, "{}", r2.stdout);
    // change b: only the last step misses
    fs::write(ctx.join("b.txt"), "B").unwrap();
    let r3 = s.build(&ctx, "c", &["--explain-cache"]).ok();
    assert_eq!(r3.stdout.matches("Using cache").count(), 3, "{}", r3.stdout);
    assert!(r3.stdout.contains("file changed: b.txt"), "{}", r3.stdout);
    // change an arg: the ARG and the LABEL that reads it miss; the COPY below them still hits
    // (metadata makes no LLB op in BuildKit, so its file ops stay cached), and the image has
    // the new label on the same layers
    let v1 = s.save("c");
    let layers_before = v1.config["rootfs"]["diff_ids"].clone();
    let r4 = s.build(&ctx, "c", &["--build-arg", "V=2", "--explain-cache"]).ok();
    assert_eq!(r4.stdout.matches("Using cache").count(), 2, "{}", r4.stdout);
    assert!(r4.stdout.contains("instruction text changed"), "{}", r4.stdout);
    let after = r4.stdout.split("COPY b.txt /b").nth(1).unwrap_or_default();
    assert!(after.starts_with("\n ---> Using cache\n"), "{}", r4.stdout);
    let v2 = s.save("c");
    assert_eq!(v2.cfg("Labels")["v"], "2");
    assert_eq!(v2.config["rootfs"]["diff_ids"], layers_before);
    assert!(v2.history().iter().any(|h| h.contains("LABEL v=2")), "{:?}", v2.history());
    // and back: each step cached on exactly this state comes back whole, the same image
    let back = s.build(&ctx, "c", &[]).ok();
    assert_eq!(back.stdout.matches("Using cache").count(), 4, "{}", back.stdout);
    assert_eq!(s.save("c").id(), v1.id());
    // --no-cache bypasses it
    let r5 = s.build(&ctx, "c", &["--no-cache"]).ok();
    assert!(!r5.stdout.contains("Using cache"));
    // prune keeps the cache of a named image: the rebuild still hits every step
    let id = s.save("c").id();
    let p = s.run(&["prune"]).ok();
    assert!(p.stdout.contains("build cache entries"), "{}", p.stdout);
    let r6 = s.build(&ctx, "c", &[]).ok();
    assert_eq!(r6.stdout.matches("Using cache").count(), 4, "{}", r6.stdout);
    assert_eq!(s.save("c").id(), id);
    // once nothing names it, prune drops that cache: the next build misses, same image
    s.run(&["rmi", "c"]).ok();
    s.run(&["prune"]).ok();
    let r7 = s.build(&ctx, "c", &[]).ok();
    assert!(!r7.stdout.contains("Using cache"), "{}", r7.stdout);
    assert_eq!(s.save("c").id(), id);
}

#[test]
fn bad_input_fails_with_file_line_and_leaves_the_store_alone() {
    let s = Slipway::new();
    s.base("sw-base");
    let dir = s.fixture("errors");
    let rows: &[(&str, &str, &str)] = &[
        ("unknown-instruction", ":2:", "unknown instruction: FOO"),
        ("run-before-from", ":3:", "no build stage"),
        ("missing-source", ":2:", "not found in build context"),
        ("outside-context", ":2:", "outside the build context"),
        ("shell-not-json", ":2:", "SHELL requires the arguments to be in JSON form"),
        ("required-var", ":2:", "NOPE: must be set"),
        ("failing-run", ":3:", "exit code: 3"),
        ("unknown-stage", ":2:", "nosuchstage"),
        ("unknown-image", ":1:", "no-such-image:1.0"),
        ("add-url", ":2:", "ADD http://127.0.0.1:1/x.tar.gz: GET http://127.0.0.1:1/x.tar.gz"),
        ("unknown-user", ":4:", "unable to find user nobody-here"),
    ];
    for (case, line, msg) in rows {
        let before = store_listing(&s.root());
        let df = dir.join(format!("{case}.Dockerfile"));
        let r = s.build(&dir, &format!("err-{case}"), &["-f", &df.to_string_lossy()]);
        assert_ne!(r.code, 0, "{case} must fail");
        let want = format!("{case}.Dockerfile{line}");
        assert!(r.stderr.contains(&want), "{case}: want {want:?} in {}", r.stderr);
        assert!(r.stderr.contains(msg), "{case}: want {msg:?} in {}", r.stderr);
        if *case == "failing-run" {
            assert!(r.stdout.contains("to-stdout") || r.stderr.contains("to-stdout"), "RUN output shown: {r:?}");
            assert!(r.stderr.contains("to-stderr"), "{r:?}");
        }
        let after = store_listing(&s.root());
        let idx_before = &before[0];
        assert_eq!(idx_before, &after[0], "{case}: index.json unchanged");
        assert!(s.run(&["inspect", &format!("err-{case}")]).code != 0);
    }
}

#[test]
fn arg_scope_cmd_reset_and_json_fallback() {
    let s = Slipway::new();
    let ctx = s.fixture("scope");
    s.build(&ctx, "scope", &[]).ok();
    let img = s.save("scope");
    let l = img.cfg("Labels");
    assert_eq!(l["before"], "unset", "global ARG invisible before re-declaration");
    assert_eq!(l["after"], "global");
    assert_eq!(l["s"], "unset", "stage ARGs do not leak");
    assert_eq!(l["g"], "unset");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    assert_eq!(l["platform"], format!("linux/{arch}"));
    assert!(img.cfg("Cmd").is_null(), "ENTRYPOINT resets an inherited CMD");
    assert_eq!(img.cfg("Entrypoint"), &serde_json::json!(["/entry"]));
    assert_eq!(img.cfg("Healthcheck")["Test"], serde_json::json!(["NONE"]));
    assert_eq!(img.cfg("StopSignal"), "9");
    let df = ctx.join("json-fallback.Dockerfile");
    s.build(&ctx, "fallback", &["-f", &df.to_string_lossy()]).ok();
    let img = s.save("fallback");
    // CMD after ENTRYPOINT in the same stage is kept; the invalid JSON was shell form
    assert_eq!(img.cfg("Entrypoint"), &serde_json::json!(["/bin/sh", "-c", "echo hi"]));
    assert_eq!(img.cfg("Cmd"), &serde_json::json!(["json", "form"]));
    assert!(img.history().iter().any(|h| h == r#"CMD ["/bin/sh" "-c" "[not json]"]"#), "{:?}", img.history());
}

#[test]
fn escape_directive() {
    let s = Slipway::new();
    let ctx = s.fixture("escape");
    s.build(&ctx, "esc", &[]).ok();
    let img = s.save("esc");
    assert_eq!(img.cfg("Labels")["a"], "x y");
    let env = img.cfg("Env").to_string();
    assert!(env.contains(r#""P=c:\\dir\\sub""#), "backslash is literal: {env}");
    assert!(env.contains(r#""W=$notvar""#), "{env}");
    assert!(img.find("continued.txt").is_some(), "backtick continues the line");
}

#[test]
fn quiet_iidfile_and_source_date_epoch() {
    let s = Slipway::new();
    let ctx = s.context("q", &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a")]);
    let iid = s.dir.path().join("iid");
    let out = std::process::Command::new(integration::slipway::bin())
        .arg("--root")
        .arg(s.root())
        .args(["build", "-q", "-t", "q", "--iidfile"])
        .arg(&iid)
        .arg(&ctx)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let img = s.save("q");
    assert_eq!(stdout.trim(), img.id(), "-q prints only the image ID");
    assert_eq!(fs::read_to_string(&iid).unwrap(), img.id());
    assert_eq!(img.config["created"], "2023-11-14T22:13:20Z");
    assert!(img.layers.iter().flatten().all(|e| e.mtime == 1_700_000_000));
}

#[test]
fn many_layers_fit_the_overlay_mount() {
    // 70 layers: absolute snapshot paths would overflow the one-page mount options
    let s = Slipway::new();
    let mut df = String::from("FROM scratch\n");
    for i in 0..70 {
        df.push_str(&format!("COPY a /l{i}\n"));
    }
    let ctx = s.context("many", &[("Dockerfile", &df), ("a", "a")]);
    s.build(&ctx, "many", &[]).ok();
    let img = s.save("many");
    assert_eq!(img.layers.len(), 70);
    assert!(img.find("l69").is_some());
}

#[test]
fn copy_exclude_and_dockerfile_specific_ignore() {
    let s = Slipway::new();
    let ctx = s.context(
        "excl",
        &[
            ("app.Dockerfile", "FROM scratch AS src\nCOPY --exclude=*.md --exclude=**/*.tmp . /all/\nFROM scratch\nCOPY --from=src --exclude=all/keep/*.log /all /copied\n"),
            ("app.Dockerfile.dockerignore", "secret\n"),
            (".dockerignore", "keep\n"),
            ("README.md", "r"),
            ("main.rs", "m"),
            ("keep/x.tmp", "t"),
            ("keep/a.log", "l"),
            ("keep/b.txt", "b"),
            ("secret", "s"),
        ],
    );
    let df = ctx.join("app.Dockerfile");
    s.build(&ctx, "excl", &["-f", &df.to_string_lossy(), "--target", "src"]).ok();
    let img = s.save("excl");
    assert!(img.find("all/main.rs").is_some());
    assert!(img.find("all/README.md").is_none(), "--exclude=*.md");
    assert!(img.find("all/keep/x.tmp").is_none(), "--exclude=**/*.tmp");
    assert!(img.find("all/keep/b.txt").is_some(), "the Dockerfile's own ignore file replaces .dockerignore");
    assert!(img.find("all/secret").is_none(), "app.Dockerfile.dockerignore applies");
    s.build(&ctx, "excl2", &["-f", &df.to_string_lossy()]).ok();
    let img = s.save("excl2");
    assert!(img.find("copied/keep/b.txt").is_some());
    assert!(img.find("copied/keep/a.log").is_none(), "--exclude on a --from copy");
}

#[test]
fn several_tags_and_build_args_from_the_environment() {
    let s = Slipway::new();
    let ctx = s.context("tags", &[("Dockerfile", "FROM scratch\nARG FROM_ENV\nLABEL v=$FROM_ENV\n")]);
    let o = std::process::Command::new(integration::slipway::bin())
        .arg("--root")
        .arg(s.root())
        .args(["build", "-t", "one", "-t", "two:2", "--build-arg", "FROM_ENV"])
        .arg(&ctx)
        .env("FROM_ENV", "env-value")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Successfully tagged one:latest") && out.contains("Successfully tagged two:2"), "{out}");
    let a = s.save("one");
    assert_eq!(a.id(), s.save("two:2").id());
    assert_eq!(a.cfg("Labels")["v"], "env-value", "--build-arg NAME takes the value from the environment");
}

/// Runs `slipway ARGS` with its stdout on a pseudo-terminal (util-linux `script`), returning
/// what the terminal showed.
fn on_terminal(s: &Slipway, args: &[&str]) -> String {
    let mut cmd = format!("{} --root {}", integration::slipway::bin().display(), s.root().display());
    for a in args {
        cmd.push_str(&format!(" '{a}'"));
    }
    let o = std::process::Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().expect("run script");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{cmd}: {out}");
    out
}

#[test]
fn progress_plain_tty_and_auto() {
    let s = Slipway::new();
    let ctx = s.context("progress", &[("Dockerfile", "FROM scratch\nCOPY a /a\nLABEL l=1\n"), ("a", "a")]);
    let c = ctx.to_string_lossy().into_owned();
    // not a terminal: auto and tty print docker's classic log, as plain does
    for mode in ["plain", "auto", "tty"] {
        let r = s.build(&ctx, "p", &["--progress", mode]).ok();
        assert!(r.stdout.contains("Step 2/3 : COPY a /a"), "{mode}: {}", r.stdout);
        assert!(!r.stdout.contains('\x1b'), "{mode}: no escape codes off a terminal: {:?}", r.stdout);
    }
    // on a terminal: auto and tty draw one line per step, redrawn when the step ends
    for mode in ["auto", "tty"] {
        let t = on_terminal(&s, &["build", "-t", "p", "--progress", mode, &c]);
        assert!(!t.contains("Step 1/3"), "{mode}: {t:?}");
        assert!(t.contains("\r\x1b[K => CACHED [2/3] COPY a /a"), "{mode}: {t:?}");
        assert!(t.contains("\r\x1b[K => CACHED [3/3] LABEL l=1"), "{mode}: {t:?}");
        assert!(t.contains(" => naming to p:latest done"), "{mode}: {t:?}");
    }
    // a step that runs shows how long it took
    fs::write(ctx.join("a"), "changed").unwrap();
    let t = on_terminal(&s, &["build", "-t", "p", "--progress", "tty", &c]);
    let copy = t.split("\r\x1b[K").find(|l| l.starts_with(" => [2/3] COPY a /a  ")).unwrap_or_default();
    assert!(copy.trim_end().ends_with('s'), "{t:?}");
    // plain on a terminal is still the log
    let t = on_terminal(&s, &["build", "-t", "p", "--progress", "plain", &c]);
    assert!(t.contains("Step 2/3 : COPY a /a") && t.contains(" ---> Using cache"), "{t:?}");
    let r = s.build(&ctx, "p", &["--progress", "fancy"]);
    assert_ne!(r.code, 0);
    // clap's message, with the values --progress allows
    assert!(r.stderr.contains("invalid value 'fancy' for '--progress"), "{}", r.stderr);
    assert!(r.stderr.contains("[possible values: auto, plain, tty, quiet, none]"), "{}", r.stderr);
}

#[test]
fn copy_from_the_context_makes_the_same_layer_as_copy_from_a_stage() {
    // COPY of plain context files writes its layer straight from the context; COPY --from
    // goes through an overlay mount. Both must give the same layer: placed files, new parent
    // dirs, and existing parents copied up with the image's attributes.
    let s = Slipway::new();
    let ctx = s.context(
        "same-layer",
        &[
            (
                "Dockerfile",
                "FROM scratch AS base\nCOPY --chown=5:6 --chmod=700 optdir /opt\n\
                 FROM scratch AS src\nCOPY tree /t\n\
                 FROM base AS direct\nCOPY tree /opt/x/y/\n\
                 FROM base AS general\nCOPY --from=src /t /opt/x/y/\n",
            ),
            ("optdir/keep", "k"),
            ("tree/a.txt", "a"),
            ("tree/sub/deep/b.sh", "#!/bin/sh\n"),
            ("tree/sub/c", "c"),
            ("tree/B", "upper-case sorts first"),
        ],
    );
    let t = ctx.join("tree");
    fs::set_permissions(t.join("sub/deep/b.sh"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(t.join("sub/c"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(t.join("sub"), fs::Permissions::from_mode(0o711)).unwrap();
    std::os::unix::fs::symlink("sub/c", t.join("link")).unwrap();
    fs::hard_link(t.join("a.txt"), t.join("sub/hard")).unwrap();
    s.build(&ctx, "direct", &["--target", "direct"]).ok();
    s.build(&ctx, "general", &["--target", "general"]).ok();
    let (d, g) = (s.save("direct"), s.save("general"));
    let (dl, gl) = (d.layers.last().unwrap(), g.layers.last().unwrap());
    assert_eq!(dl, gl, "same entries, same order");
    assert_eq!(d.config["rootfs"]["diff_ids"][1], g.config["rootfs"]["diff_ids"][1], "same layer bytes");
    let opt = dl.iter().find(|e| e.path.trim_end_matches('/') == "opt").expect("/opt copied up");
    assert_eq!((opt.mode & 0o7777, opt.uid, opt.gid), (0o700, 5, 6));
    let x = dl.iter().find(|e| e.path.trim_end_matches('/') == "opt/x").expect("/opt/x made");
    assert_eq!((x.mode & 0o7777, x.uid, x.gid), (0o755, 0, 0));
    let names: Vec<&str> = dl.iter().map(|e| e.path.trim_end_matches('/')).collect();
    assert_eq!(
        names,
        [
            "opt",
            "opt/x",
            "opt/x/y",
            "opt/x/y/B",
            "opt/x/y/a.txt",
            "opt/x/y/link",
            "opt/x/y/sub",
            "opt/x/y/sub/c",
            "opt/x/y/sub/deep",
            "opt/x/y/sub/deep/b.sh",
            "opt/x/y/sub/hard"
        ]
    );
    let hard = dl.iter().find(|e| e.path == "opt/x/y/sub/hard").unwrap();
    assert_eq!((hard.kind, hard.link.as_deref()), ('h', Some("opt/x/y/a.txt")));
    assert_eq!(dl.iter().find(|e| e.path == "opt/x/y/sub/deep/b.sh").unwrap().mode & 0o7777, 0o4755);
}

/// Instruction flags checked as BuildKit checks them (instructions/bflag.go `BFlags.Parse`, which
/// every instruction's parse in instructions/parse.go calls): an unknown flag on any instruction
/// (WORKDIR, USER, EXPOSE, VOLUME, MAINTAINER, SHELL and ONBUILD take none) is an error, as is a
/// flag given twice (but `--mount` and `--exclude`, BuildKit's repeatable strings flags) and a
/// bool flag given anything but true/false. ARG, STOPSIGNAL and HEALTHCHECK NONE: BuildKit never
/// parses their flags (parseArg, parseStopSignal and parseHealthcheck's NONE branch do not call
/// Parse, at HEAD 73ed682 as in 0.8), so the build goes through as there, and slipway warns that
/// they are ignored rather than drop them silently. docker 20.10's BuildKit (0.8) refuses and
/// accepts the same lines; its wording predates BuildKit's `unknown flag: --foo` (31a7c177e,
/// 2024: the flag named with its dashes), so only the flag's name is compared with it.
#[test]
fn instruction_flags_are_checked_as_buildkit_checks_them() {
    let s = Slipway::new();
    let refused = [
        ("WORKDIR --foo /x", "unknown flag: --foo"),
        ("USER --foo u", "unknown flag: --foo"),
        ("EXPOSE --foo 80", "unknown flag: --foo"),
        ("VOLUME --foo /v", "unknown flag: --foo"),
        ("MAINTAINER --foo me", "unknown flag: --foo"),
        ("SHELL --foo [\"/bin/sh\", \"-c\"]", "unknown flag: --foo"),
        ("ONBUILD --foo RUN true", "unknown flag: --foo"),
        ("ENV --foo A=1", "unknown flag: --foo"),
        ("LABEL --foo a=1", "unknown flag: --foo"),
        ("CMD --foo true", "unknown flag: --foo"),
        ("ENTRYPOINT --foo true", "unknown flag: --foo"),
        ("HEALTHCHECK --foo CMD true", "unknown flag: --foo"),
        ("COPY --chmod=600 --chmod=644 f /f", "duplicate flag specified: --chmod"),
        ("COPY --chown=1 --chown=2 f /f", "duplicate flag specified: --chown"),
        ("HEALTHCHECK --retries=1 --retries=2 CMD true", "duplicate flag specified: --retries"),
        ("COPY --from f /f", "missing a value on flag: --from"),
        ("COPY --link=1 f /f", "expecting boolean value for flag --link, not: 1"),
        ("COPY --link --link f /f", "duplicate flag specified: --link"),
        ("RUN --network=none --network=host true", "duplicate flag specified: --network"),
        ("COPY --frm=x f /f", "unknown flag: --frm (did you mean from?)"),
    ];
    // a repeatable flag repeats
    let ctx = s.context(
        "exclude",
        &[("Dockerfile", "FROM scratch\nCOPY --exclude=a --exclude=b . /d/\n"), ("a", "a"), ("b", "b"), ("c", "c")],
    );
    s.build(&ctx, "exclude:1", &[]).ok();
    let img = s.save("exclude:1");
    assert!(img.find("d/c").is_some() && img.find("d/a").is_none() && img.find("d/b").is_none());
    let mut ctxs = Vec::new();
    for (i, (line, want)) in refused.iter().enumerate() {
        let ctx = s.context(&format!("refused{i}"), &[("Dockerfile", &format!("FROM scratch\n{line}\n")), ("f", "f")]);
        let before = store_listing(&s.root());
        let r = s.build(&ctx, "refused:1", &[]);
        assert_ne!(r.code, 0, "{line}: must fail");
        assert!(r.stderr.contains("Dockerfile:2") && r.stderr.contains(want), "{line}: want {want:?} in {}", r.stderr);
        assert_eq!(before, store_listing(&s.root()), "{line}: nothing left behind");
        assert_ne!(s.run(&["inspect", "refused:1"]).code, 0);
        ctxs.push(ctx);
    }

    let accepted = "FROM scratch\nARG --foo A=1\nSTOPSIGNAL --foo SIGUSR1\nHEALTHCHECK --interval=5s NONE\n";
    let ok_ctx = s.context("accepted", &[("Dockerfile", accepted)]);
    let r = s.build(&ok_ctx, "accepted:1", &[]).ok();
    for want in [
        "Dockerfile:2: ARG: flags ignored, as BuildKit ignores them: --foo",
        "Dockerfile:3: STOPSIGNAL: flags ignored, as BuildKit ignores them: --foo",
        "Dockerfile:4: HEALTHCHECK NONE: flags ignored, as BuildKit ignores them: --interval=5s",
    ] {
        assert!(r.stderr.contains(want), "want {want:?} in {}", r.stderr);
    }
    let img = s.save("accepted:1");
    assert_eq!(img.cfg("StopSignal"), "SIGUSR1");
    assert_eq!(img.cfg("Healthcheck")["Test"], serde_json::json!(["NONE"]));

    let Some(bk) = BuildKit::shared() else { return };
    let o = bk.build(&ok_ctx, "accepted:1", &[]);
    o.ok();
    assert_eq!(bk.inspect("accepted:1", "{{.Config.StopSignal}}"), "SIGUSR1");
    // docker 20.10's frontend has no COPY --link, --exclude, flag suggestions or (outside its
    // labs build) RUN --network
    for ((line, want), ctx) in refused.iter().zip(&ctxs) {
        if line.contains("--link") || line.contains("--frm") || line.contains("--network") {
            continue;
        }
        let o = bk.build(ctx, "refused:1", &[]);
        assert_ne!(o.code, Some(0), "{line}: BuildKit must fail too\n{o}");
        let theirs = want.replace("--", "").to_lowercase();
        assert!(o.stderr.to_lowercase().contains(&theirs), "{line}: BuildKit: want {theirs:?} in\n{o}");
    }
}

/// A context with `dockerfile` and no `Dockerfile` builds from `dockerfile` (moby/moby#10858):
/// BuildKit's frontend falls back to it for any file named `Dockerfile` (dockerui/config.go,
/// DefaultDockerfileName) and buildx names it (build/opt.go handleLowercaseDockerfile), so
/// `-f sub/Dockerfile` falls back too (docker 20.10's own client does that only without `-f`,
/// so that case is not compared with it). `Dockerfile` wins when both are there, and messages
/// name the file read.
#[test]
fn lower_case_dockerfile_is_read_when_dockerfile_is_missing() {
    let s = Slipway::new();
    let ctx = s.context(
        "lower",
        &[
            ("dockerfile", "FROM scratch\nCOPY f /lower\n"),
            ("f", "f"),
            ("sub/dockerfile", "FROM scratch\nCOPY f /sub\n"),
        ],
    );
    s.build(&ctx, "lower:1", &[]).ok();
    assert!(s.save("lower:1").find("lower").is_some());
    let sub = ctx.join("sub/Dockerfile");
    s.build(&ctx, "lower:2", &["-f", &sub.to_string_lossy()]).ok();
    assert!(s.save("lower:2").find("sub").is_some());
    // another name does not fall back
    let r = s.build(&ctx, "lower:3", &["-f", &ctx.join("sub/Containerfile").to_string_lossy()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("sub/Containerfile"), "{}", r.stderr);
    // an error names the file read
    fs::write(ctx.join("dockerfile"), "FROM scratch\nWORKDIR --foo /x\n").unwrap();
    let r = s.build(&ctx, "lower:4", &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("dockerfile:2") && r.stderr.contains("unknown flag: --foo"), "{}", r.stderr);
    // Dockerfile wins
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY f /upper\n").unwrap();
    s.build(&ctx, "lower:5", &[]).ok();
    let img = s.save("lower:5");
    assert!(img.find("upper").is_some() && img.find("lower").is_none());

    let Some(bk) = BuildKit::shared() else { return };
    let ctx = s.context("lower-bk", &[("dockerfile", "FROM scratch\nCOPY f /lower\n"), ("f", "f")]);
    let o = bk.build(&ctx, "lower:1", &[]);
    o.ok();
    assert!(bk.save("lower:1").find("lower").is_some(), "{o}");
}
