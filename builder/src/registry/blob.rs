//! Blob transfer: download into the store (streamed, hashed on the way, resumed with a Range
//! request after an interruption), existence checks (HEAD), cross-repository mounts, and
//! uploads (one PUT when small, PATCH chunks when large). Also the store's memory of which
//! repositories of which registry hold a blob (for mounts), and a small worker pool.

use super::client::{header, Body, Client};
use super::error::RegistryError;
use crate::store::image::Descriptor;
use crate::store::ingest::Opened;
use crate::store::Store;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Blobs up to this size go up in one PUT; larger ones in PATCH chunks of `CHUNK`.
pub const MONOLITHIC_MAX: u64 = 32 << 20;
pub const CHUNK: u64 = 64 << 20;
/// How many blobs move at once (docker and containerd use 3).
pub const PARALLEL: usize = 3;
/// 1 MiB buffers in flight between a download's socket reader and its hashing writer.
const PIPE: usize = 4;

/// Runs `f` over `items` on up to `n` threads; the first error stops new work and is returned.
pub fn parallel<T: Sync>(
    items: &[T],
    n: usize,
    f: impl Fn(&T) -> Result<(), RegistryError> + Sync,
) -> Result<(), RegistryError> {
    parallel_with(items, n, f)
}

/// [`parallel`] for any error type (the S3 client's parts).
pub fn parallel_with<T: Sync, E: Send>(items: &[T], n: usize, f: impl Fn(&T) -> Result<(), E> + Sync) -> Result<(), E> {
    if items.len() <= 1 || n <= 1 {
        return items.iter().try_for_each(f);
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first: Mutex<Option<E>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..n.min(items.len()) {
            s.spawn(|| loop {
                if failed.load(Ordering::SeqCst) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { return };
                if let Err(e) = f(item) {
                    failed.store(true, Ordering::SeqCst);
                    if let Ok(mut g) = first.lock() {
                        g.get_or_insert(e);
                    }
                    return;
                }
            });
        }
    });
    match first.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}

/// Downloads `desc` from `repository` into the store unless it is there; returns whether
/// bytes were fetched. A digest or size mismatch fails naming the digest and leaves nothing.
pub fn fetch(
    client: &Client,
    repository: &str,
    desc: &Descriptor,
    store: &Store,
    scopes: &[String],
) -> Result<bool, RegistryError> {
    if store.has_blob(&desc.digest) {
        return Ok(false);
    }
    let mut w = match store.ingest(&desc.digest)? {
        Opened::Present => return Ok(false),
        Opened::Writing(w) => w,
    };
    let op = format!("GET blob {} of {}/{repository}", desc.digest, client.registry);
    let path = format!("{repository}/blobs/{}", desc.digest);
    let mismatch = |why: String| RegistryError::Digest {
        registry: client.registry.clone(),
        repository: repository.into(),
        what: "blob",
        digest: desc.digest.clone(),
        why,
    };
    if w.offset() > desc.size {
        w.reset()?;
    }
    for _ in 0..2 {
        let range = (w.offset() > 0 && w.offset() < desc.size).then(|| format!("bytes={}-", w.offset()));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(r) = &range {
            headers.push(("Range", r.as_str()));
        }
        let res = client.send("GET", &path, scopes, &headers, &Body::Empty, &op)?;
        match res.status().as_u16() {
            206 if range.is_some() => {}
            200 => {
                if w.offset() > 0 {
                    w.reset()?; // the registry sends it whole
                }
            }
            416 if range.is_some() => {
                let mut res = res;
                let _ = res.body_mut().read_to_vec();
                w.reset()?;
                continue;
            }
            _ => return Err(client.fail(&op, res)),
        }
        let mut body = res.into_body().into_reader();
        let limit = desc.size - w.offset();
        // copy no more than the manifest promised (+1 to notice a longer body)
        let mut r = (&mut body).take(limit + 1);
        // two threads: this one takes bytes off the socket, the other hashes and writes them
        // (at most PIPE buffers of 1 MiB in flight), so a busy machine gives the transfer two
        // cores' worth of turns rather than one
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(PIPE);
        let w_ref = &mut *w;
        let (read_res, write_res) = std::thread::scope(|s| {
            let writer = s.spawn(move || -> std::io::Result<()> {
                for buf in rx {
                    w_ref.write_all(&buf)?;
                }
                Ok(())
            });
            let read_res = (|| -> std::io::Result<()> {
                loop {
                    let mut buf = vec![0u8; 1 << 20];
                    let mut n = 0;
                    // fill the buffer (a socket read gives a few hundred KiB at most)
                    while n < buf.len() {
                        let k = r.read(&mut buf[n..])?;
                        if k == 0 {
                            break;
                        }
                        n += k;
                    }
                    if n == 0 {
                        return Ok(());
                    }
                    buf.truncate(n);
                    if tx.send(buf).is_err() {
                        return Ok(()); // the writer failed; its error is reported
                    }
                }
            })();
            drop(tx);
            let write_res = writer.join().unwrap_or_else(|_| Err(std::io::Error::other("writer thread panicked")));
            (read_res, write_res)
        });
        write_res.map_err(|err| RegistryError::Io { path: store.root.join("ingest"), err })?;
        if let Err(e) = read_res {
            let _ = w.flush(); // keep what arrived for the next run
            return Err(RegistryError::Transport { registry: client.registry.clone(), op, why: e.to_string() });
        }
        return match w.commit(desc.size) {
            Ok(()) => Ok(true),
            Err(why) => Err(mismatch(why)),
        };
    }
    Err(mismatch("the registry refused every range".into()))
}

/// HEAD: does `repository` hold `digest`?
pub fn exists(client: &Client, repository: &str, digest: &str, scopes: &[String]) -> Result<bool, RegistryError> {
    let op = format!("HEAD blob {digest} in {}/{repository}", client.registry);
    let mut res = client.send("HEAD", &format!("{repository}/blobs/{digest}"), scopes, &[], &Body::Empty, &op)?;
    match res.status().as_u16() {
        200 => {
            let _ = res.body_mut().read_to_vec();
            Ok(true)
        }
        404 => {
            let _ = res.body_mut().read_to_vec();
            Ok(false)
        }
        _ => Err(client.fail(&op, res)),
    }
}

/// What a mount attempt gave.
pub enum Mount {
    Mounted,
    /// The registry opened an upload session instead (at this location).
    Upload(String),
}

/// `POST /blobs/uploads/?mount=DIGEST&from=REPO`.
pub fn mount(
    client: &Client,
    repository: &str,
    digest: &str,
    from: &str,
    scopes: &[String],
) -> Result<Mount, RegistryError> {
    let op = format!("mount blob {digest} from {from} into {}/{repository}", client.registry);
    let path = format!(
        "{repository}/blobs/uploads/?mount={}&from={}",
        super::client::form_encode(digest),
        super::client::form_encode(from)
    );
    let mut res = client.send("POST", &path, scopes, &[("Content-Length", "0")], &Body::Empty, &op)?;
    match res.status().as_u16() {
        201 => {
            let _ = res.body_mut().read_to_vec();
            Ok(Mount::Mounted)
        }
        202 => {
            let loc = header(&res, "location").map(str::to_string);
            let _ = res.body_mut().read_to_vec();
            loc.map(Mount::Upload).ok_or_else(|| RegistryError::Invalid {
                registry: client.registry.clone(),
                what: op,
                why: "202 without Location".into(),
            })
        }
        _ => Err(client.fail(&op, res)),
    }
}

fn with_query(loc: &str, q: &str) -> String {
    if loc.contains('?') {
        format!("{loc}&{q}")
    } else {
        format!("{loc}?{q}")
    }
}

/// Uploads the file `path` (`size` bytes, digest `digest`) to `repository`, continuing the
/// session at `location` if a mount attempt opened one.
pub fn upload(
    client: &Client,
    repository: &str,
    path: &Path,
    digest: &str,
    size: u64,
    location: Option<String>,
    scopes: &[String],
) -> Result<(), RegistryError> {
    let op = format!("upload blob {digest} to {}/{repository}", client.registry);
    let location_of = |res: &super::client::Resp| -> Result<String, RegistryError> {
        header(res, "location").map(str::to_string).ok_or_else(|| RegistryError::Invalid {
            registry: client.registry.clone(),
            what: op.clone(),
            why: format!("HTTP {} without Location", res.status().as_u16()),
        })
    };
    let mut loc = match location {
        Some(l) => l,
        None => {
            let mut res = client.send(
                "POST",
                &format!("{repository}/blobs/uploads/"),
                scopes,
                &[("Content-Length", "0")],
                &Body::Empty,
                &op,
            )?;
            if res.status().as_u16() != 202 {
                return Err(client.fail(&op, res));
            }
            let l = location_of(&res)?;
            let _ = res.body_mut().read_to_vec();
            l
        }
    };
    let digest_q = format!("digest={}", super::client::form_encode(digest));
    let oct = ("Content-Type", "application/octet-stream");
    if size <= MONOLITHIC_MAX {
        let res = client.send(
            "PUT",
            &with_query(&loc, &digest_q),
            scopes,
            &[oct],
            &Body::File { path, offset: 0, len: size },
            &op,
        )?;
        return finish(client, &op, res);
    }
    let mut offset = 0;
    while offset < size {
        let len = CHUNK.min(size - offset);
        let range = format!("{}-{}", offset, offset + len - 1);
        let mut res = client.send(
            "PATCH",
            &loc,
            scopes,
            &[oct, ("Content-Range", range.as_str())],
            &Body::File { path, offset, len },
            &op,
        )?;
        if res.status().as_u16() != 202 {
            return Err(client.fail(&op, res));
        }
        loc = location_of(&res)?;
        let _ = res.body_mut().read_to_vec();
        offset += len;
    }
    let res =
        client.send("PUT", &with_query(&loc, &digest_q), scopes, &[("Content-Length", "0")], &Body::Empty, &op)?;
    finish(client, &op, res)
}

fn finish(client: &Client, op: &str, mut res: super::client::Resp) -> Result<(), RegistryError> {
    if res.status().as_u16() == 201 {
        let _ = res.body_mut().read_to_vec();
        return Ok(());
    }
    Err(client.fail(op, res))
}

/// Where the store remembers which `registry/repository` holds a blob (pulled from or pushed
/// to), one line each, so a push to another repository of that registry can mount it.
fn sources_path(store: &Store, digest: &str) -> std::path::PathBuf {
    store.root.join("cache/remote").join(digest.strip_prefix("sha256:").unwrap_or(digest))
}

pub fn remember(store: &Store, digest: &str, registry: &str, repository: &str) {
    let p = sources_path(store, digest);
    let line = format!("{registry}/{repository}");
    let known = std::fs::read_to_string(&p).unwrap_or_default();
    if known.lines().any(|l| l == line) {
        return;
    }
    if let Some(d) = p.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    // O_APPEND of one short line: concurrent writers do not interleave
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&p) {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// The repositories of `registry` known to hold `digest`.
pub fn known_sources(store: &Store, digest: &str, registry: &str) -> Vec<String> {
    let prefix = format!("{registry}/");
    std::fs::read_to_string(sources_path(store, digest))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .collect()
}
