//! Device access rules, typed from config.json to where they land: a v1 `devices.allow` /
//! `devices.deny` line (written by resources.rs) or the v2 eBPF program (`program.rs`). Also the
//! one home of runc's default devices: the rules every container gets, and the nodes
//! rootfs/devices.rs makes in its /dev.

mod program;

use std::fmt;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

pub use program::{attach, program, Insn};

use crate::error::{Error, Result};

/// The access bits, as BPF_DEVCG_ACC_* numbers them; the v1 letters are m, r and w.
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
pub const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `a`: every device; the rule resets the list.
    All,
    Block,
    Char,
    /// `p`: v1 takes no such rule and the eBPF program has no fifo type; refused by both.
    Fifo,
}

/// One rule, as the v1 controller takes it: "c 1:3 rwm", "b 8:* r", "a *:* rwm".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    /// None is `*`.
    pub major: Option<u64>,
    pub minor: Option<u64>,
    /// ACC_* bits.
    pub access: u8,
}

impl Rule {
    const fn allow(kind: Kind, major: Option<u64>, minor: Option<u64>, access: u8) -> Rule {
        Rule { allow: true, kind, major, minor, access }
    }

    /// One entry of `linux.resources.devices`, read as runc reads it: no type is `a`, `u` is
    /// `c`, a negative number is `*`, no access is `rwm`. Err is the reason: an access letter
    /// other than r, w and m.
    pub fn from_spec(d: &LinuxDeviceCgroup) -> std::result::Result<Rule, String> {
        let kind = match d.typ() {
            Some(LinuxDeviceType::B) => Kind::Block,
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Kind::Char,
            Some(LinuxDeviceType::P) => Kind::Fifo,
            Some(LinuxDeviceType::A) | None => Kind::All,
        };
        let num = |n: Option<i64>| n.filter(|n| *n >= 0).map(|n| n as u64);
        let mut rule = Rule { allow: d.allow(), kind, major: num(d.major()), minor: num(d.minor()), access: 0 };
        let letters = d.access().as_deref().filter(|a| !a.is_empty()).unwrap_or("rwm");
        for c in letters.chars() {
            rule.access |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => {
                    let given = format!("{}{letters}", Rule { access: 0, ..rule });
                    return Err(format!("device rule {given:?}: unknown access {c:?}"));
                }
            };
        }
        Ok(rule)
    }

    /// The rule that lets the container use one of its device nodes.
    pub fn for_node(block: bool, major: u64, minor: u64) -> Rule {
        Rule::allow(if block { Kind::Block } else { Kind::Char }, Some(major), Some(minor), ACC_ALL)
    }

    fn kind_letter(&self) -> char {
        match self.kind {
            Kind::All => 'a',
            Kind::Block => 'b',
            Kind::Char => 'c',
            Kind::Fifo => 'p',
        }
    }

    /// What the eBPF program cannot express: a fifo rule, or a number above i32::MAX (it would
    /// not compare right against the program's 32-bit immediates). Err is the reason.
    pub fn check_v2(&self) -> std::result::Result<(), String> {
        let why = if self.kind == Kind::Fifo {
            format!("type {:?} is not supported on cgroup v2", self.kind_letter().to_string())
        } else if [self.major, self.minor].into_iter().flatten().any(|n| n > i32::MAX as u64) {
            "bad number".to_string()
        } else {
            return Ok(());
        };
        Err(format!("device rule {:?}: {why}", self.to_string()))
    }
}

/// The v1 line: type, MAJOR:MINOR with `*` for any, the access letters.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |v: Option<u64>| v.map_or("*".to_string(), |v| v.to_string());
        let access: String = [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')]
            .iter()
            .filter(|(bit, _)| self.access & bit != 0)
            .map(|(_, c)| *c)
            .collect();
        write!(f, "{} {}:{} {access}", self.kind_letter(), n(self.major), n(self.minor))
    }
}

/// One of runc's default devices: a rule, and the node's path where runc makes one.
pub struct DefaultDevice {
    pub path: Option<&'static str>,
    pub rule: Rule,
}

const fn char_dev(path: Option<&'static str>, major: Option<u64>, minor: Option<u64>, access: u8) -> DefaultDevice {
    DefaultDevice { path, rule: Rule::allow(Kind::Char, major, minor, access) }
}

/// runc's default devices (libcontainer/specconv AllowedDevices), in its order: what every
/// container may use whatever its config says (mknod of anything, the standard nodes, the
/// console, ptys, tun), allowed after the config's own rules. Those with a path are also made
/// in the container's /dev unless the config names that path.
pub const DEFAULT_DEVICES: [DefaultDevice; 12] = [
    char_dev(None, None, None, ACC_MKNOD),
    DefaultDevice { path: None, rule: Rule::allow(Kind::Block, None, None, ACC_MKNOD) },
    char_dev(Some("/dev/null"), Some(1), Some(3), ACC_ALL),
    char_dev(Some("/dev/random"), Some(1), Some(8), ACC_ALL),
    char_dev(Some("/dev/full"), Some(1), Some(7), ACC_ALL),
    char_dev(Some("/dev/tty"), Some(5), Some(0), ACC_ALL),
    char_dev(Some("/dev/zero"), Some(1), Some(5), ACC_ALL),
    char_dev(Some("/dev/urandom"), Some(1), Some(9), ACC_ALL),
    // /dev/console
    char_dev(None, Some(5), Some(1), ACC_ALL),
    // /dev/pts/*
    char_dev(None, Some(136), None, ACC_ALL),
    // /dev/ptmx
    char_dev(None, Some(5), Some(2), ACC_ALL),
    // /dev/net/tun
    char_dev(None, Some(10), Some(200), ACC_ALL),
];

/// A rule and the place in config.json it stands for, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced {
    pub source: String,
    pub rule: Rule,
}

/// The container's device rules in the order they apply: `linux.resources.devices` as given,
/// then runc's defaults, then `nodes` (one per device node the container has). Empty when the
/// config has no `devices` list: then no device rule is set at all.
pub fn rules(res: &LinuxResources, nodes: &[Rule]) -> Result<Vec<Sourced>> {
    let Some(config) = res.devices() else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(config.len() + DEFAULT_DEVICES.len() + nodes.len());
    for (i, d) in config.iter().enumerate() {
        let source = format!("linux.resources.devices[{i}]");
        let rule = Rule::from_spec(d).map_err(|why| Error::msg(format!("{source}: {why}")))?;
        out.push(Sourced { source, rule });
    }
    let added = DEFAULT_DEVICES.iter().map(|d| &d.rule).chain(nodes);
    out.extend(added.map(|r| Sourced { source: "linux.resources.devices".into(), rule: *r }));
    Ok(out)
}

/// A rule from its v1 line ("c 1:3 rwm", "a"), for tables of test cases.
#[cfg(test)]
pub(crate) fn line(allow: bool, line: &str) -> Rule {
    let mut f = line.split_whitespace();
    let kind = match f.next() {
        Some("a") => Kind::All,
        Some("b") => Kind::Block,
        Some("c") => Kind::Char,
        Some("p") => Kind::Fifo,
        other => panic!("type {other:?}"),
    };
    let num = |s: &str| (s != "*").then(|| s.parse().unwrap());
    let (major, minor) = f.next().map_or((None, None), |mm| {
        let (a, b) = mm.split_once(':').unwrap();
        (num(a), num(b))
    });
    let access = f.next().unwrap_or("rwm").chars().fold(0, |acc, c| {
        acc | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => panic!("access {c:?}"),
        }
    });
    Rule { allow, kind, major, minor, access }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_rule(v: serde_json::Value) -> std::result::Result<Rule, String> {
        Rule::from_spec(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn config_rules_read_like_runc() {
        // The v1 line each config rule becomes: no type is `a`, `u` is `c`, negative numbers
        // and absent ones are `*`, no access (or "") is rwm, letters in any order.
        for (json, want) in [
            (serde_json::json!({"allow": false, "access": "rwm"}), "a *:* rwm"),
            (serde_json::json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}), "c 10:229 rw"),
            (serde_json::json!({"allow": true, "type": "u", "major": 4, "minor": -1}), "c 4:* rwm"),
            (serde_json::json!({"allow": true, "type": "b", "major": 8, "access": ""}), "b 8:* rwm"),
            (serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "mwr"}), "c 1:3 rwm"),
            (serde_json::json!({"allow": true, "type": "p", "major": 1, "minor": 2, "access": "r"}), "p 1:2 r"),
        ] {
            assert_eq!(spec_rule(json.clone()).unwrap().to_string(), want, "{json}");
        }
        let err = spec_rule(serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rx"}));
        assert_eq!(err.unwrap_err(), r#"device rule "c 1:3 rx": unknown access 'x'"#);
    }

    #[test]
    fn what_v2_cannot_express_is_refused() {
        // runc refuses fifo rules on v2; numbers must fit the program's 32-bit immediates.
        assert!(line(true, "p 1:2 r").check_v2().unwrap_err().contains(r#"type "p" is not supported on cgroup v2"#));
        let big = Rule::for_node(false, 1 << 31, 1);
        assert_eq!(big.check_v2().unwrap_err(), r#"device rule "c 2147483648:1 rwm": bad number"#);
        assert_eq!(Rule::for_node(true, i32::MAX as u64, 0).check_v2(), Ok(()));
    }

    #[test]
    fn defaults_are_runcs_allowed_devices() {
        // libcontainer/specconv AllowedDevices, in order, as the v1 lines runc writes.
        let lines: Vec<String> = DEFAULT_DEVICES.iter().map(|d| d.rule.to_string()).collect();
        assert_eq!(
            lines,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:8 rwm",
                "c 1:7 rwm",
                "c 5:0 rwm",
                "c 1:5 rwm",
                "c 1:9 rwm",
                "c 5:1 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
                "c 10:200 rwm"
            ]
        );
        for d in &DEFAULT_DEVICES {
            assert_eq!(line(true, &d.rule.to_string()), d.rule);
        }
    }

    #[test]
    fn config_rules_come_first_then_defaults_then_nodes() {
        let res: LinuxResources = serde_json::from_value(serde_json::json!({"devices": [
            {"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}
        ]}))
        .unwrap();
        let fuse = Rule::for_node(false, 10, 229);
        let got = rules(&res, &[fuse]).unwrap();
        assert_eq!(got.len(), 2 + DEFAULT_DEVICES.len() + 1);
        assert_eq!(
            (got[1].source.as_str(), got[1].rule.to_string()),
            ("linux.resources.devices[1]", "c 1:11 w".into())
        );
        assert_eq!(got[2].rule, DEFAULT_DEVICES[0].rule);
        assert_eq!(got.last().map(|s| s.rule), Some(fuse));
        // No devices list: no rules, not even the defaults.
        assert_eq!(rules(&LinuxResources::default(), &[fuse]).unwrap(), vec![]);
    }
}
