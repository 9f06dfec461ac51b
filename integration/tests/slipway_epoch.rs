//! SOURCE_DATE_EPOCH given as a name instead of seconds, as BuildKit's newest Dockerfile
//! frontend takes it (dockerfile2llb/epoch.go; its tests are
//! frontend/dockerfile/dockerfile_source_date_epoch_test.go, whose cases these follow):
//! `context` (the build context: a git one's commit time, an http one's Last-Modified or else
//! the newest file of the archive, a local one none), a `--build-context` name, or a stage that
//! is one remote ADD (`FROM scratch`, ARGs, `ADD URL`). The time derived is the image's and its
//! history's `created`, every mtime the build writes and what `ARG SOURCE_DATE_EPOCH` reads;
//! the same input gives the same digest. docker 20.10's BuildKit (0.8) takes only seconds, so
//! there is nothing to compare with here: BuildKit's code and tests are the reference.
//! Sources are served on loopback by the test (`integration::sources`).

use integration::slipway::{store_listing, Saved, Slipway};
use integration::sources::{web, GitServer};
use std::path::Path;

fn log(r: &integration::slipway::Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}

/// An uncompressed tar of regular files (path, content, mtime), 0644 root.
fn tar_of(files: &[(&str, &str, u64)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, c, mtime) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(c.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(*mtime);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, p, c.as_bytes()).expect("tar");
    }
    b.into_inner().expect("tar")
}

/// The Dockerfile's own steps (the last `n` history entries) were all made at `created`, as
/// were the image, and the file `new` (written by a RUN) has that mtime; `epoch` (what
/// `ARG SOURCE_DATE_EPOCH` read) holds `seconds`.
#[track_caller]
fn made_at(img: &Saved, n: usize, created: &str, seconds: i64) {
    assert_eq!(img.config["created"], created, "the image's created");
    let h = img.config["history"].as_array().expect("history");
    assert!(h.len() >= n, "{h:?}");
    for e in &h[h.len() - n..] {
        assert_eq!(e["created"], created, "history {e}");
    }
    let new = img.find("new").expect("/new in the image");
    assert_eq!(new.mtime, seconds, "the mtime of /new");
    assert_eq!(img.find("epoch").expect("/epoch").data, seconds.to_string().as_bytes(), "ARG SOURCE_DATE_EPOCH");
}

/// The steps that write what [`made_at`] checks (2 history entries: ARG, RUN).
const STAMP: &str = "FROM base:1\nARG SOURCE_DATE_EPOCH\nRUN echo -n \"$SOURCE_DATE_EPOCH\" > /epoch && touch /new\n";

/// `ARG SOURCE_DATE_EPOCH=mysource` and a stage `mysource` that ADDs an http archive served
/// without Last-Modified: the newest regular file's mtime of the archive (epoch.go
/// archiveMaxTimeFromRef; testSourceDateEpochStageHTTPArchive); with a Last-Modified, that
/// (sourceDateEpochFromMetadata). The stage's ARG expands in its URL, the stage name matches in
/// any case. A build arg of seconds wins over the Dockerfile's default
/// (testSourceDateEpochStageOverride). The same build in another store gives the same image.
#[test]
fn a_stage_that_adds_an_http_archive() {
    let webs = web::Server::start();
    // the newest regular file is b (1700000402); a directory and a symlink are newer still
    // and do not count
    let tar = {
        let mut b = tar::Builder::new(Vec::new());
        for (p, t, mtime) in [
            ("a", tar::EntryType::Regular, 1_700_000_000),
            ("d/", tar::EntryType::Directory, 1_800_000_000),
            ("d/b", tar::EntryType::Regular, 1_700_000_402),
            ("l", tar::EntryType::Symlink, 1_800_000_000),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(t);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            h.set_size(0);
            if t == tar::EntryType::Symlink {
                b.append_link(&mut h, p, "a").expect("tar");
            } else {
                b.append_data(&mut h, p, std::io::empty()).expect("tar");
            }
        }
        b.into_inner().expect("tar")
    };
    webs.put("/src.tar", &tar, Some("\"s1\""), None);
    webs.put("/lm.tar", &tar, Some("\"l1\""), Some("Tue, 14 Nov 2023 22:16:41 GMT"));
    let host = webs.addr.to_string();
    let df = format!(
        "ARG SOURCE_DATE_EPOCH=mysource\n\
         ARG HOST={host}\n\
         FROM scratch AS MySource\n\
         ARG F=src.tar\n\
         ADD http://${{HOST}}/$F /\n\
         FROM scratch AS lm\n\
         ADD http://{host}/lm.tar /\n\
         {STAMP}"
    );
    let s = Slipway::new();
    s.base("base:1");
    let ctx = s.context("stage", &[("Dockerfile", &df)]);
    let r = s.build(&ctx, "st:1", &[]).ok();
    assert!(
        log(&r).contains("# SOURCE_DATE_EPOCH=mysource: 1700000402, the mtime of the newest file of the archive"),
        "{}",
        log(&r)
    );
    let img = s.save("st:1");
    made_at(&img, 2, "2023-11-14T22:20:02Z", 1_700_000_402);
    // inspect says where `created` came from
    let v: serde_json::Value = serde_json::from_str(&s.run(&["inspect", "st:1"]).ok().stdout).unwrap();
    assert!(v[0]["CreatedFrom"].as_str().is_some_and(|f| f.contains("SOURCE_DATE_EPOCH=mysource: 1700000402")), "{v}");

    // the same build again, and in a fresh store: the same image
    assert_eq!(s.build(&ctx, "st:again", &[]).ok().code, 0);
    assert_eq!(s.save("st:again").id(), img.id());
    let s2 = Slipway::new();
    s2.base("base:1");
    let ctx2 = s2.context("stage", &[("Dockerfile", &df)]);
    s2.build(&ctx2, "st:1", &[]).ok();
    assert_eq!(s2.save("st:1").id(), img.id(), "another store, the same input: the same image");

    // the stage's ARG given as a build arg: another URL, another time (the served
    // Last-Modified, whatever the files' mtimes)
    let r = s.build(&ctx, "st:lm", &["--build-arg", "SOURCE_DATE_EPOCH=lm"]).ok();
    assert!(log(&r).contains("# SOURCE_DATE_EPOCH=lm: 1700000201, its Last-Modified"), "{}", log(&r));
    let lm = s.save("st:lm");
    made_at(&lm, 2, "2023-11-14T22:16:41Z", 1_700_000_201);
    assert_ne!(lm.id(), img.id());

    // seconds given as a build arg win over the Dockerfile's stage name; nothing is fetched
    webs.take_log();
    s.build(&ctx, "st:secs", &["--build-arg", "SOURCE_DATE_EPOCH=1700000502"]).ok();
    made_at(&s.save("st:secs"), 2, "2023-11-14T22:21:42Z", 1_700_000_502);
    assert_eq!(webs.take_log(), Vec::<String>::new(), "a source fetched for seconds given");
}

/// A stage whose ADD is a git repository: its commit's committer time (epoch.go
/// sourceDateEpochFromMetadata: the commit object's Committer.When), the ref an annotated tag;
/// a `--build-context` of a git repository likewise.
#[test]
fn a_stage_that_adds_a_git_repository() {
    let Some(g) = GitServer::start() else { return };
    let s = Slipway::new();
    s.base("base:1");
    // v1 is an annotated tag of the first commit (committed at 1600000000); main is a later one
    let df = format!("FROM scratch AS src\nADD {}#v1 /\n{STAMP}", g.url());
    let ctx = s.context("git", &[("Dockerfile", &df)]);
    let r = s.build(&ctx, "g:1", &["--build-arg", "SOURCE_DATE_EPOCH=src"]).ok();
    assert!(log(&r).contains("# SOURCE_DATE_EPOCH=src: 1600000000, the committer time of commit"), "{}", log(&r));
    made_at(&s.save("g:1"), 2, "2020-09-13T12:26:40Z", 1_600_000_000);
    let df = format!("FROM scratch AS src\nADD {}#main /\n{STAMP}", g.url());
    let ctx = s.context("git2", &[("Dockerfile", &df)]);
    s.build(&ctx, "g:2", &["--build-arg", "SOURCE_DATE_EPOCH=src"]).ok();
    made_at(&s.save("g:2"), 2, "2020-09-13T12:28:20Z", 1_600_000_100);
    // a --build-context of the same repository at v1: its commit's time, taken before the stage
    let named = format!("src={}#v1", g.url());
    let r = s.build(&ctx, "g:3", &["--build-arg", "SOURCE_DATE_EPOCH=src", "--build-context", &named]).ok();
    assert!(log(&r).contains("(--build-context src)"), "{}", log(&r));
    made_at(&s.save("g:3"), 2, "2020-09-13T12:26:40Z", 1_600_000_000);
    // ADD --checksum that the commit does not have: the stage's line, ADD's words
    let df = format!("FROM scratch AS src\nADD --checksum=0123abcd {}#v1 /\n{STAMP}", g.url());
    let ctx = s.context("git3", &[("Dockerfile", &df)]);
    let r = s.build(&ctx, "g:bad", &["--build-arg", "SOURCE_DATE_EPOCH=src"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("Dockerfile:1: SOURCE_DATE_EPOCH=src: expected checksum to match 0123abcd"),
        "{}",
        r.stderr
    );
}

/// `SOURCE_DATE_EPOCH=context`: a git build context gives its commit's time
/// (testSourceDateEpochContextGit), an http tarball its Last-Modified
/// (testSourceDateEpochContextHTTPLastModified) or else its newest file's mtime
/// (testSourceDateEpochContextHTTPArchive); a local directory none, and the build is one
/// without SOURCE_DATE_EPOCH (testSourceDateEpochContextLocalUnset): `ARG SOURCE_DATE_EPOCH`
/// reads nothing and the times are slipway's default, 0.
#[test]
fn context_names_the_build_context() {
    let Some(g) = GitServer::start() else { return };
    let s = Slipway::new();
    s.base("base:1");
    g.commit_files(&[("app/Dockerfile", STAMP)], "@1600000300 +0000");
    let url = format!("{}#main:app", g.url());
    let r = s.build(Path::new(&url), "c:git", &["--build-arg", "SOURCE_DATE_EPOCH=context"]).ok();
    assert!(log(&r).contains("# SOURCE_DATE_EPOCH=context: 1600000300, the committer time of commit"), "{}", log(&r));
    made_at(&s.save("c:git"), 2, "2020-09-13T12:31:40Z", 1_600_000_300);

    let webs = web::Server::start();
    let tar = tar_of(&[("Dockerfile", STAMP, 1_700_000_000), ("foo", "bar", 1_700_000_302)]);
    webs.put("/ctx.tar", &tar, Some("\"c1\""), None);
    webs.put("/lm/ctx.tar", &tar, Some("\"c2\""), Some("Tue, 14 Nov 2023 22:23:21 GMT"));
    let u = webs.url("/ctx.tar");
    s.build(Path::new(&u), "c:tar", &["--build-arg", "SOURCE_DATE_EPOCH=context"]).ok();
    made_at(&s.save("c:tar"), 2, "2023-11-14T22:18:22Z", 1_700_000_302);
    let u = webs.url("/lm/ctx.tar");
    s.build(Path::new(&u), "c:lm", &["--build-arg", "SOURCE_DATE_EPOCH=context"]).ok();
    made_at(&s.save("c:lm"), 2, "2023-11-14T22:23:21Z", 1_700_000_601);

    // a local context: none; the build is the one without SOURCE_DATE_EPOCH
    let ctx = s.context("local", &[("Dockerfile", STAMP)]);
    let r = s.build(&ctx, "c:local", &["--build-arg", "SOURCE_DATE_EPOCH=context"]).ok();
    assert!(log(&r).contains("# SOURCE_DATE_EPOCH=context: none"), "{}", log(&r));
    let img = s.save("c:local");
    assert_eq!(img.config["created"], "1970-01-01T00:00:00Z");
    assert_eq!(img.find("epoch").expect("/epoch").data, b"");
    assert_eq!(img.find("new").expect("/new").mtime, 0);
    s.build(&ctx, "c:unset", &[]).ok();
    assert_eq!(s.save("c:unset").id(), img.id(), "none is the same as unset");
}

/// A `--build-context` name: an http one gives its Last-Modified
/// (testSourceDateEpochNamedContextHTTPLastModified) or else the newest file of the archive
/// (testSourceDateEpochNamedContextHTTPArchive); a directory or an image none. A --build-context of a
/// stage's name is taken before the stage, as in epoch.go.
#[test]
fn a_named_context() {
    let webs = web::Server::start();
    webs.put("/src.tar", &tar_of(&[("foo", "bar", 1_700_000_402)]), Some("\"n1\""), None);
    webs.put(
        "/lm.tar",
        &tar_of(&[("foo", "bar", 1_800_000_000)]),
        Some("\"n2\""),
        Some("Tue, 14 Nov 2023 22:23:21 GMT"),
    );
    let s = Slipway::new();
    s.base("base:1");
    // a stage named like the context, which would fail as a SOURCE_DATE_EPOCH stage
    let df = format!("ARG SOURCE_DATE_EPOCH=mysource\nFROM scratch AS mysource\nCOPY Dockerfile /\n{STAMP}");
    let ctx = s.context("named", &[("Dockerfile", &df)]);
    let named = format!("mysource={}", webs.url("/src.tar"));
    let out = s.dir.path().join("out");
    let local = format!("type=local,dest={}", out.display());
    let r = s.build(&ctx, "n:1", &["--build-context", &named, "-o", "type=image", "-o", &local]).ok();
    assert!(log(&r).contains("(--build-context mysource)"), "{}", log(&r));
    made_at(&s.save("n:1"), 2, "2023-11-14T22:20:02Z", 1_700_000_402);
    // a local output sets every file's mtime to it, as BuildKit's exporter does
    for f in ["epoch", "new", "bin/busybox"] {
        let m = std::os::unix::fs::MetadataExt::mtime(&std::fs::symlink_metadata(out.join(f)).unwrap());
        assert_eq!(m, 1_700_000_402, "{f}");
    }
    let named = format!("mysource={}", webs.url("/lm.tar"));
    s.build(&ctx, "n:2", &["--build-context", &named]).ok();
    made_at(&s.save("n:2"), 2, "2023-11-14T22:23:21Z", 1_700_000_601);
    // a directory: none
    let dir = s.context("dir", &[("x", "y")]);
    let named = format!("mysource={}", dir.display());
    let r = s.build(&ctx, "n:3", &["--build-context", &named]).ok();
    assert!(
        log(&r).contains("# SOURCE_DATE_EPOCH=mysource: none (--build-context mysource is a local directory"),
        "{}",
        log(&r)
    );
    assert_eq!(s.save("n:3").config["created"], "1970-01-01T00:00:00Z");
    // an image: none either (BuildKit reads no time from an image source)
    let r = s.build(&ctx, "n:4", &["--build-context", "mysource=docker-image://base:1"]).ok();
    assert!(
        log(&r).contains("# SOURCE_DATE_EPOCH=mysource: none (--build-context mysource is an image"),
        "{}",
        log(&r)
    );
    let img = s.save("n:4");
    assert_eq!(img.config["created"], "1970-01-01T00:00:00Z");
    assert_eq!(img.find("epoch").expect("/epoch").data, b"");
}

/// What BuildKit refuses, refused with its words, the stage's line for a stage's fault, a
/// non-zero exit and nothing new in the store: a name that is no stage and no context
/// (testSourceDateEpochDockerfileDefaultInvalid), a name that is no valid context name
/// (NamedContext's reference check), a stage that is not one remote ADD
/// (testSourceDateEpochStageInvalid), not FROM scratch, a local ADD; a source that cannot be
/// fetched names its URL; a time before 1970 slipway cannot write.
#[test]
fn bad_values_are_refused() {
    let webs = web::Server::start();
    let s = Slipway::new();
    let good = "FROM scratch\nCOPY Dockerfile /\n";
    let cases: Vec<(String, Vec<String>, String)> = vec![
        (good.into(), vec!["SOURCE_DATE_EPOCH=yesterday".into()], "invalid SOURCE_DATE_EPOCH: yesterday".into()),
        (format!("ARG SOURCE_DATE_EPOCH=not-a-timestamp\n{good}"), vec![], "invalid SOURCE_DATE_EPOCH: not-a-timestamp".into()),
        (good.into(), vec!["SOURCE_DATE_EPOCH=1.5".into()], "invalid SOURCE_DATE_EPOCH: 1.5".into()),
        (good.into(), vec!["SOURCE_DATE_EPOCH=Src".into()], "invalid context name Src".into()),
        // an int64 whose year an image's `created` cannot write (BuildKit fails marshalling it)
        (
            good.into(),
            vec!["SOURCE_DATE_EPOCH=-62167219201".into()],
            "SOURCE_DATE_EPOCH=-62167219201: -62167219201 seconds since 1970 is outside the years 0000-9999".into(),
        ),
        (
            format!("ARG SOURCE_DATE_EPOCH=mysource\nFROM scratch AS mysource\nCOPY Dockerfile /Dockerfile\n{good}"),
            vec![],
            "Dockerfile:2: SOURCE_DATE_EPOCH stage does not meet source-only requirements: unsupported copy instruction".into(),
        ),
        (
            format!("FROM busybox AS src\nADD {} /\n{good}", webs.url("/x.tar")),
            vec!["SOURCE_DATE_EPOCH=src".into()],
            "Dockerfile:1: SOURCE_DATE_EPOCH stage must use FROM scratch".into(),
        ),
        (
            format!("FROM scratch AS src\nADD local.tar /\n{good}"),
            vec!["SOURCE_DATE_EPOCH=src".into()],
            "SOURCE_DATE_EPOCH stage source must be a single HTTP(S) or Git ADD".into(),
        ),
        (
            format!("FROM scratch AS src\nADD {} /\n{good}", webs.url("/missing.tar")),
            vec!["SOURCE_DATE_EPOCH=src".into()],
            webs.url("/missing.tar"),
        ),
    ];
    // the store made first (a failed build may leave the empty store it opened)
    s.run(&["images"]).ok();
    let before = store_listing(&s.root());
    for (df, args, want) in cases {
        let ctx = s.context("bad", &[("Dockerfile", &df)]);
        let mut extra = Vec::new();
        for a in &args {
            extra.extend(["--build-arg", a.as_str()]);
        }
        let r = s.build(&ctx, "bad:1", &extra);
        assert_ne!(r.code, 0, "{df} {args:?} must fail");
        assert!(r.stderr.contains(&want), "{df} {args:?}: want {want:?}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        assert_eq!(store_listing(&s.root()), before, "{df} {args:?} left something in the store");
    }
}

/// The config of each platform of an oci archive's index, by `os/architecture`.
fn configs_by_platform(archive: &Path) -> std::collections::BTreeMap<String, (String, serde_json::Value)> {
    let files = integration::slipway::tar_files(archive);
    let json = |p: &str| -> serde_json::Value {
        serde_json::from_slice(files.get(p).unwrap_or_else(|| panic!("{p} in the archive"))).expect("json")
    };
    let blob = |d: &serde_json::Value| {
        json(&format!("blobs/sha256/{}", d.as_str().expect("digest").trim_start_matches("sha256:")))
    };
    let top = json("index.json");
    let mut index = blob(&top["manifests"][0]["digest"]);
    if index["manifests"].is_null() {
        // one platform: the archive names its manifest
        index = top;
    }
    let mut out = std::collections::BTreeMap::new();
    for m in index["manifests"].as_array().expect("manifests") {
        let manifest = blob(&m["digest"]);
        let config = blob(&manifest["config"]["digest"]);
        let p = format!("{}/{}", config["os"].as_str().unwrap_or(""), config["architecture"].as_str().unwrap_or(""));
        out.insert(p, (manifest["config"]["digest"].as_str().unwrap_or("").to_string(), config));
    }
    out
}

/// `--platform a,b`: BuildKit's frontend derives SOURCE_DATE_EPOCH once per platform (dockerui
/// passes `exporter.epoch/PLATFORM`), so a stage whose source names `$TARGETARCH` gives each
/// platform the time of its own source: each config's `created` and each platform's files in a
/// local output, and each platform's image is the one a build of that platform alone makes. A
/// source the platforms share is read once and named once in the log.
#[test]
fn each_platform_gets_the_time_of_its_own_source() {
    let webs = web::Server::start();
    webs.put("/src.tar", &tar_of(&[("foo", "bar", 1_700_000_402)]), Some("\"p1\""), None);
    let s = Slipway::new();
    let same = format!(
        "ARG SOURCE_DATE_EPOCH=src\nFROM scratch AS src\nADD {} /\nFROM scratch\nCOPY Dockerfile /\n",
        webs.url("/src.tar")
    );
    let ctx = s.context("same", &[("Dockerfile", &same)]);
    webs.take_log();
    let r = s.build(&ctx, "p:1", &["--platform", "linux/amd64,linux/arm64"]).ok();
    assert!(log(&r).contains("# SOURCE_DATE_EPOCH=src: 1700000402, "), "{}", log(&r));
    assert!(!log(&r).contains(" for linux/"), "{}", log(&r));
    let gets = webs.take_log().iter().filter(|q| q.contains("/src.tar")).count();
    assert_eq!(gets, 1, "the shared source is read once");

    webs.put("/src-amd64.tar", &tar_of(&[("foo", "bar", 1_700_000_402)]), Some("\"a\""), None);
    webs.put("/src-arm64.tar", &tar_of(&[("foo", "bar", 1_700_000_000)]), Some("\"b\""), None);
    let per = format!(
        "ARG SOURCE_DATE_EPOCH=src\nFROM scratch AS src\nADD {}-$TARGETARCH.tar /\nFROM scratch\nCOPY Dockerfile /\n",
        webs.url("/src")
    );
    let ctx = s.context("per", &[("Dockerfile", &per)]);
    let out = s.dir.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let oci = out.join("both.tar");
    let local = out.join("both");
    let r = s
        .build(
            &ctx,
            "p:2",
            &[
                "--platform",
                "linux/amd64,linux/arm64",
                "-o",
                &format!("type=oci,dest={}", oci.display()),
                "-o",
                &format!("type=local,dest={}", local.display()),
            ],
        )
        .ok();
    let l = log(&r);
    assert!(l.contains("# SOURCE_DATE_EPOCH=src for linux/amd64: 1700000402, "), "{l}");
    assert!(l.contains("# SOURCE_DATE_EPOCH=src for linux/arm64: 1700000000, "), "{l}");
    let both = configs_by_platform(&oci);
    assert_eq!(both.len(), 2, "{both:?}");
    for (p, created, secs) in [
        ("linux/amd64", "2023-11-14T22:20:02Z", 1_700_000_402i64),
        ("linux/arm64", "2023-11-14T22:13:20Z", 1_700_000_000),
    ] {
        let (_, config) = &both[p];
        assert_eq!(config["created"], created, "{p}: {config}");
        for h in config["history"].as_array().expect("history") {
            assert_eq!(h["created"], created, "{p}: {h}");
        }
        // the local output: every file of the platform at its time
        let f = local.join(p.replace('/', "_")).join("Dockerfile");
        let md = std::fs::symlink_metadata(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(std::os::unix::fs::MetadataExt::mtime(&md), secs, "{}", f.display());
    }
    // arm64 alone: its own source, and the image the two-platform build made for it
    let alone = out.join("arm64.tar");
    let r =
        s.build(&ctx, "p:3", &["--platform", "linux/arm64", "-o", &format!("type=oci,dest={}", alone.display())]).ok();
    assert!(log(&r).contains("# SOURCE_DATE_EPOCH=src: 1700000000, "), "{}", log(&r));
    let alone = configs_by_platform(&alone);
    assert_eq!(alone["linux/arm64"].0, both["linux/arm64"].0, "the arm64 config of both builds");
}

/// SOURCE_DATE_EPOCH before 1970, as BuildKit takes it (strconv.ParseInt, `time.Unix(sde, 0)`):
/// `created` in the config and history is 1969-12-31T00:00:00Z, every entry of the new layers
/// has the time as Go's archive/tar writes it (a PAX `mtime=-86400` record, 0 in the header,
/// which GNU tar reads as BuildKit's layers), the same input gives the same image, a local
/// output's files have it, and a build FROM the image finds it on the files it unpacks.
#[test]
fn a_time_before_1970() {
    let s = Slipway::new();
    s.base("base:1");
    let df = "FROM base:1\nARG SOURCE_DATE_EPOCH\nCOPY f.txt /c/\nRUN echo -n \"$SOURCE_DATE_EPOCH\" > /epoch && touch /new\n";
    let ctx = s.context("neg", &[("Dockerfile", df), ("f.txt", "f\n")]);
    let local = s.dir.path().join("local");
    let args = ["--build-arg", "SOURCE_DATE_EPOCH=-86400", "-o", "type=image"];
    let l = format!("type=local,dest={}", local.display());
    s.build(&ctx, "neg:1", &[&args[..], &["-o", &l]].concat()).ok();
    let img = s.save("neg:1");
    // ARG, COPY, RUN
    made_at(&img, 3, "1969-12-31T00:00:00Z", -86400);
    let base = s.save("base:1").layers.len();
    let new: Vec<_> = img.layers[base..].iter().flatten().collect();
    assert!(new.iter().any(|e| e.path == "c/f.txt"), "{new:?}");
    for e in &new {
        assert_eq!((e.mtime, e.pax_mtime.as_deref()), (-86400, Some("-86400")), "{}", e.path);
    }
    // GNU tar reads the layer's PAX records as they are meant
    let m: serde_json::Value = serde_json::from_slice(&img.files["manifest.json"]).unwrap();
    for l in &m[0]["Layers"].as_array().unwrap()[base..] {
        let blob = s.dir.path().join("layer.tar");
        std::fs::write(&blob, &img.files[l.as_str().unwrap()]).unwrap();
        let o = std::process::Command::new("tar").env("TZ", "UTC").arg("--full-time").arg("-tvf").arg(&blob).output();
        let o = o.expect("run GNU tar");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success() && !out.is_empty(), "{out}{}", String::from_utf8_lossy(&o.stderr));
        for line in out.lines() {
            assert!(line.contains(" 1969-12-31 00:00:00 "), "GNU tar: {line}");
        }
    }
    // the same build again, and in another store: the same image
    s.build(&ctx, "neg:2", &args).ok();
    assert_eq!(s.save("neg:2").id(), img.id());
    let s2 = Slipway::new();
    s2.base("base:1");
    let ctx2 = s2.context("neg", &[("Dockerfile", df), ("f.txt", "f\n")]);
    s2.build(&ctx2, "neg:1", &args).ok();
    assert_eq!(s2.save("neg:1").id(), img.id(), "another store, the same input: the same image");
    // a local output: every file at SOURCE_DATE_EPOCH, as BuildKit's exporter sets them
    for f in ["c", "c/f.txt", "new", "epoch", "bin/busybox", "bin/sh"] {
        let md = std::fs::symlink_metadata(local.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(std::os::unix::fs::MetadataExt::mtime(&md), -86400, "{f}");
    }
    // FROM the image: its layers unpacked with their times (busybox's stat prints them signed)
    let df = "FROM neg:1\nRUN stat -c %Y /new /c/f.txt /c /epoch > /times\n";
    let ctx = s.context("from", &[("Dockerfile", df)]);
    s.build(&ctx, "neg:from", &[]).ok();
    assert_eq!(s.save("neg:from").find("times").expect("/times").data, b"-86400\n-86400\n-86400\n-86400\n");
    // `--timestamp` takes such a time too; -0 is 0, as ParseInt reads it
    s.build(&ctx, "neg:ts", &["--timestamp", "-86400"]).ok();
    assert_eq!(s.save("neg:ts").config["created"], "1969-12-31T00:00:00Z");
    s.build(&ctx, "neg:zero", &["--build-arg", "SOURCE_DATE_EPOCH=-0"]).ok();
    assert_eq!(s.save("neg:zero").config["created"], "1970-01-01T00:00:00Z");
    for (t, says) in [
        ("-1x", "--timestamp \"-1x\": expected `now` or seconds since 1970-01-01"),
        (
            "-99999999999",
            "--timestamp \"-99999999999\": -99999999999 seconds since 1970 is outside the years 0000-9999",
        ),
    ] {
        let r = s.build(&ctx, "neg:bad", &["--timestamp", t]);
        assert_ne!(r.code, 0, "{t}");
        assert!(r.stderr.contains(says), "{t}: {}", r.stderr);
    }
}

/// A source's time before 1970 is taken too: a stage ADDing a file served with a Last-Modified
/// of 1969 (Go's http.ParseTime reads it; the httpdate crate stops at 1970) gives
/// SOURCE_DATE_EPOCH=-86400, and ADD keeps a Last-Modified older still as the file's mtime.
#[test]
fn a_last_modified_before_1970() {
    let webs = web::Server::start();
    webs.put("/old.txt", b"old\n", Some("\"o1\""), Some("Wed, 31 Dec 1969 00:00:00 GMT"));
    webs.put("/older.txt", b"older\n", Some("\"o2\""), Some("Tue, 30 Dec 1969 00:00:00 GMT"));
    let s = Slipway::new();
    s.base("base:1");
    let df = format!(
        "FROM scratch AS src\nADD {} /\n{STAMP}ADD {} /old.txt\n",
        webs.url("/old.txt"),
        webs.url("/older.txt")
    );
    let ctx = s.context("lm", &[("Dockerfile", &df)]);
    let r = s.build(&ctx, "lm:1", &["--build-arg", "SOURCE_DATE_EPOCH=src"]).ok();
    assert!(log(&r).contains("# SOURCE_DATE_EPOCH=src: -86400, its Last-Modified"), "{}", log(&r));
    let img = s.save("lm:1");
    // ARG, RUN, ADD
    made_at(&img, 3, "1969-12-31T00:00:00Z", -86400);
    let old = img.find("old.txt").expect("/old.txt");
    assert_eq!((old.mtime, old.pax_mtime.as_deref()), (-172_800, Some("-172800")));
}

/// Sets the mtime of a file (seconds since 1970, negative before), not following a symlink.
fn set_time(p: &Path, t: i64) {
    let ts = nix::sys::time::TimeSpec::new(t, 0);
    nix::sys::stat::utimensat(None, p, &ts, &ts, nix::sys::stat::UtimensatFlags::NoFollowSymlink)
        .unwrap_or_else(|e| panic!("set times of {}: {e}", p.display()));
}

/// A file's own time before 1970 (ext4 and overlay hold them) is kept where the build keeps
/// files' times (`rewrite-timestamp=false`, BuildKit's default): from the context, from a
/// `--build-context` directory, through a stage's layer into `COPY --from`; and a tar output's
/// own source-date-epoch before 1970 is every file's time there (GNU tar reads them).
#[test]
fn files_own_times_before_1970_are_kept() {
    let s = Slipway::new();
    s.base("base:1");
    let df = "FROM base:1 AS a\nCOPY f.txt /\nFROM base:1\nCOPY --from=a /f.txt /a.txt\nCOPY --from=named g.txt /\n";
    let ctx = s.context("own", &[("Dockerfile", df), ("f.txt", "f\n")]);
    set_time(&ctx.join("f.txt"), -5);
    let named = s.context("named", &[("g.txt", "g\n")]);
    set_time(&named.join("g.txt"), -7);
    let tar = s.dir.path().join("out.tar");
    let nc = format!("named={}", named.display());
    let t = format!("type=tar,dest={},source-date-epoch=-3", tar.display());
    s.build(&ctx, "own:1", &["--build-context", &nc, "-o", "type=image,rewrite-timestamp=false", "-o", &t]).ok();
    let img = s.save("own:1");
    for (p, want) in [("a.txt", -5), ("g.txt", -7)] {
        let e = img.find(p).unwrap_or_else(|| panic!("/{p}"));
        assert_eq!((e.mtime, e.pax_mtime.clone()), (want, Some(want.to_string())), "{p}");
    }
    let o = std::process::Command::new("tar").env("TZ", "UTC").arg("--full-time").arg("-tvf").arg(&tar).output();
    let out = String::from_utf8_lossy(&o.expect("run GNU tar").stdout).into_owned();
    for (p, want) in [("a.txt", "1969-12-31 23:59:57"), ("g.txt", "1969-12-31 23:59:57")] {
        let line = out.lines().find(|l| l.ends_with(&format!(" {p}"))).unwrap_or_else(|| panic!("{p} in {out}"));
        assert!(line.contains(want), "{line}");
    }
}
