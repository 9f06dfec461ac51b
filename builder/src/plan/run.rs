//! RUN as a plan: the argv (shell form through SHELL, heredocs), the environment (ENV and ARG
//! values in the order they were set, as BuildKit's; then a default PATH), user, working dir, network,
//! security mode, and the mounts the container gets besides its rootfs (`--mount` values
//! expanded and typed with BuildKit's defaults: cache ids, secret and ssh targets, relative
//! targets joined onto WORKDIR). Bind mounts of the context put their files' fingerprints in
//! the key; nothing of a cache mount's or a secret's content ever is.

use super::copy::ResolveFrom;
use super::meta::with_shell;
use super::state::{At, State};
use super::{BindMount, BuildError, CacheMount, Mount, Origin, Run, SecretMount, Security, SshMount};
use crate::context::Context;
use crate::glob;
use crate::instructions::RunCmd;
use crate::rootfs;
use crate::runmount::{self, Kind, Sharing};
use crate::spec::Network;
use crate::store::image::DEFAULT_PATH;
use std::collections::BTreeMap;

/// RUN's flags as written.
pub(super) struct RunFlags<'a> {
    pub network: Option<&'a str>,
    pub security: Option<&'a str>,
    pub mounts: &'a [String],
    pub devices: &'a [crate::cdi::Request],
}

/// What the planner takes from the command line for RUN.
pub(super) struct RunOptions<'a> {
    /// `build --network`.
    pub network: Network,
    /// `BUILDKIT_CACHE_MOUNT_NS`: a prefix of every cache id.
    pub cache_ns: Option<&'a str>,
    /// A labs frontend was asked for: `RUN --device` runs.
    pub labs: bool,
    /// Where devices resolve; None for a plan that runs nothing (`build --check`: BuildKit's
    /// lint request resolves no device, the worker does).
    pub devices: Option<&'a crate::cdi::Devices>,
    /// The proxy variables of the build args ([`proxy_env`]), for every step's environment.
    pub proxy_env: &'a [String],
}

/// The proxy variables RUN steps get from `--build-arg` without an ARG, as BuildKit's
/// frontend (convert.go proxyEnvFromBuildArgs: a name matched case-insensitively, in sorted
/// order, the last match winning) and exec op (ops/exec.go proxyEnvList: each as upper and
/// lower case, empty values left out) give them. They are in neither the history nor the
/// cache key (ops/exec.go drops Meta.ProxyEnv from the key): a new proxy is no cache miss.
pub fn proxy_env(build_args: &[(String, String)]) -> Vec<String> {
    let mut args: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in build_args {
        args.insert(k, v);
    }
    let mut out = Vec::new();
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"] {
        let v = args.iter().rfind(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v);
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            out.push(format!("{name}={v}"));
            out.push(format!("{}={v}", name.to_ascii_lowercase()));
        }
    }
    out
}

/// A planned RUN: the step, its history text, and what its cache key takes besides the
/// instruction (mount definitions, network, security; context files a bind mount shows).
pub(super) struct Planned {
    pub run: Run,
    pub created_by: String,
    pub key_text: String,
    pub files: BTreeMap<String, String>,
}

pub(super) fn plan_run(
    at: &At,
    st: &State,
    cmd: &RunCmd,
    flags: &RunFlags,
    opts: &RunOptions,
    ctx: &mut Context,
    resolve_from: &ResolveFrom,
) -> Result<Planned, BuildError> {
    let default = opts.network;
    // `default` is what `build --network` says (BuildKit's sandbox unless it says otherwise)
    let network = match flags.network {
        None | Some("default") => default,
        Some(n) => Network::parse(n)
            .ok_or_else(|| at.err(format!("RUN --network={n}: unsupported (none, host or default)")))?,
    };
    // (the privileges host and insecure need are checked on the whole plan: Plan::entitlements)
    let security = match flags.security {
        None | Some("sandbox") => Security::Sandbox,
        Some("insecure") => Security::Insecure,
        Some(other) => return Err(at.err(format!("RUN --security={other}: unsupported (sandbox or insecure)"))),
    };
    // frontend/dockerfile/dockerfile2llb convert_norundevice.go: the mainline frontend parses
    // `--device` and refuses it; the labs one (dfrundevice) asks the worker for the devices
    let devices = if flags.devices.is_empty() {
        crate::cdi::Injected::default()
    } else if !opts.labs {
        return Err(at.err(
            "device feature is only supported in Dockerfile frontend 1.14.0-labs or later \
             (# syntax=docker/dockerfile:1-labs)",
        ));
    } else if let Some(d) = opts.devices {
        d.inject(flags.devices).map_err(|e| at.err(format!("RUN --device: {e}")))?
    } else {
        crate::cdi::Injected::default()
    };
    let mut mounts = Vec::new();
    let args = match cmd {
        RunCmd::Exec(v) => v.clone(),
        RunCmd::Shell(s) => with_shell(st, s),
        RunCmd::Heredoc(doc) if doc.content.starts_with("#!") => {
            let target = format!("/dev/pipes/{}", doc.name);
            mounts.push(Mount::Script { target: target.clone(), content: doc.content.clone() });
            vec![target]
        }
        RunCmd::Heredoc(doc) => with_shell(st, &doc.content),
    };
    let argv = st.arg_values();
    // BuildKit runs the step with its LLB state's environment: ENV and ARG values in the
    // order they were set, a later one replacing an earlier one of the same name
    let mut env: Vec<String> = st.env().iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env.extend(opts.proxy_env.iter().cloned());
    let mut files = BTreeMap::new();
    let mut ssh = 0usize;
    for raw in flags.mounts {
        let m = plan_mount(at, st, raw, opts, ctx, resolve_from, &mut files, &mut ssh)?;
        if let Mount::Ssh(s) = &m {
            // BuildKit's llb: the first ssh mount is SSH_AUTH_SOCK unless the env sets it
            if !env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")) {
                env.push(format!("SSH_AUTH_SOCK={}", s.target));
            }
        }
        mounts.push(m);
    }
    let mut targets: Vec<&str> = mounts.iter().map(|m| m.target()).filter(|t| !t.is_empty()).collect();
    targets.sort();
    if let Some(w) = targets.windows(2).find(|w| w[0] == w[1]) {
        return Err(at.err(format!("RUN --mount: two mounts at {}", w[0])));
    }
    // parents before what is mounted inside them
    mounts.sort_by_key(|m| m.target().split('/').filter(|c| !c.is_empty()).count());
    let prefix = if argv.is_empty() {
        String::new()
    } else {
        format!("|{} {} ", argv.len(), argv.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "))
    };
    let created_by = format!("RUN {prefix}{} # buildkit", args.join(" "));
    let cwd =
        if st.config.config.working_dir.is_empty() { "/".to_string() } else { st.config.config.working_dir.clone() };
    let mut key_text = String::new();
    // BuildKit's exec op carries its network mode; the sandbox (its default) adds nothing, so
    // steps cached before the sandbox network existed are found again
    if network != Network::Sandbox {
        key_text.push_str(&format!(" network={}", network.name()));
    }
    if security == Security::Insecure {
        key_text.push_str(" security=insecure");
    }
    for m in &mounts {
        if !matches!(m, Mount::Script { .. }) {
            key_text.push_str(&format!(" mount=[{}]", m.key()));
        }
    }
    // BuildKit's exec op carries the devices' names as its entitlement check resolved them; a
    // spec's edits are not in the key (a changed spec file is no cache miss, as there)
    for d in &devices.devices {
        key_text.push_str(&format!(" device=[{d}]"));
    }
    let user = st.config.config.user.clone();
    let run = Run { args, env, user, cwd, network, security, mounts, platform: None, devices: Box::new(devices) };
    Ok(Planned { run, created_by, key_text, files })
}

/// A relative path inside a filesystem, cleaned; refused when it leaves it.
fn inside(at: &At, what: &str, p: &str) -> Result<String, BuildError> {
    let c = glob::clean(p.trim_start_matches('/'));
    if rootfs::escapes(&c) {
        return Err(at.err(format!("RUN --mount: {what} {p:?} is outside of it")));
    }
    Ok(if c == "." { String::new() } else { c })
}

#[allow(clippy::too_many_arguments)]
fn plan_mount(
    at: &At,
    st: &State,
    raw: &str,
    opts: &RunOptions,
    ctx: &mut Context,
    resolve_from: &ResolveFrom,
    files: &mut BTreeMap<String, String>,
    ssh: &mut usize,
) -> Result<Mount, BuildError> {
    let env = st.env();
    let mut fields = Vec::new();
    for f in runmount::csv_fields(raw).map_err(|e| at.err(format!("RUN --mount={raw}: {e}")))? {
        fields.push(match f.split_once('=') {
            Some((k, v)) => format!("{k}={}", at.expand(v, &env)?),
            None => f,
        });
    }
    let m = runmount::parse_fields(fields).map_err(|e| at.err(format!("RUN --mount={raw}: {e}")))?;
    let wd = if st.config.config.working_dir.is_empty() { "/" } else { st.config.config.working_dir.as_str() };
    let target_of = |t: &str| -> Result<String, BuildError> {
        let t = rootfs::join_container_path(wd, t);
        if t == "/" {
            return Err(at.err(format!("RUN --mount={raw}: invalid mount target \"/\"")));
        }
        Ok(t)
    };
    let from = match &m.from {
        Some(f) => Some(resolve_from(f)?.0),
        None => None,
    };
    Ok(match m.kind {
        Kind::Cache => {
            let written = m.target.clone().unwrap_or_default();
            let id = m.id.clone().filter(|i| !i.is_empty()).unwrap_or_else(|| glob::clean(&written));
            let id = match opts.cache_ns {
                Some(ns) if !ns.is_empty() => format!("{ns}/{id}"),
                _ => id,
            };
            let source = inside(at, "source", m.source.as_deref().unwrap_or(""))?;
            Mount::Cache(CacheMount {
                target: target_of(&written)?,
                id,
                sharing: m.sharing.unwrap_or(Sharing::Shared),
                from,
                source,
                mode: m.mode,
                uid: m.uid,
                gid: m.gid,
                readonly: m.readonly,
            })
        }
        Kind::Bind => {
            let target = target_of(m.target.as_deref().unwrap_or(""))?;
            let from = from.unwrap_or(Origin::Context);
            let mut source = inside(at, "source", m.source.as_deref().unwrap_or(""))?;
            let written = source.clone();
            if from == Origin::Context {
                // a symlink named as the source is followed inside the context, as for COPY
                let found = ctx.resolve(&source)?;
                let Some(rel) = found.first().filter(|_| !glob::has_wildcards(&source)) else {
                    return Err(at.err(format!(
                        "RUN --mount={raw}: source {:?} not found in the build context",
                        m.source.as_deref().unwrap_or(".")
                    )));
                };
                source = rel.clone();
                for (k, v) in ctx.fingerprints(&source)? {
                    files.insert(format!("mount {target}: {k}"), v);
                }
            }
            Mount::Bind(BindMount { target, from, source, readonly: m.readonly, written })
        }
        Kind::Tmpfs => {
            Mount::Tmpfs { target: target_of(m.target.as_deref().unwrap_or(""))?, size: m.size, readonly: m.readonly }
        }
        Kind::Secret => {
            // convert_secrets.go: the id is `id`, else `source`, else the target's base name
            let base = |p: &str| p.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string();
            let id = m.id.clone().or(m.source.clone()).or_else(|| m.target.as_deref().map(base)).unwrap_or_default();
            if id.is_empty() {
                return Err(at.err(format!("RUN --mount={raw}: one of source, target required")));
            }
            let target = match (&m.target, &m.env) {
                (Some(t), _) => Some(target_of(t)?),
                (None, None) => Some(format!("/run/secrets/{}", base(&id))),
                (None, Some(_)) => None,
            };
            Mount::Secret(SecretMount {
                id,
                target,
                env: m.env.clone(),
                required: m.required,
                mode: m.mode.unwrap_or(0o400),
                uid: m.uid.unwrap_or(0),
                gid: m.gid.unwrap_or(0),
            })
        }
        Kind::Ssh => {
            let target = match &m.target {
                Some(t) => target_of(t)?,
                None => format!("/run/buildkit/ssh_agent.{ssh}"),
            };
            *ssh += 1;
            Mount::Ssh(SshMount {
                id: m.id.clone().filter(|i| !i.is_empty()).unwrap_or_else(|| "default".into()),
                target,
                required: m.required,
                mode: m.mode.unwrap_or(0o600),
                uid: m.uid.unwrap_or(0),
                gid: m.gid.unwrap_or(0),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::proxy_env;

    #[test]
    fn proxy_variables_from_build_args() {
        let a = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        // checked with docker 20.10's BuildKit: `--build-arg HTTP_PROXY=http://p:3128` gives a
        // step HTTP_PROXY and http_proxy
        assert_eq!(
            proxy_env(&a(&[("HTTP_PROXY", "http://p:3128")])),
            ["HTTP_PROXY=http://p:3128", "http_proxy=http://p:3128"]
        );
        // case-insensitive names, the last in sorted order winning; empty values left out; other
        // build args are not proxies
        assert_eq!(
            proxy_env(&a(&[("no_proxy", "b"), ("NO_PROXY", "a"), ("Ftp_Proxy", ""), ("X", "1"), ("all_proxy", "s")])),
            ["NO_PROXY=b", "no_proxy=b", "ALL_PROXY=s", "all_proxy=s"]
        );
        // a later --build-arg of the same name replaces an earlier one
        assert_eq!(proxy_env(&a(&[("https_proxy", "x"), ("https_proxy", "y")])), ["HTTPS_PROXY=y", "https_proxy=y"]);
        assert!(proxy_env(&[]).is_empty());
    }
}
