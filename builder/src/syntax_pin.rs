//! What an older Dockerfile frontend pinned with `# syntax=docker/dockerfile:1.N[.P][-labs]`
//! does not know: the instruction flags added after it and the `# check=` directive.
//! BuildKit runs the pinned image, whose parser refuses a newer flag as unknown; slipway has one
//! built-in frontend (the newest), so it refuses the same flags here. Data and pure functions
//! only; build.rs applies them.

use crate::dockerfile::parser::Node;

/// A pinned frontend: `docker/dockerfile:1.N[.P]` (minor `N`), `-labs` for the labs image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    pub minor: u32,
    pub labs: bool,
}

/// The pin a tag of docker/dockerfile(-upstream) names: `1.N`, `1.N.P`, a release candidate
/// `1.N.P-rcK`, each with an optional `-labs`. `None` (the newest frontend) for `1`, `1-labs`,
/// `latest`, `labs`, upstream's `master(-labs)`, the old `1.N-experimental` images and any
/// other tag, and for a digest (the caller passes no tag then).
pub fn pin(tag: &str) -> Option<Pin> {
    let (rest, labs) = match tag.strip_suffix("-labs") {
        Some(r) => (r, true),
        None => (tag, false),
    };
    let rest = match rest.split_once("-rc") {
        Some((v, rc)) if !rc.is_empty() && rc.bytes().all(|b| b.is_ascii_digit()) => v,
        Some(_) => return None,
        None => rest,
    };
    let parts: Vec<&str> = rest.split('.').collect();
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match parts[..] {
        ["1", minor] | ["1", minor, _] if parts.iter().all(|p| number(p)) => {
            Some(Pin { minor: minor.parse().ok()?, labs })
        }
        _ => None,
    }
}

/// (instruction, flag, first mainline minor, first labs minor) of each flag with a documented
/// minimum version. Mainline from frontend/dockerfile/docs/reference.md at BuildKit HEAD; labs
/// from BuildKit's tags (`git ls-tree dockerfile/1.N.0-labs`: the files that switch the flag on
/// in the labs build); the labs image exists from 1.2, so a flag older than that is the same.
/// Flags without a version (`COPY --from`, `--chown`, `FROM --platform`) are in every frontend.
const FLAGS: [(&str, &str, u32, u32); 14] = [
    // reference.md:711-716
    ("run", "mount", 2, 2),
    // labs: commands_runnetwork.go (dfrunnetwork) at dockerfile/1.2.0-labs
    ("run", "network", 3, 2),
    // labs: commands_runsecurity.go (dfrunsecurity) at dockerfile/1.2.0-labs
    ("run", "security", 20, 2),
    // reference.md:713 says 1.14-labs only; commands_rundevice.go appears at dockerfile/1.14.0(-labs),
    // mainline parses it from then and refuses to run it (plan/run.rs)
    ("run", "device", 14, 14),
    // reference.md:1349-1357
    ("add", "keep-git-dir", 1, 1),
    // labs: convert_addchecksum.go at dockerfile/1.5.0-labs
    ("add", "checksum", 6, 5),
    ("add", "chmod", 2, 2),
    ("add", "link", 4, 4),
    ("add", "unpack", 17, 17),
    // labs: exclude_pattern_feature.go (dfexcludepatterns) at dockerfile/1.7.0-labs
    ("add", "exclude", 19, 7),
    // reference.md:1671-1678
    ("copy", "chmod", 2, 2),
    ("copy", "link", 4, 4),
    // labs: parse_parents.go (dfparents) at dockerfile/1.7.0-labs
    ("copy", "parents", 20, 7),
    ("copy", "exclude", 19, 7),
];

/// The first minor that reads `# check=` and runs the build checks (reference.md:125, "since
/// Dockerfile v1.8.0").
const CHECKS_SINCE: u32 = 8;

/// Whether the pinned frontend runs the build checks (`None`: the newest, which does).
pub fn runs_checks(pin: Option<Pin>) -> bool {
    pin.is_none_or(|p| p.minor >= CHECKS_SINCE)
}

/// BuildKit's error for the first flag of `node` that the pinned frontend does not know (or,
/// `ADD --checksum` in 1.5, knows and refuses):
/// bflag.go says `unknown flag: parents` before 1.11 and `unknown flag: --parents` from 1.11
/// (dockerfile/1.10.0 vs 1.11.0). No "did you mean" is added: no refused flag is near (a
/// Levenshtein distance below 3) to a flag the same instruction had before it.
pub fn refused_flag(pin: Pin, node: &Node) -> Option<String> {
    node.flags.iter().find_map(|a| {
        let name = a.split_once('=').map_or(a.as_str(), |(n, _)| n);
        let arg = name.strip_prefix("--")?;
        let (_, _, mainline, labs) = FLAGS.iter().find(|(i, f, _, _)| *i == node.cmd && *f == arg)?;
        let since = if pin.labs { *labs } else { *mainline };
        // mainline 1.5 parses `ADD --checksum` and refuses it when converting
        // (dockerfile/1.5.0: instructions/parse.go:289, dockerfile2llb/convert.go:1101)
        if node.cmd == "add" && arg == "checksum" && pin == (Pin { minor: 5, labs: false }) {
            return Some("instruction 'ADD --checksum=<CHECKSUM>' requires the labs channel".to_string());
        }
        (pin.minor < since).then(|| match pin.minor >= 11 {
            true => format!("unknown flag: {name}"),
            false => format!("unknown flag: {arg}"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins() {
        let p = |minor, labs| Some(Pin { minor, labs });
        for (tag, want) in [
            ("1.4", p(4, false)),
            ("1.4.3", p(4, false)),
            ("1.4-labs", p(4, true)),
            ("1.7.0-labs", p(7, true)),
            ("1.14.0-rc1-labs", p(14, true)),
            ("1.20.0-rc1", p(20, false)),
            // the newest frontend
            ("1", None),
            ("1-labs", None),
            ("latest", None),
            ("labs", None),
            ("master", None),
            ("master-labs", None),
            ("1.1-experimental", None),
            ("1.4.x", None),
            ("1.4.3.1", None),
            ("2.0", None),
            ("1.", None),
        ] {
            assert_eq!(pin(tag), want, "{tag}");
        }
    }

    fn node(cmd: &str, flags: &[&str]) -> Node {
        let df = crate::dockerfile::parser::parse(&format!("{} {} a /b\n", cmd, flags.join(" "))).unwrap();
        df.nodes.into_iter().next().unwrap()
    }

    #[test]
    fn refused() {
        let (mainline, labs) = (|m| Pin { minor: m, labs: false }, |m| Pin { minor: m, labs: true });
        for (pin, cmd, flags, want) in [
            // 1.4's bflag.go names the flag without dashes
            (mainline(4), "COPY", &["--parents"][..], Some("unknown flag: parents")),
            (mainline(4), "COPY", &["--link", "--exclude=x"][..], Some("unknown flag: exclude")),
            (mainline(4), "COPY", &["--link", "--chmod=755", "--from=x"][..], None),
            (mainline(3), "COPY", &["--link=false"][..], Some("unknown flag: link")),
            // from 1.11 with them
            (mainline(19), "COPY", &["--parents"][..], Some("unknown flag: --parents")),
            (mainline(19), "ADD", &["--exclude=*.md"][..], None),
            (mainline(16), "ADD", &["--unpack=true"][..], Some("unknown flag: --unpack")),
            (mainline(4), "ADD", &["--checksum=sha256:0"][..], Some("unknown flag: checksum")),
            (
                mainline(5),
                "ADD",
                &["--checksum=sha256:0"][..],
                Some("instruction 'ADD --checksum=<CHECKSUM>' requires the labs channel"),
            ),
            (labs(5), "ADD", &["--checksum=sha256:0"][..], None),
            (labs(7), "COPY", &["--parents", "--exclude=x"][..], None),
            (labs(6), "COPY", &["--parents"][..], Some("unknown flag: parents")),
            (mainline(19), "RUN", &["--security=insecure"][..], Some("unknown flag: --security")),
            (labs(4), "RUN", &["--security=insecure", "--network=none"][..], None),
            (mainline(2), "RUN", &["--network=none"][..], Some("unknown flag: network")),
            (labs(13), "RUN", &["--device=x"][..], Some("unknown flag: --device")),
            (mainline(1), "RUN", &["--mount=type=cache,target=/c"][..], Some("unknown flag: mount")),
            // the flag belongs to another instruction: that instruction's own parser refuses it
            (mainline(4), "ADD", &["--parents"][..], None),
        ] {
            assert_eq!(refused_flag(pin, &node(cmd, flags)).as_deref(), want, "{pin:?} {cmd} {flags:?}");
        }
        assert!(!runs_checks(Some(mainline(7))));
        assert!(runs_checks(Some(mainline(8))));
        assert!(runs_checks(None));
    }
}
