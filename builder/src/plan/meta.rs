//! The metadata instructions (ENV, ARG, LABEL, MAINTAINER, EXPOSE, VOLUME, USER, STOPSIGNAL,
//! SHELL, CMD, ENTRYPOINT, ONBUILD, HEALTHCHECK) as config changes, with docker's checks of
//! their values and BuildKit's history text. Pure functions of the stage state.

use super::state::{At, State};
use super::{BuildError, ConfigChange};
use crate::instructions::{CmdForm, Health, Instruction};
use crate::registry::Platform;
use crate::store::image::Healthcheck;

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

/// A STOPSIGNAL BuildKit takes (moby/sys/signal ParseSignal): any integer but 0 (Go's Atoi: a
/// sign allowed, no range check), else a name of its Linux SignalMap, `SIG` optional and any
/// case (RTMIN, RTMIN+1..RTMIN+15, RTMAX-14..RTMAX-1, RTMAX included).
fn valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<i64>() {
        return n != 0;
    }
    let u = s.to_ascii_uppercase();
    let n = u.strip_prefix("SIG").unwrap_or(&u);
    let offset = |rest: &str, sign: char| {
        rest.is_empty()
            || rest.strip_prefix(sign).and_then(|d| d.parse::<u8>().ok()).is_some_and(|d| (1..=15).contains(&d))
    };
    let rt = match (n.strip_prefix("RTMIN"), n.strip_prefix("RTMAX")) {
        (Some(rest), _) => offset(rest, '+'),
        (_, Some(rest)) => offset(rest, '-') && rest != "-15",
        _ => false,
    };
    SIGNALS.contains(&n) || rt
}

/// BuildKit's automatic platform ARGs: the build's target platform (`--platform`, else this
/// machine's) and this machine's. They are in the global scope: FROM lines see them, a stage
/// sees one only once it declares it with ARG (without a value, or with `--build-arg`).
pub fn platform_args(target: &Platform, build: &Platform) -> Vec<(String, Option<String>)> {
    let mut v = Vec::new();
    for (pre, p) in [("TARGET", target), ("BUILD", build)] {
        v.push((format!("{pre}PLATFORM"), Some(p.to_string())));
        v.push((format!("{pre}OS"), Some(p.os.clone())));
        v.push((format!("{pre}ARCH"), Some(p.architecture.clone())));
        v.push((format!("{pre}VARIANT"), Some(p.variant.clone().unwrap_or_default())));
    }
    v
}

/// The shell that shell forms run through (`SHELL`, default `/bin/sh -c`), with `cmd` added.
pub(super) fn with_shell(st: &State, cmd: &str) -> Vec<String> {
    let mut v = if st.config.config.shell.is_empty() {
        vec!["/bin/sh".into(), "-c".into()]
    } else {
        st.config.config.shell.clone()
    };
    v.push(cmd.to_string());
    v
}

fn argv(st: &State, f: &CmdForm) -> Vec<String> {
    match f {
        CmdForm::Exec(v) => v.clone(),
        CmdForm::Shell(s) => with_shell(st, s),
    }
}

fn pairs_text(kw: &str, pairs: &[(String, String)]) -> String {
    format!("{kw} {}", pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "))
}

/// A metadata instruction as a config change and its history text. ARG also declares its
/// variables in `st`; CMD notes in `st` that it was set. `None` for other instructions.
pub(super) fn plan_config(
    at: &At,
    st: &mut State,
    inst: &Instruction,
    global: &[(String, Option<String>)],
    build_arg: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(String, ConfigChange)>, BuildError> {
    let env = st.env();
    Ok(Some(match inst {
        Instruction::Env(pairs) => {
            let mut out = Vec::new();
            for (k, v) in pairs {
                // all values see the environment from before this instruction
                out.push((at.expand(k, &env)?, at.expand(v, &env)?));
            }
            (pairs_text("ENV", &out), ConfigChange::Env(out))
        }
        Instruction::Arg(list) => {
            let mut texts = Vec::new();
            for (k, d) in list {
                let d = match d {
                    Some(d) => Some(at.expand(d, &st.env())?),
                    None => None,
                };
                let g = global.iter().rev().find(|(n, _)| n == k).and_then(|(_, v)| v.clone());
                let v = build_arg(k).or(d).or(g);
                texts.push(match &v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                });
                // the SBOM scan ARGs are read by the frontend only, never an environment's
                // (BuildKit's nonEnvArgs): RUN does not see them, later words do not expand them
                let scan = k == super::SBOM_SCAN_STAGE || k == super::SBOM_SCAN_CONTEXT;
                match &v {
                    Some(v) if scan => st.scan_args.push((k.clone(), v.clone())),
                    Some(v) => st.set_var(k, v),
                    None => {}
                }
                st.args.retain(|(n, _)| n != k);
                st.args.push((k.clone(), v));
            }
            (format!("ARG {}", texts.join(" ")), ConfigChange::Nothing)
        }
        Instruction::Label(pairs) => {
            let mut out = Vec::new();
            for (k, v) in pairs {
                out.push((at.expand(k, &env)?, at.expand(v, &env)?));
            }
            (pairs_text("LABEL", &out), ConfigChange::Labels(out))
        }
        Instruction::Maintainer(m) => (format!("MAINTAINER {m}"), ConfigChange::Author(m.clone())),
        Instruction::Expose(ports) => {
            let mut out = Vec::new();
            for p in ports {
                let p = at.expand(p, &env)?;
                let (num, proto) = match p.split_once('/') {
                    Some((n, pr)) => (n.to_string(), pr.to_ascii_lowercase()),
                    None => (p.clone(), "tcp".to_string()),
                };
                let range: Vec<u32> = match num.split_once('-') {
                    Some((a, b)) => match (a.parse::<u32>(), b.parse::<u32>()) {
                        (Ok(a), Ok(b)) if a <= b && b < 65536 => (a..=b).collect(),
                        _ => return Err(at.err(format!("EXPOSE: invalid port range {p:?}"))),
                    },
                    None => vec![num
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n < 65536)
                        .ok_or_else(|| at.err(format!("EXPOSE: invalid port {p:?}")))?],
                };
                if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                    return Err(at.err(format!("EXPOSE: invalid proto {proto:?}")));
                }
                for n in range {
                    out.push(format!("{n}/{proto}"));
                }
            }
            (format!("EXPOSE {}", out.join(" ")), ConfigChange::ExposedPorts(out))
        }
        Instruction::Volume(vols) => {
            let mut out = Vec::new();
            for v in vols {
                let v = at.expand(v, &env)?;
                if v.trim().is_empty() {
                    return Err(at.err("VOLUME specified can not be an empty string"));
                }
                out.push(v);
            }
            let text = format!("VOLUME {}", format!("{out:?}").replace(", ", " ").replace('"', ""));
            (text, ConfigChange::Volumes(out))
        }
        Instruction::User(u) => {
            let u = at.expand(u, &env)?;
            (format!("USER {u}"), ConfigChange::User(u))
        }
        Instruction::StopSignal(s) => {
            let s = at.expand(s, &env)?;
            if !valid_signal(&s) {
                return Err(at.err(format!("STOPSIGNAL: invalid signal: {s}")));
            }
            (format!("STOPSIGNAL {s}"), ConfigChange::StopSignal(s))
        }
        Instruction::Shell(v) => (format!("SHELL {}", go_quote_list(v)), ConfigChange::Shell(v.clone())),
        Instruction::Cmd(f) => {
            let v = argv(st, f);
            st.cmd_set = true;
            (format!("CMD {}", go_quote_list(&v)), ConfigChange::Cmd(v))
        }
        Instruction::Entrypoint(f) => {
            let v = argv(st, f);
            let text = format!("ENTRYPOINT {}", go_quote_list(&v));
            (text, ConfigChange::Entrypoint { argv: v, keep_cmd: st.cmd_set })
        }
        Instruction::Onbuild(t) => (format!("ONBUILD {t}"), ConfigChange::Onbuild(t.clone())),
        Instruction::Healthcheck(h) => {
            let hc = healthcheck(at, h)?;
            (format!("HEALTHCHECK {}", go_quote_list(&hc.test)), ConfigChange::Healthcheck(hc))
        }
        _ => return Ok(None),
    }))
}

fn healthcheck(at: &At, h: &Health) -> Result<Healthcheck, BuildError> {
    let Health::Check { test, interval, timeout, start_period, start_interval, retries } = h else {
        return Ok(Healthcheck { test: vec!["NONE".into()], ..Default::default() });
    };
    let dur = |name: &str, v: &Option<String>| -> Result<i64, BuildError> {
        let Some(v) = v else { return Ok(0) };
        let d = parse_duration(v).map_err(|e| at.err(format!("HEALTHCHECK --{name}: {e}")))?;
        if d != 0 && d < 1_000_000 {
            return Err(at.err(format!("Interval \"{name}\" cannot be less than 1ms")));
        }
        if d < 0 {
            return Err(at.err(format!("Interval \"{name}\" cannot be negative")));
        }
        Ok(d)
    };
    let retries = match retries {
        Some(r) => r
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| at.err(format!("HEALTHCHECK --retries: invalid value {r:?}")))?,
        None => 0,
    };
    Ok(Healthcheck {
        test: test.clone(),
        interval: dur("interval", interval)?,
        timeout: dur("timeout", timeout)?,
        start_period: dur("start-period", start_period)?,
        start_interval: dur("start-interval", start_interval)?,
        retries,
    })
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
        // moby/sys/signal ParseSignal: Atoi, not a range; its Linux SignalMap's real-time names
        for ok in ["100", "-5", "+3", "SIGRTMIN", "rtmin+15", "SIGRTMAX-14", "RTMAX"] {
            assert!(valid_signal(ok), "{ok}");
        }
        for bad in ["RTMIN+16", "RTMIN+0", "RTMAX-15", "RTMAX+1", "RTMINX", "SIG", "-0"] {
            assert!(!valid_signal(bad), "{bad}");
        }
    }
}
