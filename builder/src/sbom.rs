//! SBOM attestations as BuildKit makes them (its SBOM protocol, docs/attestations/sbom-protocol.md;
//! frontend/attestations/sbom/sbom.go): the generator image, pulled for the build platform like
//! any FROM image, runs as a RUN-like container through the OCI runtime (`runner.rs`) with its
//! entrypoint and cmd, its env plus `BUILDKIT_SCAN_SOURCE=/run/src/core/sbom` (the built image's
//! rootfs, a read-only overlay of its layers), `BUILDKIT_SCAN_DESTINATION=/run/out/` (a fresh
//! directory, the only thing of the run that is kept), the options as `BUILDKIT_SCAN_<KEY>`, a
//! tmpfs on /tmp and the build's network (BuildKit gives the scan the worker's default network).
//! Each file it writes must be one in-toto statement of the SPDX predicate type
//! (exporter/attestation/unbundle.go); `attest.rs` stores them. The generator's own rootfs is a
//! throwaway overlay: nothing of it reaches the image, its layers or the build cache. The scan
//! extras (BuildKit's SBOM.Extras: the stages `BUILDKIT_SBOM_SCAN_STAGE` enables, the context
//! `BUILDKIT_SBOM_SCAN_CONTEXT` does, as `plan` decides) are mounted read-only at
//! `/run/src/extras/sbom-NAME`, and `BUILDKIT_SCAN_SOURCE_EXTRAS=/run/src/extras` says so. A
//! result is kept by (generator manifest, image manifest, options, each extra's content), so a
//! no-op rebuild reruns nothing; `prune` drops it with either manifest.

use crate::attest::{Sbom, Scanned};
use crate::context::CtxEntry;
use crate::layer::{overlay, Layer};
use crate::registry::Platform;
use crate::runner::{Output, Runtime};
use crate::spec::{self, Network, RunExtras};
use crate::store::{Image, Store};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Where the generator sees the image (BuildKit's srcDir + "core/" + CoreSBOMName).
pub const SOURCE: &str = "/run/src/core/sbom";
/// Where it writes (BuildKit's outDir).
pub const DESTINATION: &str = "/run/out/";
/// Where the extras are, each at `sbom-NAME` below it (BuildKit's `path.Join(srcDir,
/// "extras/")`, which drops the trailing slash).
pub const EXTRAS: &str = "/run/src/extras";

/// One extra of a scan, what is mounted at `/run/src/extras/sbom-NAME`.
#[derive(Debug, Clone)]
pub enum Extra {
    /// A stage's final filesystem: its layers (bottom first) and their identity
    /// (`exec::fs_id`).
    Stage { layers: Vec<Layer>, id: String },
    /// The build context as the build reads it (`context_extra`): these entries of the
    /// directory `root` in walk order, and the digest of their fingerprints.
    Context { root: PathBuf, entries: Vec<CtxEntry>, id: String },
}

impl Extra {
    fn id(&self) -> &str {
        match self {
            Extra::Stage { id, .. } | Extra::Context { id, .. } => id,
        }
    }
}

/// A scan's extras by name (BuildKit's map: `context` for the context, a stage's name else).
pub type Extras = BTreeMap<String, Extra>;

/// The context extra: the entries of `ctx` (its .dockerignore applied) the build reads, as
/// BuildKit's main context transfers them for a scan (a local source with the stages'
/// ctxPaths as FollowPaths, dockerui MainContext): what `paths` (`Plan::context_paths`)
/// match and what is below them, with the directories above them; all of it when `paths` is
/// empty or holds the root. A path that runs through symlinks adds where they lead (fsutil's
/// FollowLinks, which makes include patterns of both).
pub fn context_extra(
    ctx: &mut crate::context::Context,
    paths: &std::collections::BTreeSet<String>,
) -> Result<Extra, String> {
    let all = ctx.entries().map_err(|e| format!("sbom: the context extra: {e}"))?.to_vec();
    let mut pats: Vec<String> = paths.iter().cloned().collect();
    for p in paths.iter().filter(|p| !p.contains(['*', '?', '[', '\\'])) {
        let resolved = crate::rootfs::resolve_in_root(&ctx.root, p, true);
        if let Ok(rel) = resolved.strip_prefix(&ctx.root) {
            let rel = rel.to_string_lossy();
            if rel != p.as_str() {
                pats.push(if rel.is_empty() { String::new() } else { crate::dockerignore::literal(&rel) });
            }
        }
    }
    let entries: Vec<CtxEntry> = if pats.is_empty() || pats.iter().any(|p| p.is_empty()) {
        all
    } else {
        let pats: Vec<(usize, String)> = pats.into_iter().enumerate().map(|(i, p)| (i + 1, p)).collect();
        let m = crate::dockerignore::Matcher::new(&pats).map_err(|e| format!("sbom: the context extra: {e}"))?;
        let mut keep: std::collections::HashSet<String> = std::collections::HashSet::new();
        for e in all.iter().filter(|e| !e.rel.is_empty() && m.excluded(&e.rel)) {
            let mut cur = e.rel.as_str();
            keep.insert(cur.to_string());
            while let Some((parent, _)) = cur.rsplit_once('/') {
                keep.insert(parent.to_string());
                cur = parent;
            }
        }
        all.into_iter().filter(|e| e.rel.is_empty() || keep.contains(&e.rel)).collect()
    };
    let f = ctx.fingerprints_of(&entries).map_err(|e| format!("sbom: the context extra: {e}"))?;
    let id = format!("context:{}", crate::context::digest_fingerprints(&f));
    Ok(Extra::Context { root: ctx.root.clone(), entries, id })
}

/// Copies the context extra's entries from `root` into `dest` (an empty directory): files,
/// directories and symlinks with their mode, owner and mtime; a special file (a socket, a
/// fifo, a device) is left out, as a client's context transfer leaves it.
fn copy_context(root: &Path, entries: &[CtxEntry], dest: &Path) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut dirs = Vec::new();
    for e in entries {
        let from = root.join(&e.rel);
        let to = if e.rel.is_empty() { dest.to_path_buf() } else { dest.join(&e.rel) };
        let ft = e.md.file_type();
        let at = |op: &str, err: std::io::Error| format!("{op} {}: {err}", to.display());
        if ft.is_dir() {
            if !e.rel.is_empty() {
                fs::create_dir(&to).map_err(|err| at("create", err))?;
            }
            dirs.push((to.clone(), e.md.clone()));
        } else if ft.is_symlink() {
            let target = fs::read_link(&from).map_err(|err| format!("readlink {}: {err}", from.display()))?;
            std::os::unix::fs::symlink(&target, &to).map_err(|err| at("symlink", err))?;
        } else if ft.is_file() {
            fs::copy(&from, &to).map_err(|err| format!("copy {} to {}: {err}", from.display(), to.display()))?;
            let f = fs::File::options().write(true).open(&to).map_err(|err| at("open", err))?;
            f.set_modified(e.md.modified().unwrap_or(std::time::UNIX_EPOCH)).map_err(|err| at("set mtime", err))?;
        } else {
            continue;
        }
        // rootless, an owner the user namespace does not map cannot be given (the copy keeps
        // the user's, as the context's files are the user's to send)
        if let Err(err) = std::os::unix::fs::lchown(&to, Some(e.md.uid()), Some(e.md.gid())) {
            if !crate::userns::rootless() {
                return Err(at("chown", err));
            }
        }
        if !ft.is_symlink() {
            fs::set_permissions(&to, fs::Permissions::from_mode(e.md.mode() & 0o7777))
                .map_err(|err| at("chmod", err))?;
        }
    }
    // directories last, deepest first: writing into them moved their mtime
    for (d, md) in dirs.iter().rev() {
        let f = fs::File::open(d).map_err(|err| format!("open {}: {err}", d.display()))?;
        f.set_modified(md.modified().unwrap_or(std::time::UNIX_EPOCH))
            .map_err(|err| format!("set mtime {}: {err}", d.display()))?;
    }
    Ok(())
}

/// A generator image, resolved for the build platform (BuildKit's scannerPlatform is
/// BuildPlatforms[0]), and what runs of it.
#[derive(Debug, Clone)]
pub struct Generator {
    /// The reference as given, for messages.
    pub reference: String,
    pub image: Image,
    pub args: Vec<String>,
}

/// Resolves (pulls when missing) the generator image for the machine's platform, as a FROM
/// image is; its entrypoint and cmd are what runs (BuildKit: "scanner %s does not have cmd").
pub fn resolve(
    store: &Store,
    remote: &crate::registry::base::Remote,
    sbom: &Sbom,
    log: &mut Vec<String>,
) -> Result<Generator, String> {
    let image = crate::registry::base::resolve(store, &sbom.generator, remote, Some(&Platform::host()), log)
        .map_err(|e| format!("sbom generator {}: {e}", sbom.generator))?;
    let c = &image.config.config;
    let mut args: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    args.extend(c.cmd.clone().unwrap_or_default());
    if args.is_empty() {
        return Err(format!("sbom generator {}: scanner {} does not have cmd", sbom.generator, sbom.generator));
    }
    Ok(Generator { reference: sbom.generator.clone(), image, args })
}

/// The environment of a scan (BuildKit's order: the image's env, then the protocol's, then
/// the options), PATH added when the image sets none, as for RUN; `extras`: the scan has some.
pub fn env(gen: &Generator, sbom: &Sbom, extras: bool) -> Vec<String> {
    let mut env = gen.image.config.config.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={}", crate::store::image::DEFAULT_PATH));
    }
    let mut set = |k: String, v: &str| {
        env.retain(|e| e.split('=').next() != Some(k.as_str()));
        env.push(format!("{k}={v}"));
    };
    set("BUILDKIT_SCAN_DESTINATION".into(), DESTINATION);
    set("BUILDKIT_SCAN_SOURCE".into(), SOURCE);
    if extras {
        set("BUILDKIT_SCAN_SOURCE_EXTRAS".into(), EXTRAS);
    }
    for (k, v) in &sbom.params {
        set(format!("BUILDKIT_SCAN_{k}"), v);
    }
    env
}

/// The key a scan's result is kept by: the generator's manifest, the scanned image's manifest,
/// the options, and each extra's name and content.
pub fn key(gen: &Generator, sbom: &Sbom, target: &Image, extras: &Extras) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(format!("slipway-sbom-v1\0{}\0{}\0", gen.image.manifest_digest, target.manifest_digest).as_bytes());
    for (k, v) in &sbom.params {
        h.update(format!("{k}={v}\0").as_bytes());
    }
    // (none: the key of a scan without extras, as before they were taken)
    for (name, x) in extras {
        h.update(format!("extra\0{name}\0{}\0", x.id()).as_bytes());
    }
    hex::encode(h.finalize())
}

/// Where scans are kept, one record per key.
pub const RECORDS: &str = "cache/sbom";

fn record_path(key: &str) -> String {
    format!("{RECORDS}/{key}.json")
}

/// A kept scan: the manifests it depends on (so `prune` drops it with either) and its result.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub generator: String,
    pub image: String,
    pub scanned: Vec<Scanned>,
}

/// `prune`: drops the kept scans of a generator or an image whose manifest `kept` (by blob
/// name: the digest's hex) does not hold.
pub fn prune(store: &Store, kept: &dyn Fn(&str) -> bool) {
    let Ok(rd) = fs::read_dir(store.root.join(RECORDS)) else { return };
    for e in rd.flatten() {
        let rel = format!("{RECORDS}/{}", e.file_name().to_string_lossy());
        let live = store.read_record::<Record>(&rel).is_some_and(|r| {
            kept(r.generator.trim_start_matches("sha256:")) && kept(r.image.trim_start_matches("sha256:"))
        });
        if !live {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// What a scan needs of the build.
#[derive(Clone)]
pub struct Scan<'a> {
    pub store: &'a Store,
    pub runtime: &'a Runtime,
    pub network: Network,
    pub extras: &'a RunExtras,
    /// `--no-cache` (or the target's stage in `--no-cache-filter`): run even when kept.
    pub no_cache: bool,
    pub debug: bool,
}

impl Scan<'_> {
    /// The SBOM statements of `target` (core first, then by name) an earlier scan with the same
    /// generator and options kept; none with `--no-cache`.
    pub fn kept(&self, gen: &Generator, sbom: &Sbom, target: &Image, extras: &Extras) -> Option<Vec<Scanned>> {
        if self.no_cache {
            return None;
        }
        self.store.read_record::<Record>(&record_path(&key(gen, sbom, target, extras))).map(|r| r.scanned)
    }

    /// Runs the generator on `target` and `extras` (`what`: its platform, for messages) and
    /// keeps the result.
    pub fn scan(
        &self,
        gen: &Generator,
        sbom: &Sbom,
        target: &Image,
        extras: &Extras,
        what: &str,
    ) -> Result<Vec<Scanned>, String> {
        let out = self.run(gen, sbom, target, extras, what)?;
        let rec = Record {
            generator: gen.image.manifest_digest.clone(),
            image: target.manifest_digest.clone(),
            scanned: out,
        };
        let path = record_path(&key(gen, sbom, target, extras));
        self.store.write_record(&path, &rec).map_err(|e| format!("sbom: keep the result: {e}"))?;
        Ok(rec.scanned)
    }

    fn run(
        &self,
        gen: &Generator,
        sbom: &Sbom,
        target: &Image,
        extras: &Extras,
        what: &str,
    ) -> Result<Vec<Scanned>, String> {
        let store = self.store;
        let fail =
            |e: &dyn std::fmt::Display| format!("sbom: generating the SBOM of {what} using {}: {e}", gen.reference);
        let lowers =
            |img: &Image| img.layers().iter().map(|l| crate::layer::snapshot(store, l)).collect::<Result<Vec<_>, _>>();
        // the generator's own rootfs: writable, thrown away
        let gen_lowers = lowers(&gen.image).map_err(|e| fail(&e))?;
        let gen_root = overlay::mount_rootfs(store, &gen_lowers, true).map_err(|e| fail(&e))?;
        // the image: a read-only overlay of its layers (no upper dir: nothing can change them)
        let target_lowers = lowers(target).map_err(|e| fail(&e))?;
        let src = overlay::mount_rootfs(store, &target_lowers, false).map_err(|e| fail(&e))?;
        // each extra: a stage as a read-only overlay of its layers, the context as a copy of
        // what the build reads of it (bound read-only)
        let mut extra_mounts = Vec::new();
        let mut held = (Vec::new(), Vec::new());
        for (name, x) in extras {
            let at = format!("{EXTRAS}/sbom-{name}");
            let fail_x = |e: &dyn std::fmt::Display| fail(&format!("extra {name}: {e}"));
            let source = match x {
                Extra::Stage { layers, .. } => {
                    let lw = layers
                        .iter()
                        .map(|l| crate::layer::snapshot(store, l))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| fail_x(&e))?;
                    let r = overlay::mount_rootfs(store, &lw, false).map_err(|e| fail_x(&e))?;
                    let m = r.merged.clone();
                    held.0.push(r);
                    m
                }
                Extra::Context { root, entries, .. } => {
                    let t = store.tempdir("sbom-context").map_err(|e| fail_x(&e))?;
                    let d = t.path.join("context");
                    fs::create_dir(&d).map_err(|e| fail_x(&format!("create {}: {e}", d.display())))?;
                    copy_context(root, entries, &d).map_err(|e| fail_x(&e))?;
                    held.1.push(t);
                    d
                }
            };
            extra_mounts.push((at, source));
        }
        let out_tmp = store.tempdir("sbom-out").map_err(|e| fail(&e))?;
        let out_dir = out_tmp.path.join("out");
        fs::create_dir_all(&out_dir).map_err(|e| fail(&format!("create {}: {e}", out_dir.display())))?;
        let bundle = store.tempdir("bundle").map_err(|e| fail(&e))?;
        let c = &gen.image.config.config;
        let p = spec::Process {
            args: gen.args.clone(),
            env: env(gen, sbom, !extras.is_empty()),
            cwd: if c.working_dir.is_empty() { "/".into() } else { c.working_dir.clone() },
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
        };
        let merged = gen_root.merged.clone();
        let cwd_host = crate::rootfs::resolve_in_root(&merged, &p.cwd, true);
        if !cwd_host.exists() {
            crate::rootfs::mkdir_all(&merged, &p.cwd, None)
                .map_err(|e| fail(&format!("create working dir {}: {e}", p.cwd)))?;
        }
        let id = format!("slipway-sbom-{}", &key(gen, sbom, target, extras)[..12]);
        let id = format!("{id}-{}", std::process::id());
        let hostname = self.extras.hostname();
        let mut config = spec::config(
            &merged.to_string_lossy(),
            &p,
            hostname,
            self.network,
            (!crate::userns::rootless()).then(|| self.runtime.cgroups_path(&id)).as_deref(),
        );
        let write = |name: &str, text: &str| {
            let f = bundle.path.join(name);
            fs::write(&f, text).map_err(|e| fail(&format!("write {}: {e}", f.display())))?;
            Ok::<_, String>(f.to_string_lossy().into_owned())
        };
        let hosts = write("hosts", &self.extras.hosts_file(hostname))?;
        let resolv = write("resolv.conf", &spec::resolv_conf(&crate::exec::host_resolv_conf(), self.network))?;
        self.extras.apply(&mut config, &hosts, &resolv);
        let _net = if self.network == Network::Sandbox {
            Some(crate::netns::Sandbox::join(&mut config).map_err(|e| fail(&e))?)
        } else {
            None
        };
        if let Some(m) = config["mounts"].as_array_mut() {
            use serde_json::json;
            m.push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=1777"]}));
            m.push(json!({"destination": SOURCE, "type": "bind", "source": src.merged.to_string_lossy(),
                "options": ["rbind", "ro"]}));
            for (at, source) in &extra_mounts {
                m.push(json!({"destination": at, "type": "bind", "source": source.to_string_lossy(),
                    "options": ["rbind", "ro"]}));
            }
            m.push(json!({"destination": DESTINATION.trim_end_matches('/'), "type": "bind",
                "source": out_dir.to_string_lossy(), "options": ["rbind"]}));
        }
        let text = serde_json::to_vec_pretty(&config).unwrap_or_default();
        if self.debug {
            eprintln!(
                "debug: SBOM {id}: runtime {} bundle {}\ndebug: config.json {}",
                self.runtime.bin.display(),
                bundle.path.display(),
                String::from_utf8_lossy(&text)
            );
        }
        let cfg_path = bundle.path.join("config.json");
        fs::write(&cfg_path, text).map_err(|e| fail(&format!("write {}: {e}", cfg_path.display())))?;
        self.runtime.record(&bundle.path, &id).map_err(|e| fail(&format!("write {}: {e}", bundle.path.display())))?;
        let outcome = self.runtime.run(&bundle.path, &id, Output::Capture).map_err(|e| fail(&e))?;
        drop(held);
        drop(src);
        drop(gen_root);
        if outcome.code != 0 {
            let said = String::from_utf8_lossy(&outcome.output);
            return Err(fail(&format!(
                "the generator exited with status {}{}",
                outcome.code,
                if said.trim().is_empty() { String::new() } else { format!(": {}", said.trim_end()) }
            )));
        }
        let mut scanned = read_output(&out_dir).map_err(|e| fail(&e))?;
        place_files(store, target, &mut scanned).map_err(|e| fail(&e))?;
        Ok(scanned)
    }
}

/// Every entry of the generator's destination, in name order, each a regular file holding one
/// in-toto statement of the SPDX predicate type; the core scan (`sbom.*`) first (BuildKit's
/// unbundle and sort).
pub fn read_output(dir: &Path) -> Result<Vec<Scanned>, String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("read {}: {e}", dir.display()))?;
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let p = dir.join(&n);
        let md = fs::symlink_metadata(&p).map_err(|e| format!("{n}: {e}"))?;
        if !md.file_type().is_file() {
            return Err(format!("{DESTINATION}{n} is not a regular file"));
        }
        let data = fs::read(&p).map_err(|e| format!("read {n}: {e}"))?;
        out.push(Scanned::parse(&n, &data)?);
    }
    // the core scan first, the others after, each group in name order
    out.sort_by_key(|s| !s.is_core());
    Ok(out)
}

/// For the core SPDX document: which of the image's layers (index, bottom first) each of its
/// uncommented files comes from, the topmost layer holding it (BuildKit's fileLayerFinder,
/// which skips whiteouts).
fn place_files(store: &Store, target: &Image, scanned: &mut [Scanned]) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    for sc in scanned.iter_mut() {
        let wanted = sc.files_to_place();
        if wanted.is_empty() {
            continue;
        }
        let mut found: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let layers = target.layers();
        for (i, l) in layers.iter().enumerate().rev() {
            let dir = crate::layer::snapshot(store, l).map_err(|e| e.to_string())?;
            for e in walkdir::WalkDir::new(&dir).min_depth(1) {
                let e = e.map_err(|e| format!("walk {}: {e}", dir.display()))?;
                let ft = e.file_type();
                // an overlay whiteout (a 0/0 character device) deletes, it creates nothing
                if ft.is_char_device() || e.file_name().to_string_lossy().starts_with(".wh.") {
                    continue;
                }
                let rel = e.path().strip_prefix(&dir).map(|r| format!("/{}", r.to_string_lossy())).unwrap_or_default();
                found.entry(rel).or_insert(i);
            }
        }
        let placed: Vec<(usize, usize)> = wanted
            .iter()
            .filter_map(|(fi, name)| {
                let n = format!("/{}", name.trim_start_matches("./").trim_start_matches('/'));
                found.get(&n).map(|li| (*fi, *li))
            })
            .collect();
        sc.file_layers = Some(placed);
    }
    // the creator is added to an SPDX 2 core document even when no file was placed
    for sc in scanned.iter_mut() {
        if sc.file_layers.is_none() && sc.is_core() && sc.is_spdx2() {
            sc.file_layers = Some(Vec::new());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The context extra holds what the build reads (BuildKit's FollowPaths: a path, what is
    /// below it, the directories above it), .dockerignore applied; all of it for the root.
    #[test]
    fn the_context_extra_is_what_the_build_reads() {
        let t = tempfile::tempdir().unwrap();
        for (p, c) in [
            ("a.txt", "a"),
            ("b.txt", "b"),
            ("d/x", "x"),
            ("d/skip", "s"),
            ("e/f/g.txt", "g"),
            ("e/h", "h"),
            (".dockerignore", "d/skip\n"),
        ] {
            let f = t.path().join(p);
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::write(f, c).unwrap();
        }
        let mut ctx = crate::context::Context::open(t.path(), None).unwrap();
        let rels = |x: &Extra| match x {
            Extra::Context { entries, .. } => entries.iter().map(|e| e.rel.clone()).collect::<Vec<_>>(),
            Extra::Stage { .. } => panic!("a stage"),
        };
        let paths = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<std::collections::BTreeSet<_>>();
        let x = context_extra(&mut ctx, &paths(&["a.txt", "d", "e/f/g.txt"])).unwrap();
        assert_eq!(rels(&x), ["", "a.txt", "d", "d/x", "e", "e/f", "e/f/g.txt"]);
        let all = context_extra(&mut ctx, &paths(&["a.txt", ""])).unwrap();
        assert_eq!(rels(&all), ["", ".dockerignore", "a.txt", "b.txt", "d", "d/x", "e", "e/f", "e/f/g.txt", "e/h"]);
        assert_eq!(rels(&context_extra(&mut ctx, &paths(&[])).unwrap()), rels(&all));
        // a path through a symlink takes the link and where it leads (fsutil's FollowLinks)
        std::os::unix::fs::symlink("d", t.path().join("ln")).unwrap();
        let mut linked = crate::context::Context::open(t.path(), None).unwrap();
        let l = context_extra(&mut linked, &paths(&["ln"])).unwrap();
        assert_eq!(rels(&l), ["", "d", "d/x", "ln"]);
        std::fs::remove_file(t.path().join("ln")).unwrap();
        // its identity is its content: a file it does not hold changes nothing
        fs::write(t.path().join("b.txt"), "changed").unwrap();
        let mut again = crate::context::Context::open(t.path(), None).unwrap();
        assert_eq!(context_extra(&mut again, &paths(&["a.txt", "d", "e/f/g.txt"])).unwrap().id(), x.id());
        fs::write(t.path().join("d/x"), "changed").unwrap();
        let mut again = crate::context::Context::open(t.path(), None).unwrap();
        assert_ne!(context_extra(&mut again, &paths(&["a.txt", "d", "e/f/g.txt"])).unwrap().id(), x.id());
        // copied with its modes, no more than it holds
        let out = tempfile::tempdir().unwrap();
        if let Extra::Context { root, entries, .. } = &x {
            copy_context(root, entries, out.path()).unwrap();
        }
        let mut got: Vec<String> = walkdir::WalkDir::new(out.path())
            .min_depth(1)
            .into_iter()
            .map(|e| e.unwrap().path().strip_prefix(out.path()).unwrap().to_string_lossy().into_owned())
            .collect();
        got.sort();
        assert_eq!(got, ["a.txt", "d", "d/x", "e", "e/f", "e/f/g.txt"]);
        assert_eq!(fs::read_to_string(out.path().join("e/f/g.txt")).unwrap(), "g");
    }
}
