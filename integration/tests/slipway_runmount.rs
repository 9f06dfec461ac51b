//! `RUN --mount` (cache, bind, tmpfs, secret, ssh), `RUN --network` and `RUN --security`
//! through slipway and a real runtime, checked from the outside: the image's files, every
//! layer's entries, the config and history, the log, the store's cache mount directories, and
//! two builds at once on one store for `sharing=locked|private|shared`. Where docker 20.10's
//! BuildKit can build the same Dockerfile, `same_files_as_docker_buildkit` builds it there too.

use integration::slipway::{Saved, Slipway};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn text(img: &Saved, p: &str) -> String {
    let e = img.find(p).unwrap_or_else(|| panic!("{p} not in any layer"));
    String::from_utf8_lossy(&e.data).into_owned()
}

/// Every path of every layer.
fn paths(img: &Saved) -> Vec<String> {
    img.layers.iter().flatten().map(|e| e.path.trim_end_matches('/').to_string()).collect()
}

/// No layer has an entry at or below `prefix`.
#[track_caller]
fn absent(img: &Saved, prefix: &str) {
    for p in paths(img) {
        assert!(p != prefix && !p.starts_with(&format!("{prefix}/")), "{p} is in a layer: {:?}", paths(img));
    }
}

/// A fresh context with `files` and a Dockerfile; `base` is the busybox image.
fn setup(name: &str, df: &str, files: &[(&str, &str)]) -> (Slipway, PathBuf) {
    let s = Slipway::new();
    s.base("bb");
    let mut all: Vec<(&str, &str)> = vec![("Dockerfile", df)];
    all.extend_from_slice(files);
    let ctx = s.context(name, &all);
    (s, ctx)
}

/// Steps that ran (not cache hits) in a build's log, by their `Step N/M : ...` text.
fn ran(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for l in log.lines() {
        if let Some(rest) = l.strip_prefix("Step ") {
            cur = Some(rest.split_once(" : ").map(|x| x.1).unwrap_or(rest).to_string());
        } else if l.contains("---> Running in") {
            out.extend(cur.take());
        }
    }
    out
}

#[test]
fn cache_mounts_persist_by_id_and_stay_out_of_layers_and_keys() {
    let df = "FROM bb AS seed\nRUN mkdir /seed && echo seeded > /seed/f\n\
        FROM bb AS withcache\nRUN mkdir /cache && echo kept > /cache/f && chown 7:8 /cache && chmod 0710 /cache\n\
        FROM bb\nCOPY v.txt /v.txt\n\
        RUN --mount=type=cache,target=/var/cache/pkg,id=pkg sh -c 'cat /v.txt >> /var/cache/pkg/log; cp /var/cache/pkg/log /log'\n\
        RUN --mount=type=cache,id=pkg,target=other cat /other/log > /seen-by-id\n\
        RUN --mount=type=cache,target=/c2,uid=1000,gid=1000,mode=0700 stat -c '%u %g %a' /c2 > /c2stat\n\
        RUN --mount=type=cache,id=pkg,target=/ro,ro sh -c 'touch /ro/x 2>/dev/null && echo writable || echo readonly' > /rostat\n\
        RUN --mount=type=cache,target=/s,from=seed,source=/seed cat /s/f > /seeded\n\
        RUN --mount=type=cache,target=/cf,from=seed,uid=1000,gid=50,mode=0750 sh -c \"stat -c '%u %g %a' /cf; ls -A /cf\" > /cfstat\n\
        RUN --mount=type=cache,target=/ck,from=withcache,uid=1000 sh -c \"stat -c '%u %g %a' /ck; cat /ck/f\" > /ckstat\n\
        RUN --mount=type=cache,target=/ie,from=bb,source=/etc cat /ie/group > /seeded-from-image\n";
    let (s, ctx) = setup("cache", df, &[("v.txt", "1\n")]);
    s.build(&ctx, "c:1", &[]).ok();
    let img = s.save("c:1");
    assert_eq!(text(&img, "log"), "1\n");
    // the same id under another (relative: joined onto WORKDIR /) target is the same cache
    assert_eq!(text(&img, "seen-by-id"), "1\n");
    assert_eq!(text(&img, "c2stat"), "1000 1000 700\n");
    assert_eq!(text(&img, "rostat"), "readonly\n");
    assert_eq!(text(&img, "seeded"), "seeded\n");
    // from= a stage with mode/uid/gid and no source: the mount is `/cache` made in the stage with
    // them (empty), or the stage's own `/cache` kept as it is, BuildKit's setCacheUIDGID
    // (dockerfile2llb/convert_runmount.go; compared in same_files_as_docker_buildkit)
    assert_eq!(text(&img, "cfstat"), "1000 50 750\n");
    assert_eq!(text(&img, "ckstat"), "7 8 710\nkept\n");
    // from= an image (not a stage): its files at source seed the cache
    assert_eq!(text(&img, "seeded-from-image"), "root:x:0:\nbob:x:1000:\nstaff:x:50:bob\n");
    for p in ["var/cache/pkg", "other", "c2", "ro", "s", "cf", "ck", "ie"] {
        absent(&img, p);
    }
    // var/cache did not exist in the base: the runtime's stubs are removed, parents and all
    absent(&img, "var");
    let cfg = img.config.to_string();
    assert!(!cfg.contains("var/cache/pkg/log\\n1"), "{cfg}");
    // a change upstream reruns the step, which sees what the last build left in the cache
    fs::write(ctx.join("v.txt"), "2\n").unwrap();
    s.build(&ctx, "c:2", &[]).ok();
    assert_eq!(text(&s.save("c:2"), "log"), "1\n2\n");
    // back to v=1: every step is a hit (the cache's content is no part of any key)
    fs::write(ctx.join("v.txt"), "1\n").unwrap();
    let r = s.build(&ctx, "c:3", &[]).ok();
    assert_eq!(ran(&r.stdout), Vec::<String>::new(), "{}", r.stdout);
    assert_eq!(s.save("c:3").id(), img.id());
    // the store holds the caches (pkg, the uid/mode one, those seeded from a stage (three) and
    // an image)
    let dirs = fs::read_dir(s.root().join("cache/mounts")).unwrap().count();
    assert_eq!(dirs, 6);
}

#[test]
fn bind_mounts_from_the_context_and_a_stage() {
    let df = "FROM bb AS build\nRUN mkdir /out && echo built > /out/artifact\n\
        FROM bb\n\
        RUN --mount=type=bind,source=src,target=/src cat /src/main.txt > /main\n\
        RUN --mount=type=bind,target=/ctx ls -a /ctx > /ls\n\
        RUN --mount=type=bind,from=build,source=/out,target=/art cat /art/artifact > /art.txt\n\
        RUN --mount=type=bind,from=bb,source=/etc,target=/ie cat /ie/group > /img-group\n\
        RUN --mount=type=bind,target=/w,rw sh -c 'echo scribble > /w/new && rm /w/src/main.txt && echo ok' > /rw.txt\n\
        RUN --mount=type=bind,target=/w2 sh -c 'echo x > /w2/new 2>/dev/null && echo writable || echo readonly' > /ro.txt\n";
    let (s, ctx) = setup(
        "bind",
        df,
        &[("src/main.txt", "main v1\n"), ("ignored.env", "TOKEN=1\n"), (".dockerignore", "ignored.env\n")],
    );
    s.build(&ctx, "b:1", &[]).ok();
    let img = s.save("b:1");
    assert_eq!(text(&img, "main"), "main v1\n");
    let ls = text(&img, "ls");
    assert!(ls.contains("Dockerfile") && ls.contains("src"), "{ls}");
    assert!(!ls.contains("ignored.env"), ".dockerignore'd files are not in the mount: {ls}");
    assert_eq!(text(&img, "art.txt"), "built\n");
    assert_eq!(text(&img, "img-group"), "root:x:0:\nbob:x:1000:\nstaff:x:50:bob\n");
    assert_eq!(text(&img, "rw.txt"), "ok\n");
    assert_eq!(text(&img, "ro.txt"), "readonly\n");
    // rw writes are thrown away: the context is untouched, nothing reached a layer
    assert_eq!(fs::read_to_string(ctx.join("src/main.txt")).unwrap(), "main v1\n");
    assert!(!ctx.join("new").exists());
    for p in ["src", "ctx", "art", "ie", "w", "w2"] {
        absent(&img, p);
    }
    // the bound files are part of the key: a change reruns the steps that bind them
    fs::write(ctx.join("src/main.txt"), "main v2\n").unwrap();
    let r = s.build(&ctx, "b:2", &["--explain-cache"]).ok();
    let reran = ran(&r.stdout);
    // (the first step that binds it; the later ones follow a rebuilt step)
    assert!(reran[0].contains("source=src"), "{reran:?}");
    assert!(r.stdout.contains("file changed: mount /src: src/main.txt"), "{}", r.stdout);
    assert_eq!(text(&s.save("b:2"), "main"), "main v2\n");
    // an ignored file is not: nothing reruns
    fs::write(ctx.join("ignored.env"), "TOKEN=2\n").unwrap();
    let r = s.build(&ctx, "b:3", &[]).ok();
    assert_eq!(ran(&r.stdout), Vec::<String>::new(), "{}", r.stdout);
    // a source that is not there is an error naming it
    let bad = s.context("bind-bad", &[("Dockerfile", "FROM bb\nRUN --mount=type=bind,source=nope,target=/n true\n")]);
    let r = s.build(&bad, "bad", &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Dockerfile:2") && r.stderr.contains("source \"nope\" not found"), "{}", r.stderr);
}

#[test]
fn tmpfs_mounts() {
    let df = "FROM bb\nRUN --mount=type=tmpfs,target=/scratch,size=1m sh -c 'echo x > /scratch/f && df -k /scratch | tail -1' > /df\n";
    let (s, ctx) = setup("tmpfs", df, &[]);
    s.build(&ctx, "t:1", &[]).ok();
    let img = s.save("t:1");
    let df = text(&img, "df");
    assert!(df.starts_with("tmpfs") && df.split_whitespace().nth(1) == Some("1024"), "{df}");
    absent(&img, "scratch");
}

const SECRET: &str = "hunter2-s3cr3t-value";

#[test]
fn secrets_never_reach_layers_config_history_cache_or_log() {
    let df = "FROM bb\n\
        RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -c1-64 > /sum\n\
        RUN --mount=type=secret,id=tok,target=/etc/tok.conf,mode=0440,uid=1000,gid=50 stat -c '%a %u %g' /etc/tok.conf > /stat\n\
        RUN --mount=type=secret,id=envtok,env=TOKEN sh -c 'echo -n $TOKEN | sha256sum | cut -c1-64' > /envsum\n\
        RUN --mount=type=secret,id=absent sh -c 'test -e /run/secrets/absent && echo present || echo absent' > /optional\n";
    let (s, ctx) = setup("secret", df, &[]);
    let sf = s.dir.path().join("tok.txt");
    fs::write(&sf, SECRET).unwrap();
    let src = format!("id=tok,src={}", sf.display());
    let run = |tag: &str, debug: bool| {
        let rt = integration::slipway::runtime();
        let mut args: Vec<&str> = Vec::new();
        if debug {
            args.push("--debug");
        }
        args.extend(["build", "-t", tag, "--runtime", &rt, "--secret", &src, "--secret", "id=envtok,env=SLIPWAY_T"]);
        let c = ctx.to_string_lossy().into_owned();
        args.push(&c);
        let o = Command::new(integration::slipway::bin())
            .arg("--root")
            .arg(s.root())
            .args(&args)
            .env("SLIPWAY_T", SECRET)
            .output()
            .unwrap();
        let (out, err) =
            (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned());
        assert!(o.status.success(), "{out}\n{err}");
        (out, err)
    };
    let (out, err) = run("sec:1", true);
    for (what, t) in [("stdout", &out), ("stderr with --debug", &err)] {
        assert!(!t.contains(SECRET), "the secret is in the {what}:\n{t}");
    }
    assert!(err.contains("TOKEN=****"), "--debug shows env= secrets masked:\n{err}");
    let img = s.save("sec:1");
    let want = integration::sha256_hex(SECRET.as_bytes());
    assert_eq!(text(&img, "sum").trim(), want);
    assert_eq!(text(&img, "envsum").trim(), want);
    assert_eq!(text(&img, "stat"), "440 1000 50\n");
    // an optional secret the build was not given is simply not there
    assert_eq!(text(&img, "optional"), "absent\n");
    for l in &img.layers {
        for e in l {
            assert!(!String::from_utf8_lossy(&e.data).contains(SECRET), "{} holds the secret", e.path);
        }
    }
    absent(&img, "run/secrets");
    absent(&img, "etc/tok.conf");
    assert!(!img.config.to_string().contains(SECRET));
    // the history records the steps (their mount flags), never the value
    let history = img.config["history"].to_string();
    assert!(history.contains("sha256sum /run/secrets/tok"), "{history}");
    assert!(!history.contains(SECRET) && !history.contains("SLIPWAY_T"), "{history}");
    // nor any file of the saved archive (manifest, config, layer tars)
    for (name, data) in &img.files {
        assert!(!String::from_utf8_lossy(data).contains(SECRET), "{name} of the archive holds the secret");
    }
    // nothing in the store holds it (blobs, cache entries, stat caches)
    fn files(d: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => files(&e.path(), out),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    let mut all = Vec::new();
    files(&s.root(), &mut all);
    assert!(all.len() > 10);
    for f in all {
        let data = fs::read(&f).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&data).contains(SECRET), "{} holds the secret", f.display());
    }
    // the content is no part of the key: another value still hits the cache
    fs::write(&sf, "another value").unwrap();
    let (out, _) = run("sec:2", false);
    assert_eq!(ran(&out), Vec::<String>::new(), "{out}");
    // `--secret id=ID` alone: the environment variable ID, when it is set
    let id_only = s.context(
        "secret-id-only",
        &[("Dockerfile", "FROM bb\nRUN --mount=type=secret,id=SLIPWAY_ID_ONLY sha256sum /run/secrets/SLIPWAY_ID_ONLY | cut -c1-64 > /sum\n")],
    );
    let o = Command::new(integration::slipway::bin())
        .arg("--root")
        .arg(s.root())
        .args([
            "build",
            "-t",
            "id-only",
            "--runtime",
            &integration::slipway::runtime(),
            "--secret",
            "id=SLIPWAY_ID_ONLY",
        ])
        .arg(&id_only)
        .env("SLIPWAY_ID_ONLY", SECRET)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(text(&s.save("id-only"), "sum").trim(), want);
    // a required secret that was not given fails the step, naming it
    let req = s.context("secret-req", &[("Dockerfile", "FROM bb\nRUN --mount=type=secret,id=must,required true\n")]);
    let r = s.build(&req, "req", &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Dockerfile:2") && r.stderr.contains("secret must not found"), "{}", r.stderr);
}

/// The host's ssh-add with the shared libraries it needs, as files for a context (the busybox
/// base has no ssh client).
fn ssh_add_files(ctx: &Path) -> Option<String> {
    let o = Command::new("ldd").arg("/usr/bin/ssh-add").output().ok()?;
    let mut copies = String::new();
    let mut paths = vec!["/usr/bin/ssh-add".to_string()];
    for l in String::from_utf8_lossy(&o.stdout).lines() {
        let p = l.split("=>").last().unwrap_or(l).split_whitespace().next().unwrap_or("");
        if p.starts_with('/') {
            paths.push(p.to_string());
        }
    }
    for (i, p) in paths.iter().enumerate() {
        let real = fs::canonicalize(p).ok()?;
        fs::copy(real, ctx.join(format!("f{i}"))).ok()?;
        copies.push_str(&format!("COPY f{i} {p}\n"));
    }
    Some(copies)
}

#[test]
fn ssh_agent_forwarded_from_a_key() {
    for b in ["ssh-agent", "ssh-add", "ssh-keygen", "ldd"] {
        if !integration::engines::have(b) {
            integration::skip(format!("{b} not installed (openssh-client, make deps)"));
            return;
        }
    }
    let s = Slipway::new();
    s.base("bb");
    let ctx = s.context("ssh", &[]);
    let Some(copies) = ssh_add_files(&ctx) else {
        integration::skip("could not collect ssh-add and its libraries");
        return;
    };
    let key = s.dir.path().join("id_ed25519");
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "slipway-test-key", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let df = format!(
        "FROM bb\n{copies}RUN --mount=type=ssh ssh-add -l > /keys; echo \"$SSH_AUTH_SOCK\" > /sock\n\
         RUN --mount=type=ssh,id=other,target=/agent.sock,uid=1000,gid=50,mode=0660 stat -c '%F %u %g %a' /agent.sock > /other\n\
         RUN --mount=type=ssh,id=missing sh -c 'test -e /run/buildkit/ssh_agent.0 && echo yes || echo no' > /optional\n"
    );
    fs::write(ctx.join("Dockerfile"), df).unwrap();
    let k = format!("default={}", key.display());
    let o2 = format!("other={}", key.display());
    s.build(&ctx, "ssh:1", &["--ssh", &k, "--ssh", &o2]).ok();
    let img = s.save("ssh:1");
    assert!(text(&img, "keys").contains("slipway-test-key"), "{}", text(&img, "keys"));
    assert_eq!(text(&img, "sock"), "/run/buildkit/ssh_agent.0\n");
    assert_eq!(text(&img, "other"), "socket 1000 50 660\n");
    assert_eq!(text(&img, "optional"), "no\n");
    absent(&img, "run/buildkit");
    absent(&img, "agent.sock");
    // no agent of ours outlives the build
    let agents = Command::new("pgrep").args(["-f", &s.root().to_string_lossy()]).output().unwrap();
    assert!(agents.stdout.is_empty(), "left running: {}", String::from_utf8_lossy(&agents.stdout));
    // --ssh default: the agent $SSH_AUTH_SOCK names (one of the test's own, ended by pid)
    let sock = s.dir.path().join("user-agent.sock");
    let agent = Bg(Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let deadline = Instant::now() + integration::host::PATIENCE;
    // the socket's file appears at bind(), before listen(): wait until a connect succeeds
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(Instant::now() < deadline, "ssh-agent did not listen");
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = Command::new("ssh-add").arg(&key).env("SSH_AUTH_SOCK", &sock).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ctx2 = s.context("ssh-default", &[]);
    ssh_add_files(&ctx2).unwrap();
    fs::write(ctx2.join("Dockerfile"), format!("FROM bb\n{copies}RUN --mount=type=ssh ssh-add -l > /keys\n")).unwrap();
    let rt = integration::slipway::runtime();
    let o = Command::new(integration::slipway::bin())
        .arg("--root")
        .arg(s.root())
        .args(["build", "-t", "ssh:2", "--runtime", &rt, "--ssh", "default"])
        .arg(&ctx2)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text(&s.save("ssh:2"), "keys").contains("slipway-test-key"));
    // --ssh ID=SOCKET: that agent, whatever $SSH_AUTH_SOCK says (a rebuild: the agent is no part of the key)
    let o = Command::new(integration::slipway::bin())
        .arg("--root")
        .arg(s.root())
        .args(["build", "-t", "ssh:3", "--runtime", &rt, "--no-cache", "--ssh"])
        .arg(format!("default={}", sock.display()))
        .arg(&ctx2)
        .env("SSH_AUTH_SOCK", "/nonexistent/agent.sock")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text(&s.save("ssh:3"), "keys").contains("slipway-test-key"));
    drop(agent);
    // required and not given: an error naming the id
    let req = s.context("ssh-req", &[("Dockerfile", "FROM bb\nRUN --mount=type=ssh,id=gh,required=true true\n")]);
    let r = s.build(&req, "req", &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no SSH key \"gh\" forwarded"), "{}", r.stderr);
}

#[test]
fn network_and_security_flags() {
    let df = "FROM bb\n\
        RUN --network=none sh -c 'cat /proc/net/dev | tail -n +3 | wc -l' > /none\n\
        RUN --network=host sh -c 'cat /proc/net/dev | tail -n +3 | wc -l' > /host\n\
        RUN grep CapEff /proc/self/status > /caps-sandbox\n";
    let (s, ctx) = setup("net", df, &[]);
    // the host's network is BuildKit's network.host entitlement: without it the build fails
    // before any step runs, with BuildKit's words (util/entitlements), and names nothing.
    // (docker 20.10's built-in frontend, dockerfile 1.2, refuses the flag itself: "Unknown flag:
    // network"; its `docker build --network host` needs no grant, dockerd giving it.)
    let r = s.build(&ctx, "n:1", &[]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("Dockerfile:3: RUN --network=host: network.host is not allowed")
            && r.stderr.contains("--allow network.host"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("Step 2/"), "a step ran: {}", r.stdout);
    assert_ne!(s.run(&["inspect", "n:1"]).code, 0, "an image was named");
    // BuildKit checks entitlements when it solves: `--check` solves nothing, refuses nothing
    let r = s.build(&ctx, "n:check", &["--check"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    s.build(&ctx, "n:1", &["--allow", "network.host"]).ok();
    let img = s.save("n:1");
    assert_eq!(text(&img, "none").trim(), "1", "only lo");
    // the host's links (other tests may add some meanwhile: at least those that were there)
    let host = fs::read_to_string("/proc/net/dev").unwrap().lines().skip(2).count();
    if host > 1 {
        let seen: usize = text(&img, "host").trim().parse().unwrap();
        assert!(seen > 1, "--network=host saw {seen} links, the host has {host}");
    }
    assert!(text(&img, "caps-sandbox").contains("00000000a80425fb"), "{}", text(&img, "caps-sandbox"));
    // --network=default, and a step without the flag, get what build --network says (BuildKit's
    // sandbox when not given: lo and slirp4netns's tap0, see slipway_network.rs); the step's key
    // follows, so a none or host build reruns them
    let links = "sh -c 'cat /proc/net/dev | tail -n +3 | wc -l'";
    let def = s.context(
        "net-default",
        &[("Dockerfile", &format!("FROM bb\nRUN --network=default {links} > /default\nRUN {links} > /unflagged\n"))],
    );
    if integration::engines::have("slirp4netns") {
        s.build(&def, "d:sandbox", &[]).ok();
        let img = s.save("d:sandbox");
        assert_eq!(text(&img, "default").trim(), "2", "lo and tap0");
        assert_eq!(text(&img, "unflagged").trim(), "2", "lo and tap0");
    }
    let r = s.build(&def, "d:none", &["--network", "none"]).ok();
    assert_eq!(ran(&r.stdout).len(), 2, "{}", r.stdout);
    let img = s.save("d:none");
    assert_eq!(text(&img, "default").trim(), "1", "only lo");
    assert_eq!(text(&img, "unflagged").trim(), "1", "only lo");
    let r = s.build(&def, "d:host", &["--network", "host"]).ok();
    assert_eq!(ran(&r.stdout).len(), 2, "{}", r.stdout);
    if host > 1 {
        let img = s.save("d:host");
        for f in ["default", "unflagged"] {
            let seen: usize = text(&img, f).trim().parse().unwrap();
            assert!(seen > 1, "/{f}: build --network host: the step saw {seen} links, the host has {host}");
        }
    }
    // --network=none in a host build still gets an empty namespace
    let none =
        s.context("net-none-in-host", &[("Dockerfile", &format!("FROM bb\nRUN --network=none {links} > /none\n"))]);
    s.build(&none, "d:none-in-host", &["--network", "host"]).ok();
    assert_eq!(text(&s.save("d:none-in-host"), "none").trim(), "1", "only lo");
    // insecure: refused unless allowed; then every capability of ours, and mount works
    let ins = s.context(
        "insecure",
        &[(
            "Dockerfile",
            "FROM bb\nRUN --security=insecure sh -c 'grep CapEff /proc/self/status; mkdir -p /m && mount -t tmpfs none /m && echo mounted' > /caps\n",
        )],
    );
    let r = s.build(&ins, "i:1", &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("security.insecure"), "{}", r.stderr);
    s.build(&ins, "i:1", &["--allow", "security.insecure"]).ok();
    let caps = text(&s.save("i:1"), "caps");
    let own = fs::read_to_string("/proc/self/status").unwrap();
    let bnd = own.lines().find(|l| l.starts_with("CapBnd:")).unwrap().split_whitespace().nth(1).unwrap().to_string();
    assert!(caps.contains(&bnd) && caps.contains("mounted"), "{caps} (ours: {bnd})");
    // a value that is neither is refused by name
    let bad = s.context("bad-sec", &[("Dockerfile", "FROM bb\nRUN --security=root true\n")]);
    let r = s.build(&bad, "x", &[]);
    assert!(r.code != 0 && r.stderr.contains("security mode \"root\" is not supported"), "{}", r.stderr);
}

/// A slipway build running in the background.
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bg_build(s: &Slipway, ctx: &Path, tag: &str) -> Bg {
    let rt = integration::slipway::runtime();
    Bg(Command::new(integration::slipway::bin())
        .arg("--root")
        .arg(s.root())
        .args(["build", "-q", "-t", tag, "--runtime", &rt])
        .arg(ctx)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap())
}

impl Bg {
    #[track_caller]
    fn done(mut self) {
        let deadline = Instant::now() + integration::host::PATIENCE;
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.0.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                assert!(st.success(), "background build failed: {err}");
                return;
            }
            assert!(Instant::now() < deadline, "background build still runs");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Waits until `file` appears in some instance of some cache mount of the store; returns the
/// instance's data dir.
#[track_caller]
fn wait_cache_file(root: &Path, file: &str) -> PathBuf {
    let deadline = Instant::now() + integration::host::PATIENCE;
    loop {
        for c in fs::read_dir(root.join("cache/mounts")).into_iter().flatten().flatten() {
            for i in fs::read_dir(c.path()).into_iter().flatten().flatten() {
                let data = i.path().join("data");
                if data.join(file).exists() {
                    return data;
                }
            }
        }
        assert!(Instant::now() < deadline, "{file} never appeared in a cache mount");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A step that marks its start in the cache (`{sharing}-{me}-in`), waits for the test to
/// release it, and records what it saw.
fn waiting_step(sharing: &str, me: &str) -> String {
    format!(
        "FROM bb\nRUN --mount=type=cache,id=shared-{sharing},target=/c,sharing={sharing} sh -c 'ls /c > /seen-at-start; touch /c/{sharing}-{me}-in; while [ ! -e /c/release-{me} ]; do sleep 0.05; done; ls /c > /seen'\n"
    )
}

#[test]
fn two_builds_at_once_share_a_cache_as_sharing_says() {
    let s = Slipway::new();
    s.base("bb");
    for sharing in ["locked", "private", "shared"] {
        let a = s.context(&format!("{sharing}-a"), &[("Dockerfile", &waiting_step(sharing, "a"))]);
        let b = s.context(&format!("{sharing}-b"), &[("Dockerfile", &waiting_step(sharing, "b"))]);
        let ba = bg_build(&s, &a, &format!("{sharing}-a"));
        let da = wait_cache_file(&s.root(), &format!("{sharing}-a-in"));
        let bb = bg_build(&s, &b, &format!("{sharing}-b"));
        match sharing {
            "locked" => {
                // b waits for a's lock: it has not started while a holds it
                std::thread::sleep(Duration::from_secs(1));
                assert!(!da.join("locked-b-in").exists(), "a locked cache was entered twice");
                fs::write(da.join("release-a"), "").unwrap();
                ba.done();
                let db = wait_cache_file(&s.root(), &format!("{sharing}-b-in"));
                assert_eq!(db, da, "after a, b gets the same directory");
                fs::write(db.join("release-b"), "").unwrap();
                bb.done();
                assert!(text(&s.save("locked-b"), "seen-at-start").contains("-a-in"));
            }
            "private" => {
                // b cannot have a's directory while a uses it: it gets one of its own
                let db = wait_cache_file(&s.root(), &format!("{sharing}-b-in"));
                assert_ne!(db, da);
                fs::write(db.join("release-b"), "").unwrap();
                bb.done();
                fs::write(da.join("release-a"), "").unwrap();
                ba.done();
                assert!(!text(&s.save("private-b"), "seen").contains("-a-in"));
                assert!(!text(&s.save("private-a"), "seen").contains("-b-in"));
            }
            _ => {
                // both at once in the same directory
                let db = wait_cache_file(&s.root(), &format!("{sharing}-b-in"));
                assert_eq!(db, da);
                fs::write(db.join("release-b"), "").unwrap();
                bb.done();
                fs::write(da.join("release-a"), "").unwrap();
                ba.done();
                assert!(text(&s.save("shared-b"), "seen-at-start").contains("-a-in"));
                assert!(text(&s.save("shared-a"), "seen").contains("-b-in"));
            }
        }
    }
}

#[test]
fn stages_of_one_build_take_a_locked_cache_in_turn() {
    // Independent stages run at once (build --jobs); two steps holding one sharing=locked cache
    // must still never be inside it together: each marks its presence with a directory that
    // only one can create, and fails if the other's is there.
    let step = |me: &str| {
        format!(
            "RUN --mount=type=cache,id=turns,target=/c,sharing=locked sh -c 'mkdir /c/inside || exit 7; echo {me} >> /c/order; sleep 1; rmdir /c/inside; cp /c/order /order'\n"
        )
    };
    let df = format!(
        "FROM bb AS a\n{}FROM bb AS b\n{}FROM bb\nCOPY --from=a /order /a\nCOPY --from=b /order /b\n",
        step("a"),
        step("b")
    );
    let (s, ctx) = setup("locked-stages", &df, &[]);
    s.build(&ctx, "turns", &["--jobs", "2"]).ok();
    let img = s.save("turns");
    // whoever went second saw the first's line
    let (a, b) = (text(&img, "a"), text(&img, "b"));
    assert!(a == "a\n" && b == "a\nb\n" || b == "b\n" && a == "b\na\n", "a: {a:?}, b: {b:?}");
}

#[test]
fn prune_drops_cache_mounts_within_limits_and_pull_leftovers() {
    let df = "FROM bb\nRUN --mount=type=cache,id=a,target=/a sh -c 'head -c 300000 /dev/zero > /a/big; true'\n\
        RUN --mount=type=cache,id=b,target=/b sh -c 'echo small > /b/f'\n";
    let (s, ctx) = setup("prune", df, &[]);
    s.build(&ctx, "p:1", &[]).ok();
    let mounts = || fs::read_dir(s.root().join("cache/mounts")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(mounts(), 2);
    // leftovers of an interrupted pull, and a remote location of a blob the store lacks
    let hex = "ab".repeat(32);
    fs::create_dir_all(s.root().join("ingest")).unwrap();
    fs::write(s.root().join(format!("ingest/{hex}.partial")), "half a blob").unwrap();
    fs::write(s.root().join(format!("ingest/{hex}.lock")), "").unwrap();
    fs::create_dir_all(s.root().join("cache/remote")).unwrap();
    fs::write(s.root().join(format!("cache/remote/{hex}")), "localhost:5000/x").unwrap();
    // recent ones stay with until=; both fit in 1 MB
    let o = s.run(&["prune", "--filter", "until=1h"]).ok();
    assert!(o.stdout.contains("Deleted 0 cache mounts"), "{}", o.stdout);
    assert!(o.stdout.contains("Deleted 1 partial downloads"), "{}", o.stdout);
    assert!(!s.root().join(format!("ingest/{hex}.partial")).exists());
    assert!(!s.root().join(format!("ingest/{hex}.lock")).exists());
    assert!(!s.root().join(format!("cache/remote/{hex}")).exists());
    s.run(&["prune", "--keep-storage", "1MB"]).ok();
    assert_eq!(mounts(), 2);
    // 100 kB keeps only what fits, most recently used first: b (used last) stays, a goes
    let o = s.run(&["prune", "--keep-storage", "100kB"]).ok();
    assert!(o.stdout.contains("Deleted 1 cache mounts"), "{}", o.stdout);
    assert_eq!(mounts(), 1);
    let o = s.run(&["prune", "--filter", "id=nope"]).ok();
    assert!(o.stdout.contains("Deleted 0 cache mounts"), "{}", o.stdout);
    s.run(&["prune"]).ok();
    assert_eq!(mounts(), 0);
    for (args, want) in [
        (vec!["prune", "--filter", "label=x"], "unknown filter \"label\""),
        (vec!["prune", "--keep-storage", "lots"], "expected a size"),
        (vec!["prune", "--filter", "until=soon"], "invalid duration"),
    ] {
        let r = s.run(&args);
        assert!(r.code != 0 && r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
}

/// The Dockerfile of the cache export tests: a step that appends the context's v.txt to a log
/// kept in a cache mount and copies the log into the image.
const EXPORT_DF: &str = "FROM bb\nCOPY v.txt /v.txt\n\
    RUN --mount=type=cache,id=pkgs,target=/root/.cache/pkgs sh -c 'cat /v.txt >> /root/.cache/pkgs/log; for i in 1 2 3; do echo $i > /root/.cache/pkgs/f$i; done; cp /root/.cache/pkgs/log /log'\n";

#[test]
fn cache_mounts_travel_with_a_local_cache_export() {
    let (s, ctx) = setup("export", EXPORT_DF, &[("v.txt", "one\n")]);
    let dir = s.dir.path().join("cache-dir");
    let plain = s.dir.path().join("cache-plain");
    let to = format!("type=local,dest={},cache-mounts=true", dir.display());
    let to_plain = format!("type=local,dest={}", plain.display());
    let o = s.build(&ctx, "e:1", &["--cache-to", &to, "--cache-to", &to_plain]).ok();
    assert!(o.stdout.contains("exporting 1 cache mount(s)"), "{}", o.stdout);
    fs::write(ctx.join("v.txt"), "two\n").unwrap();
    for (name, from, want) in [("with", &dir, "one\ntwo\n"), ("without", &plain, "two\n")] {
        let fresh = Slipway::new();
        fresh.base("bb");
        let src = format!("type=local,src={}", from.display());
        let o = fresh.build(&ctx, "e:2", &["--cache-from", &src]).ok();
        assert_eq!(text(&fresh.save("e:2"), "log"), want, "{name}: {}", o.stdout);
        if name == "with" {
            assert!(o.stdout.contains("1 cache mounts"), "{}", o.stdout);
        }
    }
}

#[test]
fn cache_mounts_travel_with_a_registry_cache_export() {
    if !integration::registry::available() {
        return;
    }
    let r = integration::registry::Registry::plain();
    let (s, ctx) = setup("export-reg", EXPORT_DF, &[("v.txt", "one\n")]);
    let cache_ref = format!("{}/cache/pkgs:main", r.host);
    s.build(&ctx, "e:1", &["--cache-to", &format!("type=registry,ref={cache_ref},cache-mounts=true")]).ok();
    let raw = r.skopeo(&["inspect", "--raw", &format!("docker://{cache_ref}")]);
    assert!(raw.stdout.contains("application/vnd.slipway.buildcache.mount.v1.tar+gzip"), "{}", raw.stdout);
    fs::write(ctx.join("v.txt"), "two\n").unwrap();
    let fresh = Slipway::new();
    fresh.base("bb");
    fresh.build(&ctx, "e:2", &["--cache-from", &format!("type=registry,ref={cache_ref}")]).ok();
    assert_eq!(text(&fresh.save("e:2"), "log"), "one\ntwo\n");
}

/// What is in the store's temp space but the runtime's state dir.
fn temp_dirs(root: &Path) -> Vec<String> {
    fs::read_dir(root.join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "runtime")
        .collect()
}

#[test]
fn an_interrupted_step_leaves_no_mount_container_or_temp_dir() {
    let s = Slipway::new();
    s.base("bb");
    let sf = s.dir.path().join("tok");
    fs::write(&sf, "x").unwrap();
    let ctx = s.context(
        "int",
        &[
            ("Dockerfile", "FROM bb AS st\nRUN echo > /f\nFROM bb\nRUN --mount=type=cache,target=/c --mount=type=secret,id=t --mount=type=bind,from=st,target=/st,rw --mount=type=bind,target=/ctx,rw sh -c 'touch /c/started; sleep 60'\n"),
            ("a", "a"),
        ],
    );
    let rt = integration::slipway::runtime();
    let mut child = Command::new(integration::slipway::bin())
        .arg("--root")
        .arg(s.root())
        .args(["build", "-t", "int", "--runtime", &rt, "--secret", &format!("id=t,src={}", sf.display())])
        .arg(&ctx)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_cache_file(&s.root(), "started");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGINT).unwrap();
    let deadline = Instant::now() + integration::host::PATIENCE;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "slipway did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    let root = s.root().to_string_lossy().into_owned();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&root), "mounts left under the store:\n{mounts}");
    let tmp = temp_dirs(&s.root());
    assert!(tmp.is_empty(), "temp dirs left: {tmp:?}");
    let state = s.root().join("tmp/runtime");
    let left: Vec<_> = fs::read_dir(&state).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "containers left in the runtime state: {left:?}");
}

/// A build stuck in a read of a server that never answers (here ADD of a URL whose server
/// accepts and says nothing) cannot look at the interrupt flag: one SIGTERM still ends it, by
/// the signal, after the grace, and the next command cleans up what it left.
#[test]
fn one_signal_ends_a_build_stuck_in_a_network_read() {
    use std::os::unix::process::ExitStatusExt;
    let s = Slipway::new();
    s.base("bb");
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    server.set_nonblocking(true).unwrap();
    let port = server.local_addr().unwrap().port();
    let ctx = s.context("stall", &[("Dockerfile", &format!("FROM bb\nADD http://127.0.0.1:{port}/f /f\n"))]);
    let rt = integration::slipway::runtime();
    let mut child = Command::new(integration::slipway::bin())
        .arg("--root")
        .arg(s.root())
        .args(["build", "-t", "stall", "--runtime", &rt])
        .arg(&ctx)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // ready once slipway's request has a connection: it then waits for an answer that never comes
    let deadline = Instant::now() + integration::host::PATIENCE;
    let _held = loop {
        match server.accept() {
            Ok((conn, _)) => break conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(st) = child.try_wait().unwrap() {
                    let mut err = String::new();
                    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
                    panic!("slipway ended ({st}) before it connected: {err}");
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    panic!("slipway never connected to the URL's server");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGTERM).unwrap();
    let deadline = Instant::now() + integration::host::PATIENCE;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("slipway did not end after one SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}: {err}");
    assert!(err.contains("SIGTERM 10 s ago and the command has not stopped"), "{err}");
    assert!(!s.run(&["images"]).stdout.contains("stall"));
    let tmp = temp_dirs(&s.root());
    assert!(tmp.is_empty(), "temp dirs left after the next command: {tmp:?}");
}

#[test]
fn mount_flags_are_refused_by_name() {
    let s = Slipway::new();
    s.base("bb");
    for (run, want) in [
        ("RUN --mount=type=nfs,target=/x true", "unsupported mount type \"nfs\""),
        ("RUN --mount=type=cache,target=/x,size=1m true", "unexpected key 'size' for mount type 'cache'"),
        ("RUN --mount=type=tmpfs,target=/x,from=bb true", "unexpected key 'from' for mount type 'tmpfs'"),
        ("RUN --mount=type=secret,id=a,rw true", "secret mounts are read-only"),
        ("RUN --mount=type=cache,target=/ true", "invalid mount target \"/\""),
        ("RUN --mount=type=bind,from=$X,target=/x true", "doesn't support variable expansion"),
        ("RUN --network=bridge true", "RUN --network=bridge: unsupported"),
    ] {
        let ctx = s.context("refuse", &[("Dockerfile", &format!("FROM bb\n{run}\n"))]);
        let r = s.build(&ctx, "r", &[]);
        assert!(r.code != 0 && r.stderr.contains(want), "{run}: {}", r.stderr);
    }
}

/// A Dockerfile with the mounts docker 20.10's BuildKit (v0.8, Dockerfile frontend 1.2) has:
/// everything but tmpfs `size`, secret `env=` and the ssh agent, which need newer frontends.
/// `RUN --network` and `--security` are labs flags there ("dockerfile parse error line 19:
/// Unknown flag: network"), so `network_and_security_flags` checks them against the kernel's view.
const BUILDKIT_DF: &str = "ARG BASE\nFROM $BASE AS seed\nRUN mkdir /seed && echo seeded > /seed/f\n\
    FROM $BASE AS withcache\nRUN mkdir /cache && echo kept > /cache/f && chown 7:8 /cache && chmod 0710 /cache\n\
    FROM $BASE\nCOPY v.txt /v.txt\n\
    RUN --mount=type=cache,target=/var/cache/pkg,id=pkg sh -c 'cat /v.txt >> /var/cache/pkg/log; cp /var/cache/pkg/log /log'\n\
    RUN --mount=type=cache,id=pkg,target=other cat /other/log > /seen-by-id\n\
    RUN --mount=type=cache,target=/c2,uid=1000,gid=1000,mode=0700 stat -c '%u %g %a' /c2 > /c2stat\n\
    RUN --mount=type=cache,id=pkg,target=/ro,ro sh -c 'touch /ro/x 2>/dev/null && echo writable || echo readonly' > /rostat\n\
    RUN --mount=type=cache,target=/s,from=seed,source=/seed cat /s/f > /seeded\n\
    RUN --mount=type=cache,target=/cf,from=seed,uid=1000,gid=50,mode=0750 sh -c \"stat -c '%u %g %a' /cf; ls -A /cf\" > /cfstat\n\
    RUN --mount=type=cache,target=/ck,from=withcache,uid=1000 sh -c \"stat -c '%u %g %a' /ck; cat /ck/f\" > /ckstat\n\
    RUN --mount=type=bind,source=src,target=/src cat /src/main.txt > /main\n\
    RUN --mount=type=bind,target=/ctx ls -a /ctx > /ls\n\
    RUN --mount=type=bind,from=seed,source=/seed,target=/art cat /art/f > /art.txt\n\
    RUN --mount=type=bind,target=/w,rw sh -c 'echo scribble > /w/new && rm /w/src/main.txt && echo ok' > /rw.txt\n\
    RUN --mount=type=tmpfs,target=/scratch sh -c 'echo x > /scratch/f; stat -f -c %T /scratch' > /tmpfs\n\
    RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -c1-64 > /sum\n\
    RUN --mount=type=secret,id=tok,target=/etc/tok.conf,mode=0440,uid=1000,gid=50 stat -c '%a %u %g' /etc/tok.conf > /stat\n\
    RUN --mount=type=secret,id=absent sh -c 'test -e /run/secrets/absent && echo present || echo absent' > /optional\n";

/// Every path under `dir`, relative, with the content of regular files.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, d: &Path, out: &mut std::collections::BTreeMap<String, Option<Vec<u8>>>) {
        for e in fs::read_dir(d).into_iter().flatten().flatten() {
            let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let t = e.file_type().unwrap();
            out.insert(rel, if t.is_file() { Some(fs::read(e.path()).unwrap()) } else { None });
            if t.is_dir() {
                walk(root, &e.path(), out);
            }
        }
    }
    let mut out = Default::default();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn same_files_as_docker_buildkit() {
    let docker = Path::new("/usr/bin/docker");
    if !docker.is_file() {
        integration::skip("docker.io's /usr/bin/docker (20.10, BuildKit built in) is not installed: no comparison");
        return;
    }
    let Some(e) = integration::engines::Engine::start(integration::engines::Kind::Docker) else { return };
    let s = Slipway::new();
    s.base("bb");
    let ctx = s.context(
        "buildkit",
        &[
            ("Dockerfile", BUILDKIT_DF),
            ("v.txt", "1\n"),
            ("src/main.txt", "main\n"),
            ("ignored", "x"),
            (".dockerignore", "ignored\n"),
        ],
    );
    let sf = s.dir.path().join("tok");
    fs::write(&sf, SECRET).unwrap();
    let secret = format!("id=tok,src={}", sf.display());
    // BuildKit, exported as files (-o type=local)
    let out = s.dir.path().join("buildkit-out");
    let buildkit = || {
        let _ = fs::remove_dir_all(&out);
        Command::new(docker)
            .arg("-H")
            .arg(format!("unix://{}/sock", e.dir().display()))
            .args(["build", "--network", "none", "--progress", "plain", "--secret", &secret])
            .args(["--build-arg", &format!("BASE={}", integration::engines::IMAGE)])
            .arg("-o")
            .arg(format!("type=local,dest={}", out.display()))
            .arg(&ctx)
            .env("DOCKER_BUILDKIT", "1")
            .output()
            .unwrap()
    };
    // BuildKit v0.8's own runc now and then fails to start a step while other tests run:
    // an empty rootfs ("exec: \"/bin/sh\": stat /bin/sh: no such file or directory") or a
    // secret's tmpfs file gone ("error mounting .../buildkit-secrets.../...: no such file"),
    // seen in CI with either runtime under test. The reference build is tried again then;
    // slipway's side is never retried
    let mut o = buildkit();
    for _ in 0..2 {
        if o.status.success() || !String::from_utf8_lossy(&o.stderr).contains("runc run failed") {
            break;
        }
        o = buildkit();
    }
    let err = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() && (err.contains("buildx") || err.contains("BuildKit is enabled but")) {
        integration::skip(format!("docker's BuildKit cannot build here: {}", err.lines().last().unwrap_or("")));
        return;
    }
    assert!(o.status.success(), "docker build (BuildKit): {err}");
    // slipway, unpacked
    s.build(&ctx, "bk", &["--secret", &secret, "--build-arg", "BASE=bb"]).ok();
    let up = s.dir.path().join("slipway-out");
    s.run(&["unpack", "bk", &up.to_string_lossy()]).ok();
    let (bk, sw) = (tree(&out), tree(&up.join("rootfs")));
    for f in [
        "log",
        "seen-by-id",
        "c2stat",
        "rostat",
        "seeded",
        "cfstat",
        "ckstat",
        "main",
        "ls",
        "art.txt",
        "rw.txt",
        "tmpfs",
        "sum",
        "stat",
        "optional",
    ] {
        let (a, b) = (bk.get(f).cloned().flatten(), sw.get(f).cloned().flatten());
        assert!(a.is_some(), "BuildKit made no /{f}");
        assert_eq!(
            String::from_utf8_lossy(&b.unwrap_or_default()),
            String::from_utf8_lossy(&a.unwrap_or_default()),
            "/{f}: slipway (left) and BuildKit (right) differ"
        );
    }
    // Paths: slipway has nothing BuildKit has not. BuildKit v0.8 leaves the mount points it made
    // (empty dirs and files) in the image, recorded here; BuildKit since v0.10 removes them, as
    // slipway does (executor/stubs.go, recursively for the Dockerfile frontend).
    let only_sw: Vec<&String> = sw.keys().filter(|k| !bk.contains_key(*k)).collect();
    assert!(only_sw.is_empty(), "only in slipway's image: {only_sw:?}");
    let only_bk: Vec<&String> = bk.keys().filter(|k| !sw.contains_key(*k)).collect();
    let stubs = [
        "art",
        "c2",
        "cf",
        "ck",
        "ctx",
        "other",
        "ro",
        "run",
        "run/secrets",
        "s",
        "scratch",
        "src",
        "var",
        "var/cache",
        "var/cache/pkg",
        "w",
    ];
    // (/dev, /proc and /sys are the runtime's; BuildKit exports them too)
    // (/etc/hosts, /etc/resolv.conf and the secret's file /run/secrets/tok: BuildKit v0.8
    // leaves these mount stubs in a layer or not from one run to the next, depending on which
    // of its steps its cache answered; the directories above are always there)
    let only_bk: Vec<&String> = only_bk
        .into_iter()
        .filter(|k| !["dev", "proc", "sys", "etc/hosts", "etc/resolv.conf", "run/secrets/tok"].contains(&k.as_str()))
        .collect();
    assert_eq!(only_bk, stubs.iter().collect::<Vec<_>>(), "BuildKit v0.8's mount stubs");
    for st in stubs {
        let p = out.join(st);
        let empty = if p.is_dir() {
            fs::read_dir(&p).unwrap().count() == 0 || st == "run" || st == "var" || st == "var/cache"
        } else {
            fs::metadata(&p).unwrap().len() == 0
        };
        assert!(empty, "{st} is an empty mount point in BuildKit's image");
    }
}
