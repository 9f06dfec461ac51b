//! Remote build contexts: `slipway build URL` with a git repository (`#ref:subdir`) or an
//! http(s) URL of a tar archive or of a Dockerfile, and the same URLs as `--build-context`
//! values; fetched once, cached by commit (or by content), fetched safely by two builds at
//! once. Served on loopback by the test (`integration::sources`). Where docker 20.10's BuildKit
//! can build the same context (its daemon fetches git and http contexts itself), the test
//! builds it there too and compares the files; `--build-context` is buildx's, newer than
//! docker 20.10's client: BuildKit's dockerui (namedcontext.go) is the reference there.

use integration::buildkit::BuildKit;
use integration::slipway::{Entry, Saved, Slipway};
use integration::sources::{web, GitServer};
use std::path::Path;

fn find<'a>(img: &'a Saved, path: &str) -> &'a Entry {
    img.find(path).unwrap_or_else(|| {
        let all: Vec<&str> = img.layers.iter().flatten().map(|e| e.path.as_str()).collect();
        panic!("{path} not in the image: {all:?}")
    })
}

/// The files under `dir/` in the image: (path, kind, mode, uid, gid, content), mtimes aside.
fn tree(img: &Saved, dir: &str) -> Vec<(String, char, u32, u64, u64, Vec<u8>)> {
    let mut out: Vec<_> = img
        .layers
        .iter()
        .flatten()
        .filter(|e| e.path.starts_with(&format!("{dir}/")))
        .map(|e| (e.path.trim_end_matches('/').to_string(), e.kind, e.mode & 0o7777, e.uid, e.gid, e.data.clone()))
        .filter(|e| e.0 != dir)
        .collect();
    out.sort();
    out
}

fn log(r: &integration::slipway::Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}

/// What a failed build must not leave: a temp dir of a fetch, a context directory.
fn leftovers(s: &Slipway) -> Vec<String> {
    let mut out = Vec::new();
    for d in ["tmp", "cache/context"] {
        if let Ok(rd) = std::fs::read_dir(s.root().join(d)) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if d != "tmp" || n.starts_with("context") || n.starts_with("git") {
                    out.push(format!("{d}/{n}"));
                }
            }
        }
    }
    out.sort();
    out
}

const APP_DOCKERFILE: &str = "FROM scratch\nCOPY . /ctx/\n";

/// The test repository with an `app/` directory holding a Dockerfile, its files, a
/// .dockerignore and a second Dockerfile.
fn app_repo(g: &GitServer) {
    g.commit_files(
        &[
            ("app/Dockerfile", APP_DOCKERFILE),
            ("app/hello", "hi v1\n"),
            ("app/lib/util.sh", "echo util\n"),
            ("app/.dockerignore", "ignored\n"),
            ("app/ignored", "not sent by a local build\n"),
            ("app/alt.Dockerfile", "FROM scratch\nCOPY hello /alt\n"),
            (".dockerignore", "foo\napp/ignored\n"),
        ],
        "@1600000300 +0000",
    );
}

/// `slipway build git://HOST/repo#main:app`: the commit main names, the `app` directory of it
/// as the context, its Dockerfile; no .git (keep-git-dir off) unless
/// `BUILDKIT_CONTEXT_KEEP_GIT_DIR` says so; `-f` a file of the context. As in BuildKit the
/// context's .dockerignore is not applied to a remote context (it only filters what a client
/// sends from a local directory: docker/cli#2827, and docker 20.10's BuildKit below). A
/// rebuild at the same commit is all hits and says the checkout is an earlier build's; a new
/// commit misses the COPY and the log says which file changed.
#[test]
fn git_context_builds_the_ref_and_subdir_and_is_cached_by_commit() {
    let Some(g) = GitServer::start() else { return };
    app_repo(&g);
    let url = format!("{}#main:app", g.url());
    let s = Slipway::new();
    let r = s.build(Path::new(&url), "g:1", &[]).ok();
    assert!(log(&r).contains(&format!("# build context {url}: commit ")), "{}", log(&r));
    let img = s.save("g:1");
    assert_eq!(find(&img, "ctx/hello").data, b"hi v1\n");
    assert_eq!(find(&img, "ctx/lib/util.sh").data, b"echo util\n");
    assert_eq!(find(&img, "ctx/Dockerfile").data, APP_DOCKERFILE.as_bytes());
    assert_eq!(find(&img, "ctx/ignored").data, b"not sent by a local build\n");
    assert!(img.find("ctx/foo").is_none() && img.find("ctx/app").is_none(), "only the subdir");
    assert!(img.find("ctx/.git").is_none());

    // a rebuild at the same commit: all hits, and the log says why
    let r = s.build(Path::new(&url), "g:2", &["--explain-cache"]).ok();
    let out = log(&r);
    assert!(out.contains("checked out by an earlier build"), "{out}");
    assert!(out.contains("Using cache") && !out.contains("Cache miss"), "{out}");
    assert_eq!(s.save("g:2").id(), img.id());

    // -f: a file of the remote context
    s.build(Path::new(&url), "g:alt", &["-f", "alt.Dockerfile"]).ok();
    assert_eq!(find(&s.save("g:alt"), "alt").data, b"hi v1\n");

    // BUILDKIT_CONTEXT_KEEP_GIT_DIR keeps .git (the whole repository as the context here)
    let r = s
        .build(
            Path::new(&g.url()),
            "g:git",
            &["-f", "app/Dockerfile", "--build-arg", "BUILDKIT_CONTEXT_KEEP_GIT_DIR=1"],
        )
        .ok();
    assert!(!log(&r).contains("not consumed"), "{}", log(&r));
    let kept = s.save("g:git");
    find(&kept, "ctx/.git/HEAD");
    assert_eq!(find(&kept, "ctx/app/hello").data, b"hi v1\n");

    // docker 20.10's BuildKit fetches the same context (its daemon runs git) and makes the same
    // files, .dockerignore'd ones included; it refuses a subdir ("subdir not supported yet":
    // later frontends take it) and takes `master` for no ref (later ones the remote's HEAD),
    // so the whole repository at #main with -f is compared
    let whole = format!("{}#main", g.url());
    s.build(Path::new(&whole), "g:root", &["-f", "app/Dockerfile"]).ok();
    let root = s.save("g:root");
    assert_eq!(find(&root, "ctx/foo").data, b"foo v2\n", "the root .dockerignore is not applied");
    assert!(root.find("ctx/app/ignored").is_some() && root.find("ctx/.git").is_none());
    if let Some(bk) = BuildKit::shared() {
        bk.build(Path::new(&whole), "g:root", &["-f", "app/Dockerfile"]).ok();
        assert_eq!(tree(&root, "ctx"), tree(&bk.save("g:root"), "ctx"), "docker 20.10's BuildKit");
    }

    // a new commit: the COPY misses, naming the changed file
    g.commit_files(&[("app/hello", "hi v2\n")], "@1600000400 +0000");
    let r = s.build(Path::new(&url), "g:3", &["--explain-cache"]).ok();
    let out = log(&r);
    assert!(out.contains("Cache miss") && out.contains("hello"), "{out}");
    assert_eq!(find(&s.save("g:3"), "ctx/hello").data, b"hi v2\n");

    // prune drops the checkouts; the next build fetches again and hits the cache
    s.run(&["prune"]).ok();
    assert!(leftovers(&s).is_empty(), "{:?}", leftovers(&s));
    let r = s.build(Path::new(&url), "g:3", &[]).ok();
    assert!(log(&r).contains("Using cache"), "{}", log(&r));

    // bad input: an unknown ref, a subdir the commit lacks, an unreachable remote, a bad
    // query; each names what is wrong, and leaves no temp dir or context directory behind
    let before = leftovers(&s);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = format!("git://127.0.0.1:{port}/repo");
    for (bad, want) in [
        (format!("{}#nosuch", g.url()), "does not contain ref nosuch".to_string()),
        (format!("{}#main:nosuch", g.url()), "no directory \"nosuch\"".to_string()),
        (down.clone(), down.clone()),
        (format!("{}?nope=1", g.url()), "unexpected query \"nope\"".to_string()),
    ] {
        let r = s.build(Path::new(&bad), "bad", &[]);
        assert_ne!(r.code, 0, "{bad}");
        assert!(r.stderr.contains(&format!("build context {bad}")) && r.stderr.contains(&want), "{bad}: {}", r.stderr);
        assert_eq!(leftovers(&s), before, "{bad}");
    }
}

/// A gzip tar of `files` (path, content), 0644 root, mtime 0.
fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    for (p, c) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(c.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, p, c.as_bytes()).expect("tar");
    }
    b.into_inner().expect("tar").finish().expect("gzip")
}

/// `slipway build http://HOST/ctx.tar.gz`: the archive unpacked is the context (its
/// .dockerignore not applied, as for git), cached by its ETag and content; a URL serving a
/// Dockerfile instead is the Dockerfile, the context then that one file, `context` (0600), as
/// BuildKit's dockerui makes it. docker 20.10's BuildKit builds both the same. Compressed data
/// that holds no tar, a 404, and `-f` next to a Dockerfile URL fail naming the URL.
#[test]
fn http_context_is_a_tarball_or_a_dockerfile() {
    let webs = web::Server::start();
    let tgz = tar_gz(&[
        ("Dockerfile", APP_DOCKERFILE),
        ("f.txt", "from the tarball\n"),
        ("sub/g", "g\n"),
        (".dockerignore", "skipped\n"),
        ("skipped", "still there\n"),
    ]);
    webs.put("/ctx.tar.gz", &tgz, Some("\"t1\""), None);
    let df = "FROM scratch\nCOPY context /df\n";
    webs.put("/Dockerfile", df.as_bytes(), Some("\"d1\""), None);
    let s = Slipway::new();
    let url = webs.url("/ctx.tar.gz");
    let r = s.build(Path::new(&url), "h:1", &[]).ok();
    assert!(log(&r).contains(&format!("# build context {url}: sha256:")), "{}", log(&r));
    let img = s.save("h:1");
    assert_eq!(find(&img, "ctx/f.txt").data, b"from the tarball\n");
    assert_eq!(find(&img, "ctx/sub/g").data, b"g\n");
    assert_eq!(find(&img, "ctx/skipped").data, b"still there\n");
    webs.take_log();
    let r = s.build(Path::new(&url), "h:2", &["--explain-cache"]).ok();
    let out = log(&r);
    assert!(out.contains("unpacked by an earlier build") && out.contains("Using cache"), "{out}");
    assert!(!out.contains("Cache miss"), "{out}");
    assert!(!webs.take_log().iter().any(|l| l.starts_with("GET") && l.ends_with(" 200")), "downloaded again");
    assert_eq!(s.save("h:2").id(), img.id());

    let durl = webs.url("/Dockerfile");
    s.build(Path::new(&durl), "h:df", &[]).ok();
    let dimg = s.save("h:df");
    let e = find(&dimg, "df");
    assert_eq!((e.data.as_slice(), e.mode & 0o7777), (df.as_bytes(), 0o600));

    if let Some(bk) = BuildKit::shared() {
        bk.build(Path::new(&url), "h:1", &[]).ok();
        assert_eq!(tree(&img, "ctx"), tree(&bk.save("h:1"), "ctx"), "docker 20.10's BuildKit");
        bk.build(Path::new(&durl), "h:df", &[]).ok();
        let b = find(&bk.save("h:df"), "df").clone();
        assert_eq!((b.data.as_slice(), b.mode & 0o7777, b.uid), (df.as_bytes(), 0o600, 0), "BuildKit");
    }

    let notar = {
        use std::io::Write;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"just some text\n").unwrap();
        z.finish().unwrap()
    };
    webs.put("/notar.tar.gz", &notar, None, None);
    let before = leftovers(&s);
    for (bad, extra, want) in [
        (webs.url("/notar.tar.gz"), vec![], "gzip data that holds no tar archive"),
        (webs.url("/missing.tar"), vec![], "invalid response status 404"),
        (durl.clone(), vec!["-f", "Dockerfile"], "is a Dockerfile, not an archive"),
    ] {
        let r = s.build(Path::new(&bad), "bad", &extra);
        assert_ne!(r.code, 0, "{bad}");
        assert!(r.stderr.contains(&bad) && r.stderr.contains(want), "{bad}: {}", r.stderr);
        assert_eq!(leftovers(&s), before, "{bad}");
    }
}

/// `--build-context NAME=URL`: a git URL (`#ref:subdir`) and an http URL name filesystems that
/// `FROM NAME`, `COPY --from=NAME` and `RUN --mount from=NAME` use; an http one is the one file
/// `context`, not unpacked (dockerui's namedcontext.go: `llb.HTTP(url, Filename("context"))`).
#[test]
fn named_contexts_from_git_and_http() {
    let Some(g) = GitServer::start() else { return };
    app_repo(&g);
    let webs = web::Server::start();
    let tgz = tar_gz(&[("inside", "in\n")]);
    webs.put("/dl.tar.gz", &tgz, Some("\"x\""), None);
    let s = Slipway::new();
    s.base("busybox:base");
    let df = "FROM src AS fromgit\n\
              FROM busybox:base AS runner\n\
              RUN --mount=from=src,target=/m --mount=from=dl,target=/d cat /m/hello /m/lib/util.sh > /out && \
              tar xzf /d/context -O inside >> /out\n\
              FROM scratch\n\
              COPY --from=src hello /from-git\n\
              COPY --from=dl context /dl.tar.gz\n\
              COPY --from=fromgit lib/util.sh /stage-util\n\
              COPY --from=runner /out /out\n";
    let ctx = s.context("named", &[("Dockerfile", df)]);
    let src = format!("src={}#main:app", g.url());
    let dl = format!("dl={}", webs.url("/dl.tar.gz"));
    let args = ["--build-context", src.as_str(), "--build-context", dl.as_str()];
    let r = s.build(&ctx, "n:1", &args).ok();
    assert!(!log(&r).contains("warning"), "{}", log(&r));
    let img = s.save("n:1");
    assert_eq!(find(&img, "from-git").data, b"hi v1\n");
    assert_eq!(find(&img, "dl.tar.gz").data, tgz, "an http context is the file itself");
    assert_eq!(find(&img, "stage-util").data, b"echo util\n");
    assert_eq!(find(&img, "out").data, b"hi v1\necho util\nin\n");
    // a rebuild: all hits
    let r = s.build(&ctx, "n:2", &args).ok();
    assert!(!log(&r).contains("Cache miss") && log(&r).matches("Using cache").count() >= 4, "{}", log(&r));
    assert_eq!(s.save("n:2").id(), img.id());
    // a bad ref names the context and the ref
    let bad = format!("src={}#nosuch", g.url());
    let r = s.build(&ctx, "n:bad", &["--build-context", &bad, "--build-context", &dl]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(&format!("--build-context {bad}")) && r.stderr.contains("nosuch"), "{}", r.stderr);
}

/// Three builds at once, each with two stages that ADD the same new remote (`--jobs 2`), and a
/// fourth whose context is that remote: the bare repository is locked per remote while one
/// fetches, checkouts are renamed into place whole, so all succeed with the right files.
#[test]
fn concurrent_fetches_of_one_remote() {
    let Some(g) = GitServer::start() else { return };
    app_repo(&g);
    // two rounds with a fresh store each: the race is on a repository's first fetch
    for round in 0..2 {
        concurrent_round(&g, round);
    }
}

fn concurrent_round(g: &GitServer, round: usize) {
    let s = Slipway::new();
    let u = g.url();
    let df = format!(
        "FROM scratch AS a\nADD {u}#v1 /a/\nFROM scratch AS b\nADD {u}#main:app /b/\n\
         FROM scratch\nCOPY --from=a /a/foo /foo\nCOPY --from=b /b/hello /hello\n"
    );
    let ctx = s.context("conc", &[("Dockerfile", &df)]);
    let ctx_s = ctx.to_string_lossy().into_owned();
    let app = format!("{u}#main:app");
    let bin = integration::slipway::bin();
    let rt = integration::slipway::runtime();
    let spawn = |tag: &str, what: &str| {
        std::process::Command::new(&bin)
            .arg("--root")
            .arg(s.root())
            .args(["build", "--jobs", "2", "--runtime", &rt, "-t", tag, what])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start slipway")
    };
    let kids = [spawn("c:1", &ctx_s), spawn("c:2", &ctx_s), spawn("c:3", &ctx_s), spawn("c:ctx", &app)];
    for k in kids {
        let o = k.wait_with_output().expect("wait for slipway");
        let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "round {round}:\n{out}\n{err}");
    }
    for t in ["c:1", "c:2", "c:3"] {
        let img = s.save(t);
        assert_eq!(find(&img, "foo").data, b"foo v1\n", "{t}");
        assert_eq!(find(&img, "hello").data, b"hi v1\n", "{t}");
    }
    assert_eq!(find(&s.save("c:ctx"), "ctx/hello").data, b"hi v1\n");
}

/// A git context over http (git's "dumb" protocol: the repository's files served as they are,
/// after `git update-server-info`), the form `https://host/repo.git#ref:subdir` takes.
#[test]
fn git_context_over_http() {
    let Some(g) = GitServer::start() else { return };
    app_repo(&g);
    integration::sources::git(&g.repo(), &["update-server-info"], "@1600000300 +0000");
    let webs = web::Server::start();
    let gitdir = g.repo().join(".git");
    for e in walk(&gitdir) {
        let rel = e.strip_prefix(&gitdir).unwrap().to_string_lossy().into_owned();
        webs.put(&format!("/repo.git/{rel}"), &std::fs::read(&e).unwrap(), None, None);
    }
    let url = format!("{}#main:app", webs.url("/repo.git"));
    let s = Slipway::new();
    s.build(Path::new(&url), "hg:1", &[]).ok();
    assert_eq!(find(&s.save("hg:1"), "ctx/hello").data, b"hi v1\n");
    let r = s.build(Path::new(&url), "hg:2", &[]).ok();
    assert!(log(&r).contains("checked out by an earlier build") && log(&r).contains("Using cache"), "{}", log(&r));
}

/// The files below `dir`, recursively.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
