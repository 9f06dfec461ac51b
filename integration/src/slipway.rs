//! Helpers for slipway's black-box tests: run the release binary against a private store,
//! build fixture contexts, and read what `slipway save` wrote (never the store itself).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The slipway binary: `$SLIPWAY_BIN`, else the workspace's release build.
pub fn bin() -> PathBuf {
    match std::env::var_os("SLIPWAY_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::workspace_dir().join("target/release/slipway"),
    }
}

/// slipway built with `--features failpoints` (`make failpoints`, which `make test` runs), for
/// the tests that kill it at a named point of its store's commit (builder/src/failpoint.rs).
pub fn failpoint_bin() -> PathBuf {
    let bin = crate::workspace_dir().join("target/failpoints/slipway");
    assert!(bin.exists(), "{} is missing: run `make failpoints` (make test does)", bin.display());
    bin
}

/// The runtime RUN steps use: `$SLIPWAY_RUNTIME`, else the runtime under test (`$OCI_RUNTIME`,
/// else the workspace's skiff: what users get, since slipway picks the skiff next to it). So
/// `make test` builds through skiff and `OCI_RUNTIME=$(which runc) cargo test` through runc.
pub fn runtime() -> String {
    match std::env::var("SLIPWAY_RUNTIME") {
        Ok(r) if !r.is_empty() => r,
        _ => crate::runtime_path().to_string_lossy().into_owned(),
    }
}

/// The Dockerfile fixtures.
pub fn fixtures() -> PathBuf {
    crate::workspace_dir().join("spec-fixtures/dockerfiles")
}

/// `slipway --root ROOT build --runtime RT ARGS CTX` with none of the caller's variables whose
/// names start with `scrub` (a cloud's credentials and endpoints), and `env` set.
pub fn build_scrubbed(root: &Path, ctx: &Path, args: &[&str], scrub: &str, env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(bin());
    c.arg("--root").arg(root).args(["build", "--runtime", &runtime()]).args(args).arg(ctx);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with(scrub)) {
        c.env_remove(k);
    }
    c.envs(env.iter().copied());
    Run::from(c.output().expect("run slipway"))
}

/// What `slipway --root ROOT inspect NAME` prints (the image's ID and config); panics unless it
/// succeeds.
pub fn inspect(root: &Path, name: &str) -> String {
    let o = Command::new(bin()).arg("--root").arg(root).args(["inspect", name]).output().expect("inspect");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A private store and scratch space, removed on drop (even when the test fails).
pub struct Slipway {
    pub dir: tempfile::TempDir,
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    /// Panics with the output unless the command succeeded.
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// One entry of a layer tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since 1970 (negative before): the PAX `mtime` record when there is one (the
    /// header's field holds 0 for a time before 1970), else the header's.
    pub mtime: i64,
    /// The PAX `mtime` record as written, if any.
    pub pax_mtime: Option<String>,
    pub link: Option<String>,
    pub data: Vec<u8>,
    /// `SCHILY.xattr.*` PAX keys (without the prefix).
    pub xattrs: Vec<String>,
}

/// An image read back from a docker-archive tar.
#[derive(Debug)]
pub struct Saved {
    pub repo_tags: Vec<String>,
    pub config: serde_json::Value,
    pub layers: Vec<Vec<Entry>>,
    pub files: BTreeMap<String, Vec<u8>>,
    /// `blobs/sha256/<hex>` of the config.
    pub config_path: String,
}

impl Saved {
    /// The image ID (config digest).
    pub fn id(&self) -> String {
        format!("sha256:{}", self.config_path.rsplit('/').next().unwrap_or(""))
    }
    /// The last layer's entry for a path.
    pub fn find(&self, path: &str) -> Option<&Entry> {
        self.layers.iter().rev().flat_map(|l| l.iter()).find(|e| e.path.trim_end_matches('/') == path)
    }
    pub fn cfg(&self, field: &str) -> &serde_json::Value {
        &self.config["config"][field]
    }
    pub fn history(&self) -> Vec<String> {
        self.config["history"]
            .as_array()
            .map(|a| a.iter().map(|h| h["created_by"].as_str().unwrap_or("").to_string()).collect())
            .unwrap_or_default()
    }
}

fn read_entries(data: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut ar = tar::Archive::new(data);
    for e in ar.entries().expect("layer tar") {
        let mut e = e.expect("layer entry");
        let h = e.header().clone();
        let kind = match h.entry_type() {
            tar::EntryType::Regular => '-',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Char => 'c',
            tar::EntryType::Block => 'b',
            tar::EntryType::Fifo => 'p',
            _ => '?',
        };
        let link = e.link_name().ok().flatten().map(|l| l.to_string_lossy().into_owned());
        let pax: Vec<(String, String)> = e
            .pax_extensions()
            .ok()
            .flatten()
            .map(|x| {
                x.flatten()
                    .filter_map(|p| {
                        Some((p.key().ok()?.to_string(), String::from_utf8_lossy(p.value_bytes()).into_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let xattrs = pax.iter().filter_map(|(k, _)| k.strip_prefix("SCHILY.xattr.")).map(str::to_string).collect();
        let pax_mtime = pax.iter().find(|(k, _)| k == "mtime").map(|(_, v)| v.clone());
        // whole seconds of the record (the writers under test write no fraction)
        let pax_secs = pax_mtime.as_deref().and_then(|v| v.split('.').next()?.parse::<i64>().ok());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap_or_else(|err| panic!("read layer entry {:?}: {err}", e.path()));
        out.push(Entry {
            path: e.path().expect("path").to_string_lossy().into_owned(),
            kind,
            mode: h.mode().unwrap_or(0),
            uid: h.uid().unwrap_or(0),
            gid: h.gid().unwrap_or(0),
            mtime: pax_secs.unwrap_or_else(|| h.mtime().map_or(1, |t| t as i64)),
            pax_mtime,
            link,
            data,
            xattrs,
        });
    }
    out
}

/// Reads every file of a tar into memory.
pub fn tar_files(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let f = fs::File::open(path).expect("open tar");
    let mut ar = tar::Archive::new(f);
    let mut m = BTreeMap::new();
    for e in ar.entries().expect("tar") {
        let mut e = e.expect("entry");
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let p = e.path().expect("path").to_string_lossy().into_owned();
        let mut d = Vec::new();
        e.read_to_end(&mut d).expect("read");
        m.insert(p, d);
    }
    m
}

impl Default for Slipway {
    fn default() -> Self {
        Self::new()
    }
}

impl Slipway {
    pub fn new() -> Slipway {
        Slipway { dir: tempfile::Builder::new().prefix("slipway-test-").tempdir().expect("tempdir") }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Runs `slipway --root <store> ARGS`.
    pub fn run(&self, args: &[&str]) -> Run {
        let o = Command::new(bin())
            .arg("--root")
            .arg(self.root())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", bin().display()));
        Run::from(o)
    }

    /// [`Slipway::run`] for a command that must not wait for anything slow: killed, and the test
    /// failed, if it still runs after [`crate::host::PATIENCE`].
    #[track_caller]
    pub fn run_bounded(&self, args: &[&str]) -> Run {
        let child = Command::new(bin())
            .arg("--root")
            .arg(self.root())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", bin().display()));
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(crate::host::PATIENCE) {
            Ok(o) => Run::from(o.unwrap_or_else(|e| panic!("wait for slipway {args:?}: {e}"))),
            Err(_) => {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL);
                panic!("slipway {args:?} still ran after {:?}; killed it", crate::host::PATIENCE)
            }
        }
    }

    /// A fresh context dir with these files (path -> content); Dockerfile included if given.
    pub fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let d = self.dir.path().join("ctx").join(name);
        fs::create_dir_all(&d).expect("mkdir ctx");
        for (p, c) in files {
            let f = d.join(p);
            fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
            fs::write(&f, c).expect("write");
        }
        d
    }

    /// Copies a fixture dir from spec-fixtures/dockerfiles into a fresh context.
    pub fn fixture(&self, name: &str) -> PathBuf {
        let src = fixtures().join(name);
        let d = self.dir.path().join("ctx").join(name);
        copy_tree(&src, &d);
        d
    }

    /// `build -t TAG --runtime <runtime> EXTRA... CTX`
    pub fn build(&self, ctx: &Path, tag: &str, extra: &[&str]) -> Run {
        let rt = runtime();
        let mut args = vec!["build", "-t", tag, "--runtime", rt.as_str()];
        args.extend_from_slice(extra);
        let c = ctx.to_string_lossy().into_owned();
        args.push(&c);
        self.run(&args)
    }

    /// Builds the shared busybox base image (`FROM scratch` + static busybox) as `tag`.
    pub fn base(&self, tag: &str) {
        let d = self.dir.path().join("ctx").join("base");
        fs::create_dir_all(&d).expect("mkdir");
        fs::copy("/usr/bin/busybox", d.join("busybox")).expect("copy busybox (busybox-static)");
        fs::write(
            d.join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nRUN mkdir -p /etc /tmp && chmod 1777 /tmp && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && echo 'bob:x:1000:1000::/home/bob:/bin/sh' >> /etc/passwd && printf 'root:x:0:\\nbob:x:1000:\\nstaff:x:50:bob\\n' > /etc/group\nCMD [\"sh\"]\n",
        )
        .expect("write");
        self.build(&d, tag, &[]).ok();
    }

    /// Saves `name` as a docker-archive and reads it back.
    pub fn save(&self, name: &str) -> Saved {
        let out = self.dir.path().join(format!("{}.tar", name.replace([':', '/'], "_")));
        self.run(&["save", name, "-o", &out.to_string_lossy()]).ok();
        read_saved(&out)
    }
}

/// Reads a docker-archive tar.
pub fn read_saved(path: &Path) -> Saved {
    let files = tar_files(path);
    let manifest: serde_json::Value =
        serde_json::from_slice(files.get("manifest.json").expect("manifest.json")).expect("manifest json");
    let m = &manifest[0];
    let cfg_path = m["Config"].as_str().expect("Config").to_string();
    let config: serde_json::Value =
        serde_json::from_slice(files.get(&cfg_path).expect("config blob")).expect("config json");
    let layers = m["Layers"]
        .as_array()
        .expect("Layers")
        .iter()
        .map(|l| layer_entries(files.get(l.as_str().expect("layer path")).expect("layer blob")))
        .collect();
    let repo_tags = m["RepoTags"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    Saved { repo_tags, config, layers, files, config_path: cfg_path }
}

/// The entries of a layer blob, gzip-compressed or not.
fn layer_entries(data: &[u8]) -> Vec<Entry> {
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut d = Vec::new();
        flate2::read::GzDecoder::new(data).read_to_end(&mut d).expect("gunzip");
        read_entries(&d)
    } else {
        read_entries(data)
    }
}

/// Reads each platform's image of an OCI archive (`-o type=oci,dest=FILE`) whose index (or the
/// index its `index.json` names) lists platforms, by the entry's `os/architecture[/variant]`.
pub fn read_oci_platforms(path: &Path) -> BTreeMap<String, Saved> {
    let files = tar_files(path);
    let json = |p: &str| -> serde_json::Value {
        serde_json::from_slice(files.get(p).unwrap_or_else(|| panic!("{p} in {}", path.display()))).expect("json")
    };
    let blob_path =
        |d: &serde_json::Value| format!("blobs/sha256/{}", d.as_str().expect("digest").trim_start_matches("sha256:"));
    let mut index = json("index.json");
    while index["manifests"][0]["platform"].is_null() && !index["manifests"][0].is_null() {
        index = json(&blob_path(&index["manifests"][0]["digest"]));
    }
    let mut out = BTreeMap::new();
    for d in index["manifests"].as_array().expect("manifests") {
        let p = &d["platform"];
        let mut name = format!("{}/{}", p["os"].as_str().unwrap_or(""), p["architecture"].as_str().unwrap_or(""));
        if let Some(v) = p["variant"].as_str() {
            name = format!("{name}/{v}");
        }
        let m = json(&blob_path(&d["digest"]));
        let config_path = blob_path(&m["config"]["digest"]);
        let config = json(&config_path);
        let layers = m["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| layer_entries(files.get(&blob_path(&l["digest"])).expect("layer blob")))
            .collect();
        out.insert(name, Saved { repo_tags: Vec::new(), config, layers, files: files.clone(), config_path });
    }
    out
}

fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("mkdir");
    for e in fs::read_dir(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display())) {
        let e = e.expect("entry");
        let t = dst.join(e.file_name());
        let ft = e.file_type().expect("type");
        if ft.is_dir() {
            copy_tree(&e.path(), &t);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path()).expect("readlink"), &t).expect("symlink");
        } else {
            fs::copy(e.path(), &t).expect("copy");
        }
    }
}

/// A listing of a store directory (to check a failed command changed nothing visible).
pub fn store_listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["index.json", "blobs/sha256"] {
        let p = root.join(sub);
        if p.is_file() {
            out.push(format!("{sub}:{}", fs::read_to_string(&p).unwrap_or_default()));
        } else if let Ok(rd) = fs::read_dir(&p) {
            let mut v: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            v.sort();
            out.extend(v);
        }
    }
    out
}
