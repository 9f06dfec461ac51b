//! Glue for `slipway pull`, `push`, `login` and `logout`: arguments -> registry calls.

use super::auth::{self, Credential};
use super::client::{Body, Client, Options};
use super::manifest::Platform;
use super::reference::{normalize_host, Reference};
use crate::store::Store;
use anyhow::{bail, Context as _, Result};
use std::io::Read as _;
use std::path::PathBuf;

/// How to reach a registry (every command that talks to one takes these).
#[derive(clap::Args, Debug, Clone)]
pub struct RemoteArgs {
    /// Verify the registry's certificate; `--tls-verify=false` also allows plain HTTP
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true",
          require_equals = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// Directory with the registry's CA (`*.crt`) and client certificate (`*.cert` + `*.key`);
    /// default /etc/docker/certs.d/HOST[:PORT]
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
}

impl RemoteArgs {
    pub fn options(&self) -> Options {
        Options { tls_verify: self.tls_verify, cert_dir: self.cert_dir.clone(), ..Options::default() }
    }
}

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// OS/ARCH[/VARIANT] to take from a multi-platform image (default: this machine's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image's name
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The image: [HOST[:PORT]/]name[:tag] or name@sha256:...
    #[arg(value_name = "REF")]
    pub reference: String,
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// Print only the pushed manifest's (or index's) digest.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the pushed manifest's digest to this file
    #[arg(long)]
    pub digestfile: Option<PathBuf>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The local image, or multi-platform index with every platform's image (default: REF itself)
    #[arg(value_name = "LOCAL")]
    pub first: String,
    /// Where to push it: [HOST[:PORT]/]repo[:tag]
    #[arg(value_name = "REF")]
    pub second: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The user name (required).
    #[arg(short, long, value_name = "USER")]
    pub username: Option<String>,
    /// The password (it shows in the process list: prefer --password-stdin).
    #[arg(short, long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// HOST[:PORT] (default docker.io)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// HOST[:PORT] (default docker.io)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// The platform `--platform` names, or this machine's.
pub fn platform_arg(p: Option<&str>) -> Result<(Platform, bool)> {
    match p {
        Some(p) => Ok((Platform::parse(p).map_err(anyhow::Error::msg).context("--platform")?, true)),
        None => Ok((Platform::host(), false)),
    }
}

pub fn pull(store: &Store, a: &PullArgs) -> Result<()> {
    let r = Reference::parse(&a.reference)?;
    let (platform, explicit) = platform_arg(a.platform.as_deref())?;
    let quiet = a.quiet;
    let log = |s: &str| {
        if !quiet {
            println!("{s}");
        }
    };
    let _use = store.use_lock()?;
    let p = super::pull::pull(store, &a.remote.options(), &r, &platform, explicit, &log)?;
    let _ = p;
    println!("{r}");
    Ok(())
}

pub fn push(store: &Store, a: &PushArgs) -> Result<()> {
    let (local, dest) = match &a.second {
        Some(d) => (a.first.clone(), d.clone()),
        None => (a.first.clone(), a.first.clone()),
    };
    let r = Reference::parse(&dest)?;
    // the local image: as given, or by the short name the store keeps a pulled image under
    let local = if store.find_image(&local)?.is_some() { local } else { Reference::parse(&local)?.store_name() };
    let quiet = a.quiet;
    let log = |s: &str| {
        if !quiet {
            println!("{s}");
        }
    };
    let _use = store.use_lock()?;
    let p = super::push::push(store, &a.remote.options(), &local, &r, false, &log)?;
    if quiet {
        println!("{}", p.digest);
    }
    if let Some(f) = &a.digestfile {
        std::fs::write(f, &p.digest).with_context(|| format!("write {}", f.display()))?;
    }
    Ok(())
}

pub fn login(a: &LoginArgs) -> Result<()> {
    let host = normalize_host(a.server.as_deref().unwrap_or("docker.io"));
    let Some(user) = a.username.clone().filter(|u| !u.is_empty()) else {
        bail!("login {host}: a user name is needed (-u USER)");
    };
    let password = match (&a.password, a.password_stdin) {
        (Some(_), true) => bail!("login {host}: --password and --password-stdin are mutually exclusive"),
        (Some(p), false) => p.clone(),
        (None, true) => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("read the password from stdin")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => bail!("login {host}: give the password with --password-stdin (or -p)"),
    };
    if password.is_empty() {
        bail!("login {host}: empty password");
    }
    let cred = Credential { username: user, secret: password, identity_token: false };
    let opts = a.remote.options();
    let client = Client::connect(&host, &opts, Some(cred.clone()))?;
    // the credentials are checked before they are stored: /v2/ with basic auth, or a token
    // for no scope from the bearer realm
    let op = format!("login {host}");
    let mut res = client.send("GET", "/v2/", &[], &[], &Body::Empty, &op)?;
    if res.status().as_u16() != 200 {
        return Err(client.fail(&op, res).into());
    }
    let _ = res.body_mut().read_to_vec();
    auth::store(&opts.auth_file, &host, &cred)?;
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(a: &LogoutArgs) -> Result<()> {
    let host = normalize_host(a.server.as_deref().unwrap_or("docker.io"));
    let path = auth::config_path();
    if auth::remove(&path, &host)? {
        println!("Removing login credentials for {host}");
    } else {
        println!("Not logged in to {host}");
    }
    Ok(())
}

/// `slipway build`'s registry flags.
#[derive(clap::Args, Debug, Clone)]
pub struct BuildArgs {
    /// Ask the registry for every base image, even those in the store
    #[arg(long)]
    pub pull: bool,
    /// Push every -t name to its registry after the build
    #[arg(long)]
    pub push: bool,
    /// The platform to build for, OS/ARCH[/VARIANT] (default: this machine's); several,
    /// comma-separated, build an image each under one OCI index. Bases are pulled for it, the
    /// TARGET* ARGs say it (FROM --platform wins for its stage). Repeatable, as in buildx;
    /// `local` is this machine's.
    #[arg(long, value_name = "OS/ARCH[/VARIANT][,...]")]
    pub platform: Vec<String>,
    /// Export the build cache: type=registry,ref=REF, type=local,dest=DIR, type=inline,
    /// type=s3,bucket=B,region=R[,name=N;N...][,endpoint_url=URL...] or REF, with
    /// BuildKit's mode=min|max, ignore-error, image-manifest, oci-mediatypes, compression...
    /// (`,cache-mounts=true`: with the content of the RUN cache mounts the build used)
    #[arg(long = "cache-to")]
    pub cache_to: Vec<String>,
    /// Use a cache another build exported: type=registry,ref=REF, type=local,src=DIR,
    /// type=s3,bucket=B,region=R[,name=N...] or REF
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// What the build itself needs of those flags: how to reach registries, the platform, the
/// caches to import. The rest (`--push`, `--cache-to`) is [`after_build`]'s.
pub fn build_inputs(a: &BuildArgs) -> Result<(super::base::Remote, Vec<Platform>, Vec<super::cache::Import>)> {
    let mut platform: Vec<Platform> = Vec::new();
    for p in a.platform.iter().flat_map(|p| p.split(',')) {
        // buildx's platformutil.parse: `local` (any case) is this machine's
        let p = match p.trim() {
            l if l.eq_ignore_ascii_case("local") => Platform::host(),
            p => Platform::parse(p).map_err(anyhow::Error::msg).context("--platform")?,
        };
        if platform.contains(&p) {
            bail!("--platform: {p} is given twice");
        }
        platform.push(p);
    }
    let mut from = Vec::new();
    for s in &a.cache_from {
        from.extend(super::cache::parse_import(s).map_err(anyhow::Error::msg)?);
    }
    // checked before the build runs, so a typo does not cost a build
    for s in &a.cache_to {
        super::cache::parse_export(s).map_err(anyhow::Error::msg)?;
    }
    Ok((super::base::Remote { options: a.remote.options(), always: a.pull }, platform, from))
}

/// After a build: `--cache-to` exports, then the push of `push` (the names of image outputs
/// that push: every -t name with `--push`).
/// Removes a store name when dropped.
struct Unname<'a>(&'a Store, &'a str);

impl Drop for Unname<'_> {
    fn drop(&mut self) {
        let _ = self.0.remove_ref(self.1);
    }
}

pub fn after_build(
    store: &Store,
    a: &BuildArgs,
    push: &[crate::output::PushTarget],
    keys: &[String],
    results: &[String],
    mounts: &[crate::store::mounts::Meta],
    quiet: bool,
) -> Result<()> {
    let log = |s: &str| {
        if !quiet {
            println!("{s}");
        }
    };
    let opts = a.remote.options();
    for s in &a.cache_to {
        for e in super::cache::parse_export(s).map_err(anyhow::Error::msg)? {
            if e.to == super::cache::Spec::Inline {
                continue; // written into the image config by the build
            }
            match super::cache::export(store, &opts, keys, results, mounts, &e, &log) {
                Ok((digest, n)) => log(&format!("exported cache ({n} steps) to {}: {digest}", e.to)),
                // ignore-error=true: BuildKit drops the error; it is said here
                Err(err) if e.ignore_error => {
                    eprintln!(
                        "WARNING: --cache-to {}: {:#} (ignore-error=true: the build goes on)",
                        super::cache::redact(s),
                        anyhow::Error::from(err)
                    )
                }
                Err(err) => {
                    return Err(anyhow::Error::from(err).context(format!("--cache-to {}", super::cache::redact(s))))
                }
            }
        }
    }
    for t in push {
        let n = &t.name;
        // store=false: the name was set only for this push, and goes whatever its outcome
        let _unname = t.unname.then(|| Unname(store, n));
        let r = Reference::parse(n).with_context(|| format!("--push {n}"))?;
        // registry.insecure=true: as --tls-verify=false, for this output's pushes only
        let insecure;
        let o = if t.insecure {
            insecure = super::client::Options { tls_verify: false, ..opts.clone() };
            &insecure
        } else {
            &opts
        };
        let p = super::push::push(store, o, n, &r, t.by_digest, &log).with_context(|| format!("--push {n}"))?;
        if t.by_digest {
            log(&format!("pushed {}", r.with_digest(&p.digest)));
        }
    }
    Ok(())
}
