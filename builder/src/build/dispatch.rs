//! One function per instruction: `prepare` expands words and computes the step's cache inputs
//! and plan; `execute` applies a plan on a cache miss. Metadata instructions only change the
//! config; RUN goes through `runner.rs`; COPY/ADD are in `copy.rs`.

use super::{Action, BuildError, Builder, State};
use crate::cache::Inputs;
use crate::instructions::{CmdForm, Command, Health, Instruction, RunCmd};
use crate::layer::{self, overlay};
use crate::rootfs;
use crate::spec::{self, Network};
use crate::store::image::{Healthcheck, DEFAULT_PATH};
use std::fs;
use std::path::PathBuf;

/// A prepared RUN.
pub struct RunPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub cwd: String,
    pub network: Network,
    pub created_by: String,
    /// `RUN <<EOF` with a `#!` script: (name, content) mounted at /dev/pipes/name.
    pub script: Option<(String, String)>,
}

/// Go's `%q` of a string slice: `["a" "b"]`.
pub fn go_quote_list(v: &[String]) -> String {
    let q: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", q.join(" "))
}

fn go_quote(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => o.push_str(&format!("\\x{:02x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Parses a Go duration (`1m30s`, `500ms`) to nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    if s == "0" {
        return Ok(0);
    }
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut total = 0f64;
    if cs.is_empty() {
        return Err(bad());
    }
    while i < cs.len() {
        let start = i;
        while i < cs.len() && (cs[i].is_ascii_digit() || cs[i] == '.') {
            i += 1;
        }
        let num: f64 = cs[start..i].iter().collect::<String>().parse().map_err(|_| bad())?;
        let ustart = i;
        while i < cs.len() && !(cs[i].is_ascii_digit() || cs[i] == '.') {
            i += 1;
        }
        let unit: String = cs[ustart..i].iter().collect();
        let mult = match unit.as_str() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += num * mult;
    }
    Ok(total as i64)
}

const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL",
    "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1",
    "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

fn valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<u32>() {
        return n > 0 && n < 65;
    }
    let u = s.to_ascii_uppercase();
    let n = u.strip_prefix("SIG").unwrap_or(&u);
    SIGNALS.contains(&n) || n.starts_with("RTMIN") || n.starts_with("RTMAX")
}

/// BuildKit's automatic platform ARGs, set when declared without a value.
pub fn automatic_arg(name: &str) -> Option<String> {
    let arch = crate::store::image::go_arch();
    Some(match name {
        "TARGETPLATFORM" | "BUILDPLATFORM" => format!("linux/{arch}"),
        "TARGETOS" | "BUILDOS" => "linux".into(),
        "TARGETARCH" | "BUILDARCH" => arch.into(),
        "TARGETVARIANT" | "BUILDVARIANT" => String::new(),
        _ => return None,
    })
}

fn shell_of(st: &State) -> Vec<String> {
    if st.config.config.shell.is_empty() {
        vec!["/bin/sh".into(), "-c".into()]
    } else {
        st.config.config.shell.clone()
    }
}

fn with_shell(st: &State, f: &CmdForm) -> Vec<String> {
    match f {
        CmdForm::Exec(v) => v.clone(),
        CmdForm::Shell(s) => {
            let mut v = shell_of(st);
            v.push(s.clone());
            v
        }
    }
}

fn random_hex() -> String {
    let mut b = [0u8; 8];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    hex::encode(b)
}

impl<'a> Builder<'a> {
    fn meta(
        &self,
        st: &State,
        kw: &str,
        text: String,
        f: impl FnOnce(&mut crate::store::image::ImageConfig),
    ) -> (Inputs, Option<Action>) {
        let mut config = st.config.clone();
        f(&mut config);
        (
            Inputs { keyword: kw.into(), text: text.clone(), ..Default::default() },
            Some(Action::Meta { config: Box::new(config), created_by: text }),
        )
    }

    /// Expands words and computes the step's inputs and plan.
    pub(super) fn prepare(&mut self, st: &mut State, cmd: &Command) -> Result<(Inputs, Option<Action>), BuildError> {
        let line = cmd.line;
        let env = st.env();
        Ok(match &cmd.inst {
            Instruction::From { .. } => return Err(self.err(line, "FROM inside a stage")),
            Instruction::Env(pairs) => {
                let mut out = Vec::new();
                for (k, v) in pairs {
                    // all values see the environment from before this instruction
                    out.push((self.expand(line, k, &env)?, self.expand(line, v, &env)?));
                }
                let text = format!("ENV {}", out.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "));
                self.meta(st, "ENV", text, |c| {
                    for (k, v) in &out {
                        c.env_set(k, v);
                    }
                })
            }
            Instruction::Arg(list) => {
                let mut texts = Vec::new();
                for (k, d) in list {
                    let d = match d {
                        Some(d) => Some(self.expand(line, d, &st.env())?),
                        None => None,
                    };
                    let global = self.meta.iter().rev().find(|(n, _)| n == k).and_then(|(_, v)| v.clone());
                    let v = self.build_arg(k).or(d).or(global).or_else(|| automatic_arg(k));
                    texts.push(match &v {
                        Some(v) => format!("{k}={v}"),
                        None => k.clone(),
                    });
                    st.args.retain(|(n, _)| n != k);
                    st.args.push((k.clone(), v));
                }
                self.meta(st, "ARG", format!("ARG {}", texts.join(" ")), |_| {})
            }
            Instruction::Label(pairs) => {
                let mut out = Vec::new();
                for (k, v) in pairs {
                    out.push((self.expand(line, k, &env)?, self.expand(line, v, &env)?));
                }
                let text =
                    format!("LABEL {}", out.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "));
                self.meta(st, "LABEL", text, |c| {
                    for (k, v) in out {
                        c.config.labels.insert(k, v);
                    }
                })
            }
            Instruction::Maintainer(m) => {
                let m = m.clone();
                self.meta(st, "MAINTAINER", format!("MAINTAINER {m}"), |c| c.author = m)
            }
            Instruction::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    let p = self.expand(line, p, &env)?;
                    let (num, proto) = match p.split_once('/') {
                        Some((n, pr)) => (n.to_string(), pr.to_ascii_lowercase()),
                        None => (p.clone(), "tcp".to_string()),
                    };
                    let range: Vec<u32> = match num.split_once('-') {
                        Some((a, b)) => {
                            let (a, b) = (a.parse::<u32>(), b.parse::<u32>());
                            match (a, b) {
                                (Ok(a), Ok(b)) if a <= b && b < 65536 => (a..=b).collect(),
                                _ => return Err(self.err(line, format!("EXPOSE: invalid port range {p:?}"))),
                            }
                        }
                        None => vec![num
                            .parse::<u32>()
                            .ok()
                            .filter(|n| *n < 65536)
                            .ok_or_else(|| self.err(line, format!("EXPOSE: invalid port {p:?}")))?],
                    };
                    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                        return Err(self.err(line, format!("EXPOSE: invalid proto {proto:?}")));
                    }
                    for n in range {
                        out.push(format!("{n}/{proto}"));
                    }
                }
                let text = format!("EXPOSE {}", out.join(" "));
                self.meta(st, "EXPOSE", text, |c| {
                    for p in out {
                        c.config.exposed_ports.insert(p, Default::default());
                    }
                })
            }
            Instruction::Volume(vols) => {
                let mut out = Vec::new();
                for v in vols {
                    let v = self.expand(line, v, &env)?;
                    if v.trim().is_empty() {
                        return Err(self.err(line, "VOLUME specified can not be an empty string"));
                    }
                    out.push(v);
                }
                let text = format!("VOLUME {}", format!("{out:?}").replace(", ", " ").replace('"', ""));
                self.meta(st, "VOLUME", text, |c| {
                    for v in out {
                        c.config.volumes.insert(v, Default::default());
                    }
                })
            }
            Instruction::User(u) => {
                let u = self.expand(line, u, &env)?;
                self.meta(st, "USER", format!("USER {u}"), |c| c.config.user = u)
            }
            Instruction::StopSignal(s) => {
                let s = self.expand(line, s, &env)?;
                if !valid_signal(&s) {
                    return Err(self.err(line, format!("STOPSIGNAL: invalid signal: {s}")));
                }
                self.meta(st, "STOPSIGNAL", format!("STOPSIGNAL {s}"), |c| c.config.stop_signal = s)
            }
            Instruction::Shell(v) => {
                let v = v.clone();
                self.meta(st, "SHELL", format!("SHELL {}", go_quote_list(&v)), |c| c.config.shell = v)
            }
            Instruction::Cmd(f) => {
                let v = with_shell(st, f);
                st.cmd_set = true;
                self.meta(st, "CMD", format!("CMD {}", go_quote_list(&v)), |c| c.config.cmd = Some(v))
            }
            Instruction::Entrypoint(f) => {
                let v = with_shell(st, f);
                let keep_cmd = st.cmd_set;
                self.meta(st, "ENTRYPOINT", format!("ENTRYPOINT {}", go_quote_list(&v)), |c| {
                    c.config.entrypoint = Some(v);
                    if !keep_cmd {
                        c.config.cmd = None;
                    }
                })
            }
            Instruction::Onbuild(t) => {
                let t = t.clone();
                self.meta(st, "ONBUILD", format!("ONBUILD {t}"), |c| c.config.on_build.push(t))
            }
            Instruction::Healthcheck(h) => {
                let hc = match h {
                    Health::None => Healthcheck { test: vec!["NONE".into()], ..Default::default() },
                    Health::Check { test, interval, timeout, start_period, start_interval, retries } => {
                        let dur = |name: &str, v: &Option<String>| -> Result<i64, BuildError> {
                            let Some(v) = v else { return Ok(0) };
                            let d =
                                parse_duration(v).map_err(|e| self.err(line, format!("HEALTHCHECK --{name}: {e}")))?;
                            if d != 0 && d < 1_000_000 {
                                return Err(self.err(line, format!("Interval \"{name}\" cannot be less than 1ms")));
                            }
                            if d < 0 {
                                return Err(self.err(line, format!("Interval \"{name}\" cannot be negative")));
                            }
                            Ok(d)
                        };
                        let retries =
                            match retries {
                                Some(r) => r.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                                    self.err(line, format!("HEALTHCHECK --retries: invalid value {r:?}"))
                                })?,
                                None => 0,
                            };
                        Healthcheck {
                            test: test.clone(),
                            interval: dur("interval", interval)?,
                            timeout: dur("timeout", timeout)?,
                            start_period: dur("start-period", start_period)?,
                            start_interval: dur("start-interval", start_interval)?,
                            retries,
                        }
                    }
                };
                let text = format!("HEALTHCHECK {}", go_quote_list(&hc.test));
                self.meta(st, "HEALTHCHECK", text, |c| c.config.healthcheck = Some(hc))
            }
            Instruction::Workdir(p) => {
                let p = self.expand(line, p, &env)?;
                let path = rootfs::join_container_path(&st.config.config.working_dir, &p);
                let text = format!("WORKDIR {path}");
                (
                    Inputs {
                        keyword: "WORKDIR".into(),
                        text: format!("{text} user={}", st.config.config.user),
                        ..Default::default()
                    },
                    Some(Action::Workdir { path, created_by: text }),
                )
            }
            Instruction::Run { cmd: run, network } => {
                let plan = self.plan_run(st, cmd, run, network.as_deref())?;
                (
                    Inputs {
                        keyword: "RUN".into(),
                        text: format!(
                            "{} user={} cwd={} env={:?}",
                            plan.created_by, plan.user, plan.cwd, st.config.config.env
                        ),
                        args: st.arg_values(),
                        ..Default::default()
                    },
                    Some(Action::Run(plan)),
                )
            }
            Instruction::Copy(a) => self.prepare_copy(st, cmd, a, false)?,
            Instruction::Add(a) => self.prepare_copy(st, cmd, a, true)?,
        })
    }

    fn plan_run(&self, st: &State, cmd: &Command, run: &RunCmd, network: Option<&str>) -> Result<RunPlan, BuildError> {
        let net = match network.unwrap_or(match self.opts.network {
            Network::None => "none",
            Network::Host => "host",
        }) {
            "none" => Network::None,
            "host" => Network::Host,
            "default" => self.opts.network,
            other => return Err(self.err(cmd.line, format!("RUN --network={other}: unsupported (none or host)"))),
        };
        let mut script = None;
        let args = match run {
            RunCmd::Exec(v) => v.clone(),
            RunCmd::Shell(s) => with_shell(st, &CmdForm::Shell(s.clone())),
            RunCmd::Heredoc(doc) if doc.content.starts_with("#!") => {
                script = Some((doc.name.clone(), doc.content.clone()));
                vec![format!("/dev/pipes/{}", doc.name)]
            }
            RunCmd::Heredoc(doc) => with_shell(st, &CmdForm::Shell(doc.content.clone())),
        };
        let argv = st.arg_values();
        let mut env = st.config.config.env.clone();
        for (k, v) in &argv {
            if st.config.env_get(k).is_none() {
                env.push(format!("{k}={v}"));
            }
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        let prefix = if argv.is_empty() {
            String::new()
        } else {
            format!("|{} {} ", argv.len(), argv.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "))
        };
        let created_by = format!("RUN {prefix}{} # buildkit", args.join(" "));
        let cwd = if st.config.config.working_dir.is_empty() {
            "/".to_string()
        } else {
            st.config.config.working_dir.clone()
        };
        Ok(RunPlan { args, env, user: st.config.config.user.clone(), cwd, network: net, created_by, script })
    }

    /// Applies a plan on a cache miss.
    pub(super) fn execute(&mut self, st: &mut State, cmd: &Command, a: Action) -> Result<(), BuildError> {
        match a {
            Action::Meta { config, created_by } => {
                st.config = *config;
                self.history(st, created_by, true);
                Ok(())
            }
            Action::Run(plan) => self.exec_run(st, cmd, plan),
            Action::Copy(plan) => self.exec_copy(st, cmd, plan),
            Action::Workdir { path, created_by } => self.exec_workdir(st, cmd, path, created_by),
        }
    }

    pub(super) fn lowers(&self, st: &State) -> Result<Vec<PathBuf>, BuildError> {
        st.layers.iter().map(|l| layer::snapshot(self.store, l).map_err(BuildError::from)).collect()
    }

    /// Diffs the upper dir into a new layer on `st`.
    pub(super) fn add_layer(
        &mut self,
        st: &mut State,
        rootfs: &mut overlay::Rootfs,
        created_by: String,
    ) -> Result<(), BuildError> {
        rootfs.unmount()?;
        let plan = layer::plan_diff(&rootfs.upper)?;
        let l = layer::commit_layer(self.store, &plan, self.opts.epoch)?;
        st.config.rootfs.diff_ids.push(l.diff_id.clone());
        st.layers.push(l);
        self.history(st, created_by, false);
        Ok(())
    }

    fn exec_workdir(
        &mut self,
        st: &mut State,
        cmd: &Command,
        path: String,
        created_by: String,
    ) -> Result<(), BuildError> {
        st.config.config.working_dir = path.clone();
        if path == "/" {
            self.history(st, created_by, true);
            return Ok(());
        }
        let lowers = self.lowers(st)?;
        let mut rfs = overlay::mount_rootfs(self.store, &lowers, true)?;
        let target = rootfs::resolve_in_root(&rfs.merged, &path, true);
        if target.is_dir() {
            drop(rfs);
            self.history(st, created_by, true);
            return Ok(());
        }
        let owner = if st.config.config.user.is_empty() {
            None
        } else {
            let id = rootfs::resolve_user(&rfs.merged, &st.config.config.user)
                .map_err(|e| self.err(cmd.line, format!("WORKDIR: {e}")))?;
            Some((id.uid, id.gid))
        };
        rootfs::mkdir_all(&rfs.merged, &path, owner).map_err(|e| self.err(cmd.line, format!("WORKDIR {path}: {e}")))?;
        self.add_layer(st, &mut rfs, created_by)
    }

    fn exec_run(&mut self, st: &mut State, cmd: &Command, plan: RunPlan) -> Result<(), BuildError> {
        let lowers = self.lowers(st)?;
        let mut rfs = overlay::mount_rootfs(self.store, &lowers, true)?;
        let merged = rfs.merged.clone();
        let ident = if plan.user.is_empty() {
            rootfs::Ident { uid: 0, gid: 0, additional_gids: vec![] }
        } else {
            rootfs::resolve_user(&merged, &plan.user).map_err(|e| self.err(cmd.line, format!("RUN: {e}")))?
        };
        // mount points the runtime will create: removed again afterwards if still empty
        let stubs: Vec<PathBuf> = spec::mount_targets(plan.network)
            .into_iter()
            .map(|t| rootfs::resolve_in_root(&merged, t, false))
            .filter(|p| fs::symlink_metadata(p).is_err())
            .collect();
        let cwd_host = rootfs::resolve_in_root(&merged, &plan.cwd, true);
        if !cwd_host.exists() {
            rootfs::mkdir_all(&merged, &plan.cwd, None)
                .map_err(|e| self.err(cmd.line, format!("RUN: create working dir {}: {e}", plan.cwd)))?;
        }
        let bundle = self.store.tempdir("bundle")?;
        let id = format!("slipway-{}", random_hex());
        let p = spec::Process {
            args: plan.args.clone(),
            env: plan.env.clone(),
            cwd: plan.cwd.clone(),
            uid: ident.uid,
            gid: ident.gid,
            additional_gids: ident.additional_gids.clone(),
        };
        let mut config = spec::config(
            &merged.to_string_lossy(),
            &p,
            "buildkitsandbox",
            plan.network,
            Some(&crate::runner::cgroups_path(&id)),
        );
        if let Some((name, content)) = &plan.script {
            let f = bundle.path.join("script");
            fs::write(&f, content).map_err(|e| self.err(cmd.line, format!("RUN: write script: {e}")))?;
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&f, fs::Permissions::from_mode(0o755));
            if let Some(m) = config["mounts"].as_array_mut() {
                m.push(serde_json::json!({
                    "destination": format!("/dev/pipes/{name}"),
                    "type": "bind",
                    "source": f.to_string_lossy(),
                    "options": ["rbind", "ro"]
                }));
            }
        }
        let cfg_path = bundle.path.join("config.json");
        if self.opts.debug {
            eprintln!(
                "debug: RUN {id}: runtime {} bundle {}\ndebug: lower dirs {lowers:?}\ndebug: config.json {}",
                self.runtime.bin.display(),
                bundle.path.display(),
                serde_json::to_string_pretty(&config).unwrap_or_default()
            );
        }
        fs::write(&cfg_path, serde_json::to_vec_pretty(&config).unwrap_or_default())
            .map_err(|e| self.err(cmd.line, format!("RUN: write {}: {e}", cfg_path.display())))?;
        self.runtime
            .record(&bundle.path, &id)
            .map_err(|e| self.err(cmd.line, format!("RUN: write {}: {e}", bundle.path.display())))?;
        self.progress.run_start(&id["slipway-".len()..]);
        let outcome = self
            .runtime
            .run(&bundle.path, &id, self.opts.quiet)
            .map_err(|e| self.err(cmd.line, format!("RUN: {e}")))?;
        self.progress.run_end(&id["slipway-".len()..]);
        let mut stubs = stubs;
        stubs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for s in stubs {
            match fs::symlink_metadata(&s) {
                Ok(md) if md.is_dir() => {
                    let _ = fs::remove_dir(&s);
                }
                Ok(md) if md.is_file() && md.len() == 0 => {
                    let _ = fs::remove_file(&s);
                }
                _ => {}
            }
        }
        if outcome.code != 0 {
            if self.opts.quiet {
                eprint!("{}", String::from_utf8_lossy(&outcome.output));
            }
            let shown = plan.args.join(" ");
            return Err(self.err(
                cmd.line,
                format!("RUN: process \"{shown}\" did not complete successfully: exit code: {}", outcome.code),
            ));
        }
        self.add_layer(st, &mut rfs, plan.created_by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn quoting_and_signals() {
        assert_eq!(
            go_quote_list(&["/bin/sh".into(), "-c".into(), "echo \"hi\"".into()]),
            r#"["/bin/sh" "-c" "echo \"hi\""]"#
        );
        assert!(valid_signal("SIGKILL") && valid_signal("term") && valid_signal("9"));
        assert!(!valid_signal("SIGNOPE") && !valid_signal("0"));
    }
}
