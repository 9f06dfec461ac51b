//! docker 20.10's BuildKit as the reference for slipway's Dockerfile semantics: a private dockerd
//! ([`Engine`], loopback only, no bridge) driven by a docker client that has BuildKit built in
//! (`DOCKER_BUILDKIT=1 docker build`). Clients from docker 23 on need the buildx plugin for
//! that, so the client is the one `make deps` installs (`/usr/bin/docker`, 20.10), not any
//! newer `docker` earlier on $PATH. A test builds the same Dockerfile through slipway and through
//! this, and compares what `save` gives.

use crate::engines::{Engine, Kind, Out};
use crate::slipway::{read_saved, Saved};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};

pub struct BuildKit {
    engine: Engine,
    client: PathBuf,
}

/// A docker client with BuildKit built in (20.x), or None.
fn client() -> Option<PathBuf> {
    for c in ["/usr/bin/docker", "/bin/docker"] {
        let Ok(o) = Command::new(c).arg("--version").output() else { continue };
        let v = String::from_utf8_lossy(&o.stdout).into_owned();
        if v.starts_with("Docker version 20.") || v.starts_with("Docker version 19.03") {
            return Some(PathBuf::from(c));
        }
    }
    None
}

impl BuildKit {
    /// One private dockerd shared by the tests of a test binary that run at the same time
    /// (stopped when the last drops it), or None after a visible skip when dockerd or a client
    /// with built-in BuildKit is missing.
    pub fn shared() -> Option<Arc<BuildKit>> {
        static SHARED: Mutex<Weak<BuildKit>> = Mutex::new(Weak::new());
        let mut weak = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = weak.upgrade() {
            return Some(b);
        }
        let Some(client) = client() else {
            crate::skip("no docker 20.x client (docker.io) with BuildKit built in: no comparison with BuildKit");
            return None;
        };
        let engine = Engine::bare(Kind::Docker)?;
        let b = Arc::new(BuildKit { engine, client });
        *weak = Arc::downgrade(&b);
        Some(b)
    }

    /// The client command for `args` against the private daemon, BuildKit on.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.client);
        c.env("DOCKER_BUILDKIT", "1")
            .arg("-H")
            .arg(format!("unix://{}/sock", self.engine.dir().display()))
            .args(args)
            .current_dir(self.engine.dir());
        c
    }

    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Out {
        let mut c = self.command(args);
        let command = format!("{c:?}");
        let o = c.output().unwrap_or_else(|e| panic!("{command}: {e}"));
        Out {
            command,
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// `docker build --network none --progress plain -t TAG EXTRA... CTX`. BuildKit v0.8's own
    /// runc now and then fails to start a step while other tests run (an empty rootfs: "stat
    /// /bin/sh: no such file or directory", seen in CI this session): such a reference build is
    /// tried again, three times at most. Only BuildKit's side is retried.
    #[track_caller]
    pub fn build(&self, ctx: &Path, tag: &str, extra: &[&str]) -> Out {
        let c = ctx.to_string_lossy().into_owned();
        let mut args = vec!["build", "--network", "none", "--progress", "plain", "-t", tag];
        args.extend_from_slice(extra);
        args.push(&c);
        let mut o = self.run(&args);
        for _ in 0..2 {
            if o.code == Some(0) || !o.stderr.contains("runc run failed") {
                break;
            }
            o = self.run(&args);
        }
        o
    }

    /// `docker inspect --format FORMAT NAME`, trimmed (`docker save` refuses an image with no
    /// layers).
    #[track_caller]
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.run(&["inspect", "--format", format, name]).ok().text().to_string()
    }

    /// `docker save TAG`, read back.
    #[track_caller]
    pub fn save(&self, tag: &str) -> Saved {
        let t = tempfile::tempdir().expect("tempdir");
        let out = t.path().join("image.tar");
        self.run(&["save", "-o", &out.to_string_lossy(), tag]).ok();
        read_saved(&out)
    }
}
