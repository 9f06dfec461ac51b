//! COPY and ADD as BuildKit does them: `--link`, `--parents`, `ADD` of URLs and git
//! repositories, `--checksum`, and the semantics where slipway deviated from BuildKit (ARG/ENV
//! precedence, `--chown` with a user name alone, wildcards that match nothing). Each case builds
//! a real Dockerfile, saves the image and checks its files; where docker 20.10's BuildKit can
//! build the same Dockerfile (`integration::buildkit`), the test builds it there too and
//! compares, and where it cannot (frontend features newer than 20.10's), the comment says what
//! BuildKit's own tests and code expect.

use integration::buildkit::BuildKit;
use integration::slipway::{Entry, Saved, Slipway};
use integration::sources::{web, GitServer};

/// Every entry of every layer, in order: (layer index, path without a trailing `/`, kind, mode,
/// uid, gid), mtimes aside.
fn entries(img: &Saved) -> Vec<(usize, String, char, u32, u64, u64)> {
    let mut out = Vec::new();
    for (i, l) in img.layers.iter().enumerate() {
        for e in l {
            out.push((i, e.path.trim_end_matches('/').to_string(), e.kind, e.mode & 0o7777, e.uid, e.gid));
        }
    }
    out
}

fn find<'a>(img: &'a Saved, path: &str) -> &'a Entry {
    img.find(path).unwrap_or_else(|| panic!("{path} not in the image: {:#?}", entries(img)))
}

fn env(img: &Saved) -> Vec<String> {
    img.cfg("Env")
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:50::/home/bob:/bin/sh\n";
const GROUP: &str = "root:x:0:\nstaff:x:50:\nbob:x:1000:\n";

/// `COPY --chown=NAME` takes the user's primary group from /etc/passwd (BuildKit's file op
/// `readUser`; docker 20.10's BuildKit gives bob 1000:50 here); a numeric user alone gets the
/// same number as its group.
#[test]
fn chown_with_a_user_name_alone_takes_its_primary_group() {
    let s = Slipway::new();
    let df = "FROM scratch\nCOPY passwd /etc/passwd\nCOPY group /etc/group\n\
              COPY --chown=bob foo /bob\nCOPY --chown=1000 foo /uid\nCOPY --chown=bob:bob foo /bobbob\n\
              COPY --chown=bob:0 foo /bob0\nCOPY --chown=bob dir /dir\n";
    let ctx = s.context(
        "chown",
        &[("Dockerfile", df), ("passwd", PASSWD), ("group", GROUP), ("foo", "foo\n"), ("dir/f", "f\n")],
    );
    s.build(&ctx, "chown", &[]).ok();
    let img = s.save("chown");
    let want = [("bob", 1000, 50), ("uid", 1000, 1000), ("bobbob", 1000, 1000), ("bob0", 1000, 0), ("dir/f", 1000, 50)];
    for (p, u, g) in want {
        let e = find(&img, p);
        assert_eq!((e.uid, e.gid), (u, g), "{p}");
    }
    let Some(bk) = BuildKit::shared() else { return };
    bk.build(&ctx, "chown", &[]).ok();
    let theirs = bk.save("chown");
    for (p, _, _) in want {
        let (a, b) = (find(&img, p), find(&theirs, p));
        assert_eq!((a.uid, a.gid, a.mode & 0o7777), (b.uid, b.gid, b.mode & 0o7777), "{p}: slipway vs BuildKit");
    }
}

/// A later ARG replaces an ENV of the same name (BuildKit keeps both in one list, the LLB
/// state's env): in expansion and in RUN's environment; the config keeps the ENV value.
#[test]
fn an_arg_after_an_env_of_the_same_name_wins_as_in_buildkit() {
    let s = Slipway::new();
    let df = "FROM scratch\nENV A=env\nARG A=arg\nENV B=${A}\nARG C=argc\nENV C=envc\nENV D=${C}\n";
    let ctx = s.context("argenv", &[("Dockerfile", df)]);
    s.build(&ctx, "argenv", &[]).ok();
    let img = s.save("argenv");
    let want = ["A=env", "B=arg", "C=envc", "D=envc"];
    assert_eq!(env(&img)[1..], want, "{:?}", env(&img));
    // RUN sees the ARG's value
    s.base("argenv-base");
    let df = "FROM argenv-base\nENV A=env\nARG A=arg\nRUN echo \"$A\" > /a\n";
    let run_ctx = s.context("argenv-run", &[("Dockerfile", df)]);
    s.build(&run_ctx, "argenv-run", &[]).ok();
    let ran = s.save("argenv-run");
    assert_eq!(find(&ran, "a").data, b"arg\n");
    let Some(bk) = BuildKit::shared() else { return };
    bk.build(&ctx, "argenv", &[]).ok();
    let theirs: Vec<String> = serde_json::from_str(&bk.inspect("argenv", "{{json .Config.Env}}")).expect("Env");
    assert_eq!(theirs, env(&img), "config Env: BuildKit vs slipway");
    // the same RUN through BuildKit, on slipway's busybox image
    let tar = s.dir.path().join("base.tar");
    s.run(&["save", "argenv-base", "-o", &tar.to_string_lossy()]).ok();
    bk.run(&["load", "-i", &tar.to_string_lossy()]).ok();
    bk.build(&run_ctx, "argenv-run", &[]).ok();
    assert_eq!(find(&bk.save("argenv-run"), "a").data, b"arg\n", "BuildKit's RUN");
}

/// A changed ARG, LABEL or ENV leaves the COPY steps below it cached (BuildKit's metadata
/// instructions make no LLB op, so the file ops below keep their keys); a RUN below an ENV it
/// sees misses, in both. docker 20.10's BuildKit says CACHED for the same steps.
#[test]
fn metadata_changes_above_a_copy_leave_it_cached_as_in_buildkit() {
    let s = Slipway::new();
    s.base("meta-base");
    let df = "FROM meta-base\nARG V=1\nLABEL v=$V\nCOPY foo /foo\nENV E=$V\nCOPY bar /bar\nRUN echo \"$E\" > /e\n";
    let ctx = s.context("meta-cache", &[("Dockerfile", df), ("foo", "foo\n"), ("bar", "bar\n")]);
    s.build(&ctx, "meta", &[]).ok();
    let r = s.build(&ctx, "meta", &["--build-arg", "V=2"]).ok();
    let hit = |text: &str| step_log(&r.stdout, text).contains("Using cache");
    assert!(hit("COPY foo /foo") && hit("COPY bar /bar"), "{}", r.stdout);
    assert!(!hit("LABEL v=$V") && !hit("ENV E=$V") && !hit("RUN echo \"$E\" > /e"), "{}", r.stdout);
    let img = s.save("meta");
    assert_eq!(find(&img, "e").data, b"2\n");
    assert_eq!(img.cfg("Labels")["v"], "2");
    assert!(env(&img).contains(&"E=2".to_string()), "{:?}", env(&img));

    let Some(bk) = BuildKit::shared() else { return };
    let tar = s.dir.path().join("base.tar");
    s.run(&["save", "meta-base", "-o", &tar.to_string_lossy()]).ok();
    bk.run(&["load", "-i", &tar.to_string_lossy()]).ok();
    bk.build(&ctx, "meta", &[]).ok();
    let theirs = bk.build(&ctx, "meta", &["--build-arg", "V=2"]);
    let log = theirs.ok().stderr.clone();
    // plain progress: `#N [i/n] COPY foo /foo` then `#N CACHED` for a hit
    let cached = |text: &str| {
        let Some(at) = log.find(&format!("] {text}\n")) else { panic!("no {text:?} in BuildKit's log:\n{log}") };
        let id = log[..at].rsplit('\n').next().and_then(|l| l.split(' ').next()).unwrap_or_default().to_string();
        log.contains(&format!("{id} CACHED\n"))
    };
    assert!(cached("COPY foo /foo") && cached("COPY bar /bar"), "BuildKit:\n{log}");
    assert!(!cached("RUN echo \"2\" > /e"), "BuildKit:\n{log}");
    assert_eq!(find(&bk.save("meta"), "e").data, b"2\n");
}

/// A wildcard that matches nothing adds nothing (BuildKit copies with AllowEmptyWildcard):
/// next to a source that matches, that one is copied; alone, the step makes an empty layer and
/// no destination directory. A path that is not there stays an error.
#[test]
fn a_wildcard_matching_nothing_adds_nothing() {
    let s = Slipway::new();
    let df = "FROM scratch AS src\nCOPY foo /w/foo\n\
              FROM scratch\nCOPY foo nomatch* /w/\nCOPY nomatch* /x/\nCOPY --from=src /w/nomatch* /w/foo /y/\n";
    let ctx = s.context("empty-wildcard", &[("Dockerfile", df), ("foo", "foo\n")]);
    s.build(&ctx, "ew", &[]).ok();
    let img = s.save("ew");
    let paths = |img: &Saved| entries(img).into_iter().map(|e| (e.0, e.1)).collect::<Vec<_>>();
    let want = [(0, "w"), (0, "w/foo"), (2, "y"), (2, "y/foo")].map(|(i, p)| (i, p.to_string()));
    assert_eq!(paths(&img), want, "{:#?}", entries(&img));
    assert_eq!(img.layers.len(), 3, "the COPY that matched nothing still makes a (empty) layer");
    let missing = s.context("missing", &[("Dockerfile", "FROM scratch\nCOPY foo nomatch /d/\n"), ("foo", "")]);
    let r = s.build(&missing, "missing", &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Dockerfile:2: COPY: source \"nomatch\" not found"), "{}", r.stderr);
    let Some(bk) = BuildKit::shared() else { return };
    bk.build(&ctx, "ew", &[]).ok();
    assert_eq!(paths(&bk.save("ew")), want, "BuildKit");
}

/// The text a step printed after its `Step N/M : TEXT` line, up to the next step.
fn step_log<'a>(out: &'a str, text: &str) -> &'a str {
    let start = out.find(&format!(": {text}\n")).unwrap_or_else(|| panic!("no step {text:?} in:\n{out}"));
    let rest = &out[start..];
    let end = rest[1..].find("Step ").map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

/// `COPY --link`: the step's layer is made from its sources alone (no parent directory or
/// file of the image below is read), and its cache key leaves out the state below, so a
/// change in an earlier step rebuilds that step but still hits the --link step, whose layer
/// (same digest) is put on the new state. `--link --chown` takes numeric ids only (there is
/// no /etc/passwd below a linked layer; BuildKit fails such a step, "invalid user index",
/// as its frontend makes the copy on `llb.Scratch()`).
#[test]
fn copy_link_layer_does_not_depend_on_what_is_below() {
    let s = Slipway::new();
    let df = "FROM scratch\nCOPY a.txt /a.txt\nCOPY --link app/ /app/\nCOPY --link --chown=5:6 b.txt /deep/b/\n";
    let ctx = s.context("link", &[("Dockerfile", df), ("a.txt", "a1\n"), ("app/x", "x\n"), ("b.txt", "b\n")]);
    s.build(&ctx, "link:1", &[]).ok();
    let one = s.save("link:1");
    let paths = |img: &Saved, i: usize| {
        entries(img).into_iter().filter(|e| e.0 == i).map(|e| (e.1, e.3, e.4, e.5)).collect::<Vec<_>>()
    };
    let l = |p: &str, m: u32, u: u64, g: u64| (p.to_string(), m, u, g);
    assert_eq!(paths(&one, 1), [l("app", 0o755, 0, 0), l("app/x", 0o644, 0, 0)]);
    assert_eq!(paths(&one, 2), [l("deep", 0o755, 5, 6), l("deep/b", 0o755, 5, 6), l("deep/b/b.txt", 0o644, 5, 6)]);

    std::fs::write(ctx.join("a.txt"), "a2\n").unwrap();
    let r = s.build(&ctx, "link:2", &["--explain-cache"]).ok();
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(step_log(&out, "COPY a.txt /a.txt").contains("Cache miss: file changed: a.txt"), "{out}");
    assert!(step_log(&out, "COPY --link app/ /app/").contains("Using cache"), "{out}");
    assert!(step_log(&out, "COPY --link --chown=5:6 b.txt /deep/b/").contains("Using cache"), "{out}");
    let two = s.save("link:2");
    assert_eq!(find(&two, "a.txt").data, b"a2\n");
    assert_eq!(find(&two, "app/x").data, b"x\n");
    let diff_ids = |img: &Saved| img.config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
    assert_ne!(diff_ids(&one)[0], diff_ids(&two)[0]);
    assert_eq!(diff_ids(&one)[1..], diff_ids(&two)[1..], "the --link layers are the same blobs");
    assert_eq!(two.history().len(), 3);

    // a change of the --link step's own source misses it
    std::fs::write(ctx.join("app/x"), "x2\n").unwrap();
    let r = s.build(&ctx, "link:3", &["--explain-cache"]).ok();
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(step_log(&out, "COPY --link app/ /app/").contains("Cache miss: file changed: app/x"), "{out}");
    assert_eq!(find(&s.save("link:3"), "app/x").data, b"x2\n");

    let ctx = s.context("linkname", &[("Dockerfile", "FROM scratch\nCOPY --link --chown=bob b /b\n"), ("b", "")]);
    let r = s.build(&ctx, "ln", &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Dockerfile:2: COPY --link --chown=bob"), "{}", r.stderr);
    // docker 20.10's frontend predates --link ("dockerfile parse error line 2: Unknown flag:
    // link"); BuildKit's testCopyLink... cases are the reference
}

/// `COPY --parents` keeps each source's path (below a `/./` pivot, if any), `**` included,
/// with the directories on the way; a path without wildcards must exist. The cases of
/// BuildKit's testCopyParents and testCopyRelativeParents (docker 20.10's frontend predates
/// --parents).
#[test]
fn copy_parents_keeps_source_paths() {
    let s = Slipway::new();
    let df = "FROM scratch AS base\nCOPY tree /test/\n\
              FROM scratch\nCOPY --parents foo1/foo2/bar /\nWORKDIR /test\nCOPY --parents foo1/foo2/ba* .\n\
              COPY --parents src/./pkg/**/*.go /go/\n\
              COPY --from=base --parents /test/a/b/./c/d /middle/\n\
              COPY --from=base --parents /test/a/./*/c /wild/\n\
              COPY --from=base --parents /test/a/b*/./c/**/e /dw/\n";
    let ctx = s.context(
        "parents",
        &[
            ("Dockerfile", df),
            ("foo1/foo2/bar", "testing"),
            ("foo1/foo2/baz", "testing2"),
            ("src/pkg/one/a.go", "a"),
            ("src/pkg/one/a.txt", "t"),
            ("src/pkg/two/deep/b.go", "b"),
            ("tree/a/b/c/d/foo", ""),
            ("tree/a/b/c/d/e/bay", ""),
            ("tree/a/b2/c/d/e/bar", ""),
            ("tree/a/b/c2/d/e/baz", ""),
        ],
    );
    s.build(&ctx, "parents", &[]).ok();
    let img = s.save("parents");
    assert_eq!(find(&img, "foo1/foo2/bar").data, b"testing");
    assert_eq!(find(&img, "test/foo1/foo2/bar").data, b"testing");
    assert_eq!(find(&img, "test/foo1/foo2/baz").data, b"testing2");
    for p in ["go/pkg/one/a.go", "go/pkg/two/deep/b.go", "middle/c/d/foo", "middle/c/d/e/bay"] {
        find(&img, p);
    }
    assert!(img.find("go/pkg/one/a.txt").is_none() && img.find("go/src").is_none());
    assert!(img.find("middle/a").is_none() && img.find("middle/test").is_none());
    for p in ["wild/b/c/d/e", "wild/b2/c/d/e/bar", "dw/c/d/e/bay", "dw/c/d/e/bar"] {
        find(&img, p);
    }
    let missing = s.context("nop", &[("Dockerfile", "FROM scratch\nCOPY --parents a/nope /\n"), ("a/x", "")]);
    let r = s.build(&missing, "nop", &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Dockerfile:2") && r.stderr.contains("a/nope"), "{}", r.stderr);
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(b))
}

/// A gzip tar holding one file `inside`.
fn tar_gz() -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "inside", &b"in\n"[..]).expect("tar");
    b.into_inner().expect("tar").finish().expect("gzip")
}

/// 2015-10-21T07:28:00Z, as HTTP writes it.
const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
const LAST_MODIFIED_SECS: i64 = 1_445_412_480;

/// ADD of an http URL: the builder fetches it (RUN stays offline); the file is 0600 root
/// (BuildKit's http source), or as `--chmod`/`--chown` say, with the server's Last-Modified as
/// its mtime; a URL to a directory destination takes the URL's basename; an archive fetched
/// by URL is not unpacked. The same Dockerfile through docker 20.10's BuildKit gives the same
/// files, modes, owners and mtimes.
#[test]
fn add_url_fetches_keeps_last_modified_and_applies_chmod_chown() {
    let web = web::Server::start();
    web.put("/files/hello.txt", b"hello\n", Some("\"h1\""), Some(LAST_MODIFIED));
    web.put("/files/tool.sh", b"#!/bin/sh\necho tool\n", Some("\"t1\""), None);
    let tgz = tar_gz();
    web.put("/dl/arch.tar.gz", &tgz, None, Some(LAST_MODIFIED));
    let s = Slipway::new();
    let df = format!(
        "FROM scratch\nADD {} /web/\nADD --chmod=755 --chown=10:20 {} /bin/tool\nADD {} /arch/\n",
        web.url("/files/hello.txt"),
        web.url("/files/tool.sh"),
        web.url("/dl/arch.tar.gz"),
    );
    let ctx = s.context("addurl", &[("Dockerfile", &df)]);
    s.build(&ctx, "addurl", &[]).ok();
    let img = s.save("addurl");
    let hello = find(&img, "web/hello.txt");
    assert_eq!((hello.mode & 0o7777, hello.uid, hello.gid, hello.mtime), (0o600, 0, 0, LAST_MODIFIED_SECS));
    assert_eq!(hello.data, b"hello\n");
    let tool = find(&img, "bin/tool");
    assert_eq!((tool.mode & 0o7777, tool.uid, tool.gid), (0o755, 10, 20));
    assert_eq!(tool.data, b"#!/bin/sh\necho tool\n");
    let arch = find(&img, "arch/arch.tar.gz");
    assert_eq!(arch.data, tgz, "an archive fetched by URL is not unpacked");
    assert!(img.find("arch/inside").is_none());
    // `--unpack` (frontend 1.17) turns that around, for a URL and for a context file
    let df = format!(
        "FROM scratch\nADD --unpack=true {} /unp/\nADD --unpack=false local.tar.gz /kept/\nADD local.tar.gz /def/\n",
        web.url("/dl/arch.tar.gz")
    );
    let uctx = s.context("unpack", &[("Dockerfile", &df)]);
    std::fs::write(uctx.join("local.tar.gz"), &tgz).unwrap();
    s.build(&uctx, "unpack", &[]).ok();
    let u = s.save("unpack");
    assert_eq!(find(&u, "unp/inside").data, b"in\n");
    assert!(u.find("unp/arch.tar.gz").is_none());
    assert_eq!(find(&u, "kept/local.tar.gz").data, tgz);
    assert_eq!(find(&u, "def/inside").data, b"in\n");

    let Some(bk) = BuildKit::shared() else { return };
    bk.build(&ctx, "addurl", &[]).ok();
    let theirs = bk.save("addurl");
    for p in ["web/hello.txt", "bin/tool", "arch/arch.tar.gz"] {
        let (a, b) = (find(&img, p), find(&theirs, p));
        assert_eq!((a.uid, a.gid, &a.data), (b.uid, b.gid, &b.data), "{p}");
    }
    for p in ["web/hello.txt", "arch/arch.tar.gz"] {
        assert_eq!(find(&img, p).mode & 0o7777, find(&theirs, p).mode & 0o7777, "{p}");
    }
    // docker 20.10's built-in frontend drops --chmod on a URL source (moby/buildkit#2114,
    // fixed in docker/dockerfile:1.3; today's frontend passes it to the copy): slipway does
    // what the fixed frontend does
    assert_eq!(find(&theirs, "bin/tool").mode & 0o7777, 0o600, "docker 20.10's BuildKit");
    // with a Last-Modified, the mtime is the server's (without one BuildKit writes the
    // fetch's time, slipway the build's epoch: reproducible)
    assert_eq!(find(&theirs, "web/hello.txt").mtime, LAST_MODIFIED_SECS, "BuildKit");
}

/// A URL source is cached by what it serves: a rebuild with the resource unchanged is a hit
/// (revalidated by ETag, not downloaded again); a changed one is a miss, and the log says it
/// is the URL's content that changed.
#[test]
fn add_url_is_cached_by_etag_and_content() {
    let web = web::Server::start();
    web.put("/v", b"one\n", Some("\"1\""), Some(LAST_MODIFIED));
    let s = Slipway::new();
    let url = web.url("/v");
    let df = format!("FROM scratch\nADD {url} /v\n");
    let ctx = s.context("urlcache", &[("Dockerfile", &df)]);
    s.build(&ctx, "u:1", &[]).ok();
    assert_eq!(web.take_log(), ["GET /v 200"]);
    let r = s.build(&ctx, "u:2", &["--explain-cache"]).ok();
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains("Using cache"), "{out}");
    let log = web.take_log();
    assert!(!log.iter().any(|l| l.ends_with(" 200") && l.starts_with("GET")), "downloaded again: {log:?}");
    assert_eq!(s.save("u:1").id(), s.save("u:2").id());

    web.put("/v", b"two\n", Some("\"2\""), Some(LAST_MODIFIED));
    let r = s.build(&ctx, "u:3", &["--explain-cache"]).ok();
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains(&format!("Cache miss: file changed: {url}")), "{out}");
    assert_eq!(find(&s.save("u:3"), "v").data, b"two\n");
    // a server without ETags: the content is downloaded and its digest decides
    web.put("/v", b"two\n", None, Some(LAST_MODIFIED));
    let r = s.build(&ctx, "u:4", &[]).ok();
    assert!(format!("{}{}", r.stdout, r.stderr).contains("Using cache"));
    assert_eq!(s.save("u:3").id(), s.save("u:4").id());
}

/// `ADD --checksum`: the content must have that digest; a mismatch fails the step with the
/// URL, both digests and the Dockerfile line; a matching one is a hit on the checksum alone
/// (nothing is asked of the server). (docker 20.10's frontend predates --checksum: BuildKit's
/// own tests, testAddChecksum, expect the same.) Bad uses are refused as BuildKit refuses them.
#[test]
fn add_checksum_is_verified() {
    let web = web::Server::start();
    web.put("/c.txt", b"checked\n", Some("\"c\""), None);
    let s = Slipway::new();
    let good = format!("sha256:{}", sha256_hex(b"checked\n"));
    let bad = format!("sha256:{}", sha256_hex(b"other\n"));
    let url = web.url("/c.txt");
    let ctx = s.context("sum", &[("Dockerfile", &format!("FROM scratch\nADD --checksum={good} {url} /c\n"))]);
    s.build(&ctx, "sum:1", &[]).ok();
    assert_eq!(find(&s.save("sum:1"), "c").data, b"checked\n");
    web.take_log();
    let r = s.build(&ctx, "sum:2", &[]).ok();
    assert!(format!("{}{}", r.stdout, r.stderr).contains("Using cache"));
    assert!(web.take_log().is_empty(), "a checksum is the key: no request");

    let ctx = s.context("badsum", &[("Dockerfile", &format!("FROM scratch\n\nADD --checksum={bad} {url} /c\n"))]);
    let r = s.build(&ctx, "bad", &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Dockerfile:3"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("digest mismatch for {url}: {good} (expected: {bad})")), "{}", r.stderr);

    for (df, want) in [
        (format!("ADD --checksum={good} ctxfile /c"), "checksum requires HTTP(S) or Git sources".to_string()),
        (format!("COPY --checksum={good} {url} /c"), "unknown flag: --checksum".to_string()),
        (format!("ADD --checksum={good} {url} {url} /d/"), "checksum can't be specified for multiple sources".into()),
        (format!("ADD --checksum=md5:0 {url} /c"), "unsupported digest algorithm".into()),
        (format!("COPY {url} /c"), "source can't be a URL for COPY".into()),
        (
            format!("ADD {} /c", web.url("/missing")),
            format!("GET {}: invalid response status 404", web.url("/missing")),
        ),
    ] {
        let ctx = s.context("refused", &[("Dockerfile", &format!("FROM scratch\n{df}\n")), ("ctxfile", "x")]);
        let r = s.build(&ctx, "refused", &[]);
        assert_ne!(r.code, 0, "{df}");
        assert!(r.stderr.contains("Dockerfile:2") && r.stderr.contains(&want), "{df}: {}", r.stderr);
    }
}

/// ADD of a git repository: `#ref:subdir` (a tag, a branch, the default branch), the
/// checkout's files (no .git) copied into the destination with git's modes (0644, 0755),
/// `--keep-git-dir` keeping .git, `--chown` on everything, `?mtime=commit` giving the
/// commit's time (else the build's epoch, where BuildKit leaves the checkout's time: slipway
/// stays reproducible, two stores give the same image); cached by the commit the ref
/// resolves to, so a new commit misses the steps that follow that ref and the log says so.
/// (docker 20.10's frontend predates ADD of git; BuildKit's testAddGit and testGitQueryString
/// are the reference.)
#[test]
fn add_git_checks_out_the_ref_and_is_cached_by_commit() {
    let Some(g) = GitServer::start() else { return };
    let u = g.url();
    let s = Slipway::new();
    let df = format!(
        "FROM scratch\nADD {u}#v1 /v1/\nADD {u}#main:sub /sub/\nADD {u}?mtime=commit /mt/\n\
         ADD --keep-git-dir=true --chown=4242:8484 {u} /kept/\n"
    );
    let ctx = s.context("git", &[("Dockerfile", &df)]);
    s.build(&ctx, "git:1", &[]).ok();
    let img = s.save("git:1");
    let foo = find(&img, "v1/foo");
    assert_eq!((foo.data.as_slice(), foo.mode & 0o7777, foo.uid, foo.mtime), (&b"foo v1\n"[..], 0o644, 0, 0));
    assert_eq!(find(&img, "v1/run.sh").mode & 0o7777, 0o755);
    assert!(img.find("v1/.git").is_none());
    assert_eq!(find(&img, "sub/b.txt").data, b"b v2\n");
    assert!(img.find("sub/foo").is_none() && img.find("sub/sub").is_none());
    assert_eq!((find(&img, "mt/foo").mtime, find(&img, "mt/sub/b.txt").mtime), (1_600_000_100, 1_600_000_100));
    let kept = find(&img, "kept/foo");
    assert_eq!((kept.data.as_slice(), kept.uid, kept.gid), (&b"foo v2\n"[..], 4242, 8484));
    find(&img, "kept/.git/HEAD");

    // reproducible: another store, the same image
    let df2 = format!("FROM scratch\nADD {u}#v1 /v1/\nADD {u}#main:sub /sub/\n");
    let c2 = s.context("git2", &[("Dockerfile", &df2)]);
    s.build(&c2, "git:r", &[]).ok();
    let other = Slipway::new();
    other.build(&c2, "git:r", &[]).ok();
    assert_eq!(s.save("git:r").id(), other.save("git:r").id());

    // a rebuild is all hits; a new commit on main misses the steps that follow main
    let r = s.build(&ctx, "git:2", &[]).ok();
    assert_eq!(format!("{}{}", r.stdout, r.stderr).matches("Using cache").count(), 4, "{}", r.stdout);
    g.commit("sub/b.txt", "b v3\n");
    let r = s.build(&ctx, "git:3", &["--explain-cache"]).ok();
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(step_log(&out, &format!("ADD {u}#v1 /v1/")).contains("Using cache"), "{out}");
    assert!(
        step_log(&out, &format!("ADD {u}#main:sub /sub/")).contains(&format!("Cache miss: file changed: {u}#main:sub")),
        "{out}"
    );
    assert_eq!(find(&s.save("git:3"), "sub/b.txt").data, b"b v3\n");
    // prune drops the bare repositories; the named image's steps stay hits (keyed by commit)
    assert!(s.root().join("cache/git").read_dir().map(|mut d| d.next().is_some()).unwrap_or(false));
    s.run(&["prune"]).ok();
    assert!(!s.root().join("cache/git").read_dir().map(|mut d| d.next().is_some()).unwrap_or(false));
    let r = s.build(&ctx, "git:3", &[]).ok();
    assert_eq!(format!("{}{}", r.stdout, r.stderr).matches("Using cache").count(), 4, "{}", r.stdout);

    for (df, want) in [
        (format!("ADD {u}#nosuch /x/"), "does not contain ref nosuch".to_string()),
        (format!("COPY {u}#v1 /x/"), "source can't be a git ref for COPY".to_string()),
        (
            format!("ADD --keep-git-dir=false {u}?keep-git-dir=true /x/"),
            "inconsistent keep-git-dir configuration".into(),
        ),
        (format!("ADD --checksum=0123abcd {u}#v1 /x/"), "expected checksum to match 0123abcd".into()),
        (format!("ADD {u}#main:nosuch /x/"), "no directory \"nosuch\"".into()),
    ] {
        let ctx = s.context("gitbad", &[("Dockerfile", &format!("FROM scratch\n{df}\n"))]);
        let r = s.build(&ctx, "gitbad", &[]);
        assert_ne!(r.code, 0, "{df}");
        assert!(r.stderr.contains("Dockerfile:2") && r.stderr.contains(&want), "{df}: {}", r.stderr);
    }
}

/// A tar made header by header whose uid and gid fields are left blank (NULs in one entry,
/// spaces in another), as some archivers write them, next to one with numbers.
fn blank_owner_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, mode, ids, fill) in [
        ("d", tar::EntryType::Directory, 0o750, None, 0u8),
        ("d/nul", tar::EntryType::Regular, 0o640, None, 0u8),
        ("d/space", tar::EntryType::Regular, 0o755, None, b' '),
        ("owned", tar::EntryType::Regular, 0o600, Some((7, 8)), 0u8),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).unwrap();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        let body: &[u8] = if kind == tar::EntryType::Regular { b"data\n" } else { b"" };
        h.set_size(body.len() as u64);
        match ids {
            Some((u, g)) => {
                h.set_uid(u);
                h.set_gid(g);
            }
            None => {
                let o = h.as_old_mut();
                o.uid = [fill; 8];
                o.gid = [fill; 8];
            }
        }
        h.set_cksum();
        b.append(&h, body).unwrap();
    }
    b.into_inner().unwrap()
}

/// ADD of a local archive whose entries have blank uid/gid fields: they are root's, as Go's
/// archive/tar reads them (slipway refused the archive before: "numeric field was not a
/// number"). docker 20.10's BuildKit makes the same files, owners and modes.
#[test]
fn add_archive_with_blank_owner_fields() {
    let s = Slipway::new();
    let ctx = s.context("blankids", &[("Dockerfile", "FROM scratch\nADD arch.tar /x/\n")]);
    std::fs::write(ctx.join("arch.tar"), blank_owner_tar()).unwrap();
    s.build(&ctx, "blankids", &[]).ok();
    let img = s.save("blankids");
    let got = |img: &Saved| -> Vec<(String, u32, u64, u64, Vec<u8>)> {
        ["x/d", "x/d/nul", "x/d/space", "x/owned"]
            .iter()
            .map(|p| {
                let e = find(img, p);
                (p.to_string(), e.mode & 0o7777, e.uid, e.gid, e.data.clone())
            })
            .collect()
    };
    let ours = got(&img);
    let want: Vec<(String, u32, u64, u64, Vec<u8>)> = vec![
        ("x/d".into(), 0o750, 0, 0, vec![]),
        ("x/d/nul".into(), 0o640, 0, 0, b"data\n".to_vec()),
        ("x/d/space".into(), 0o755, 0, 0, b"data\n".to_vec()),
        ("x/owned".into(), 0o600, 7, 8, b"data\n".to_vec()),
    ];
    assert_eq!(ours, want);
    let Some(bk) = BuildKit::shared() else { return };
    bk.build(&ctx, "blankids", &[]).ok();
    assert_eq!(got(&bk.save("blankids")), want, "docker 20.10's BuildKit");
}

/// `--chmod` in chmod's symbolic form (BuildKit's frontend, docker/dockerfile 1.14+): applied to
/// each copied entry's own mode. As in BuildKit's testChmodNonOctal, the expectation is what
/// `chmod MODE` (busybox's, in a RUN) makes of the same entries, a file 0666 and a directory
/// 0124 copied from another stage; then a context tree with executable and plain files under
/// `u=rwX,go=rX`, a mode from an ARG, and a malformed mode refused naming the line. An octal
/// mode also makes the missing parents of the destination with its bits, a symbolic one 0755
/// (BuildKit's testCopyChmod: `COPY --chmod=777 foo /parent/foo` gives /parent 0777). docker
/// 20.10's BuildKit predates symbolic modes (it refuses them), so BuildKit's tests are the
/// reference here.
#[test]
fn chmod_takes_symbolic_modes_as_chmod_does() {
    use std::os::unix::fs::PermissionsExt;
    let s = Slipway::new();
    s.base("chmod-base");
    let modes = ["go-w", "u=rw,g=r,o=r", "a+X", "u+rw,g+r,o-x,o+w", "u=rwX,go=rX", "+x", "g=u", "o-r+w,u-w"];
    let mut expected = String::new();
    let mut copies = String::new();
    for (i, m) in modes.iter().enumerate() {
        expected.push_str(&format!(
            "RUN cp -a /input/file /expected/f{i} && chmod {m} /expected/f{i} && \
             mkdir -p /input/dirs/d{i} && cp -a /input/dir /input/dirs/d{i}/d{i} && \
             cp -a /input/dirs/d{i}/. /expected/ && chmod {m} /expected/d{i}\n"
        ));
        copies.push_str(&format!(
            "COPY --from=base --chmod={m} /input/file /f{i}\nCOPY --from=base --chmod={m} /input/dirs/d{i} /\n"
        ));
    }
    let df = format!(
        "FROM chmod-base AS base\n\
         RUN mkdir /input /expected && touch /input/file && chmod 666 /input/file && \
         mkdir /input/dir && chmod 124 /input/dir\n\
         {expected}\
         FROM scratch AS expected\nCOPY --from=base /expected/ /\n\
         FROM scratch AS result\n{copies}\
         COPY --chmod=u=rwX,go=rX tree /tree/\n\
         ARG MODE=u+x,g=u\n\
         COPY --chmod=$MODE tree/plain /argmode\n\
         COPY --chmod=777 tree/plain /parent/plain\n\
         COPY --chmod=770 tree/plain /parent/sub/plain\n\
         COPY --chmod=+x tree/plain /sym/parent/plain\n\
         COPY --chmod=g+t tree/plain /sticky\n"
    );
    let ctx = s.context(
        "chmod-sym",
        &[("Dockerfile", &df), ("tree/exe", "#!/bin/sh\n"), ("tree/plain", "p\n"), ("tree/sub/f", "f\n")],
    );
    let set = |p: &str, m: u32| std::fs::set_permissions(ctx.join(p), std::fs::Permissions::from_mode(m)).unwrap();
    set("tree/exe", 0o700);
    set("tree/plain", 0o600);
    set("tree/sub/f", 0o640);
    set("tree/sub", 0o700);
    s.build(&ctx, "chmod-exp", &["--target", "expected"]).ok();
    let r = s.build(&ctx, "chmod-res", &["--target", "result"]).ok();
    let (exp, res) = (s.save("chmod-exp"), s.save("chmod-res"));
    let mode = |img: &Saved, p: &str| find(img, p).mode & 0o7777;
    for (i, m) in modes.iter().enumerate() {
        for p in [format!("f{i}"), format!("d{i}")] {
            assert_eq!(
                mode(&res, &p),
                mode(&exp, &p),
                "--chmod={m} on {p}: slipway {:o} vs chmod {:o}",
                mode(&res, &p),
                mode(&exp, &p)
            );
        }
    }
    // the expectations are real modes, not both sides unchanged
    assert_eq!((mode(&exp, "f0"), mode(&exp, "d2")), (0o644, 0o135));
    for (p, m) in [("tree/exe", 0o755), ("tree/plain", 0o644), ("tree/sub", 0o755), ("tree/sub/f", 0o644)] {
        assert_eq!(mode(&res, p), m, "u=rwX,go=rX on {p}");
    }
    assert_eq!(mode(&res, "argmode"), 0o770, "ARG MODE=u+x,g=u on 0600");
    assert_eq!((mode(&res, "parent"), mode(&res, "parent/sub")), (0o777, 0o770), "octal: parents get the mode");
    assert_eq!((mode(&res, "sym"), mode(&res, "sym/parent"), mode(&res, "sym/parent/plain")), (0o755, 0o755, 0o711));
    // BuildKit's mode package follows BSD setmode: `t` with a class other than `o` alone sets
    // the sticky bit (busybox's chmod, hence no comparison above, leaves it)
    assert_eq!(mode(&res, "sticky"), 0o1600, "g+t");
    assert!(r.stdout.contains("COPY --chmod=u=rwX,go=rX tree /tree/"), "{}", r.stdout);
    assert!(res.history().iter().any(|h| h.contains("--chmod=u=rwX,go=rX")), "{:?}", res.history());

    // another mode from the ARG is another cache key: that step misses, the one before hits
    let again = s.build(&ctx, "chmod-res2", &["--target", "result", "--build-arg", "MODE=a+r"]).ok();
    let step = step_log(&again.stdout, "COPY --chmod=$MODE tree/plain /argmode");
    assert!(!step.contains("Using cache"), "{step}");
    assert!(
        step_log(&again.stdout, "COPY --chmod=u=rwX,go=rX tree /tree/").contains("Using cache"),
        "{}",
        again.stdout
    );
    assert_eq!(mode(&s.save("chmod-res2"), "argmode"), 0o644);

    // malformed: named with the Dockerfile's line, nothing built
    for (bad, want) in
        [("u+q", "invalid chmod parameter: 'u+q'"), ("64a", "it should be octal string and between 0 and 07777")]
    {
        let df = format!("FROM scratch\nCOPY --chmod={bad} tree/plain /p\n");
        let c = s.context("chmod-bad", &[("Dockerfile", &df), ("tree/plain", "p\n")]);
        let r = s.build(&c, "chmod-bad", &[]);
        assert_ne!(r.code, 0);
        assert!(r.stderr.contains("Dockerfile:2: COPY: ") && r.stderr.contains(want), "{bad}: {}", r.stderr);
    }
}
