//! UndefinedArgInFrom, InvalidDefaultArgInFrom, RedundantTargetPlatform,
//! FromPlatformFlagConstDisallowed and InvalidBaseImagePlatform: what a FROM's image and
//! `--platform` words make of the global ARGs, and the platform of the image they name.

use super::check::{meta_scope, Checker, Stages};
use super::vars::suggest;
use super::*;
use crate::dockerfile::parser::Node;
use crate::instructions::{parse_node, Instruction};
use std::collections::BTreeSet;

/// The checks of FROM's words against the global ARGs: InvalidDefaultArgInFrom (defaults
/// only), UndefinedArgInFrom, RedundantTargetPlatform and FromPlatformFlagConstDisallowed.
pub(super) fn from_args(c: &mut Checker, stages: &Stages, meta: &[(&Node, Instruction)]) {
    let cfg = c.input.config;
    let (defaults, _) = meta_scope(c, meta, true);
    for (from, _) in stages {
        let Ok(Instruction::From { image, .. }) = parse_node(from) else { continue };
        let lookup = |k: &str| defaults.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let (name, _, _) = c.expand(&image, &lookup);
        if crate::registry::reference::Reference::parse(&name).is_err() && name != "scratch" {
            let msg = format!("Default value for ARG {image} results in empty or invalid base image name");
            c.warn(cfg, &INVALID_DEFAULT_ARG_IN_FROM, msg, (from.start_line, from.end_line));
        }
    }
    let (env, declared) = meta_scope(c, meta, false);
    let keys: BTreeSet<String> = declared.into_iter().chain(env.iter().map(|(k, _)| k.clone())).collect();
    let lookup = |k: &str| env.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    for (from, _) in stages {
        let Ok(Instruction::From { image, alias, platform }) = parse_node(from) else { continue };
        let ncfg = cfg.with_comments(&from.comments);
        let lines = (from.start_line, from.end_line);
        let undefined = |c: &mut Checker, unmatched: &BTreeSet<String>| {
            for a in unmatched.iter().filter(|a| !keys.contains(*a)) {
                let msg = match suggest(a, &keys) {
                    Some(s) => format!("FROM argument '{a}' is not declared (did you mean {s}?)"),
                    None => format!("FROM argument '{a}' is not declared"),
                };
                c.warn(&ncfg, &UNDEFINED_ARG_IN_FROM, msg, lines);
            }
        };
        let (_, _, unmatched) = c.expand(&image, &lookup);
        undefined(c, &unmatched);
        let Some(p) = platform else { continue };
        let (result, matched, unmatched) = c.expand(&p, &lookup);
        undefined(c, &unmatched);
        if matched.len() == 1
            && unmatched.is_empty()
            && matched.contains("TARGETPLATFORM")
            && lookup("TARGETPLATFORM").as_deref() == Some(result.as_str())
        {
            let msg =
                format!("Setting platform to predefined {p} in FROM is redundant as this is the default behavior");
            c.warn(&ncfg, &REDUNDANT_TARGET_PLATFORM, msg, lines);
        }
        if matched.is_empty() && unmatched.is_empty() {
            if let Ok(pl) = crate::registry::Platform::parse(&result) {
                let name = alias.unwrap_or_default();
                if !name.contains(&pl.os) && !name.contains(&pl.architecture) {
                    let msg = format!("FROM --platform flag should not use constant value {result:?}");
                    c.warn(&ncfg, &FROM_PLATFORM_FLAG_CONST_DISALLOWED, msg, lines);
                }
            }
        }
    }
}

/// InvalidBaseImagePlatform: the base images whose config says another platform than the
/// stage's (the caller compares them; `Input::platform_mismatches`), named as the FROM gives
/// the name once its ARGs are expanded (BuildKit's `stage.BaseName`).
pub(super) fn base_platform(c: &mut Checker, stages: &Stages) {
    for (i, name, expected, actual) in &c.input.platform_mismatches {
        let Some((from, _)) = stages.get(*i) else { continue };
        let cfg = c.input.config.with_comments(&from.comments);
        let msg =
            format!("Base image {name} was pulled with platform {actual:?}, expected {expected:?} for current build");
        c.warn(&cfg, &INVALID_BASE_IMAGE_PLATFORM, msg, (from.start_line, from.end_line));
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::tests::{check_plain, lint, lint_with, w, Found};

    #[test]
    fn rows_from_buildkits_check_tests() {
        // Each row: a Dockerfile and the warnings BuildKit's dockerfile_check_test.go expects
        // (the test function named in the comment).
        let rows: Vec<(&str, Vec<Found>)> = vec![
            // testUndeclaredArg
            ("\nARG base=scratch\nFROM $base\nCOPY Dockerfile .\n", vec![]),
            ("\nARG BUILDPLATFORM=linux/amd64\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n", vec![]),
            ("\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n", vec![]),
            ("\nARG DEBUG\nFROM scratch${DEBUG}\nCOPY Dockerfile .\n", vec![]),
            ("\nARG DEBUG\nFROM scra${DEBUG:-tch}\nCOPY Dockerfile .\n", vec![]),
            (
                "\nFROM --platform=$BULIDPLATFORM scratch\nCOPY Dockerfile .\n",
                vec![w("UndefinedArgInFrom", 2, "FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)")],
            ),
            (
                "\nARG tag=latest\nFROM busybox:${tag}${version} AS b\nCOPY Dockerfile .\n",
                vec![w("UndefinedArgInFrom", 3, "FROM argument 'version' is not declared")],
            ),
            // testRedundantTargetPlatform
            (
                "\nFROM --platform=$TARGETPLATFORM scratch\n",
                vec![w("RedundantTargetPlatform", 2, "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior")],
            ),
            (
                "\nFROM --platform=${TARGETPLATFORM} scratch\n",
                vec![w("RedundantTargetPlatform", 2, "Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant as this is the default behavior")],
            ),
            ("\n# check=skip=RedundantTargetPlatform\nFROM --platform=$TARGETPLATFORM scratch\n", vec![]),
            // testFromPlatformFlagConstDisallowed
            (
                "\nFROM --platform=linux/amd64 scratch\n",
                vec![w("FromPlatformFlagConstDisallowed", 2, "FROM --platform flag should not use constant value \"linux/amd64\"")],
            ),
            ("\nFROM --platform=linux/amd64 scratch AS my_amd64_stage\n", vec![]),
            ("\nFROM --platform=linux/amd64 scratch AS linux\n", vec![]),
        ];
        for (src, want) in rows {
            assert_eq!(lint(src), want, "{src}");
        }
    }

    #[test]
    fn invalid_default_arg_in_from() {
        // testInvalidDefaultArgInFrom: the defaults are checked, whatever --build-arg says
        let r = lint_with("\nARG VERSION\nFROM busybox:$VERSION\n", None, &[("VERSION", "latest")]);
        assert_eq!(
            r,
            vec![w(
                "InvalidDefaultArgInFrom",
                3,
                "Default value for ARG busybox:$VERSION results in empty or invalid base image name"
            )]
        );
        let r = lint_with("\nARG IMAGE\nFROM $IMAGE\n", None, &[("IMAGE", "busybox:latest")]);
        assert_eq!(
            r,
            vec![w(
                "InvalidDefaultArgInFrom",
                3,
                "Default value for ARG $IMAGE results in empty or invalid base image name"
            )]
        );
        let r = lint_with("\nARG SFX=\"box:\"\nFROM busy${SFX}\n", None, &[("SFX", "box:latest")]);
        assert_eq!(
            r,
            vec![w(
                "InvalidDefaultArgInFrom",
                3,
                "Default value for ARG busy${SFX} results in empty or invalid base image name"
            )]
        );
        assert_eq!(
            lint_with("\nARG VERSION=\"latest\"\nFROM busybox:${VERSION}\n", None, &[("VERSION", "latest")]),
            vec![]
        );
        assert_eq!(
            lint_with(
                "\nARG BUSYBOX_VARIANT=\"\"\nFROM busybox:stable${BUSYBOX_VARIANT}\n",
                None,
                &[("BUSYBOX_VARIANT", "-musl")]
            ),
            vec![]
        );
        assert_eq!(
            lint_with(
                "\n\tARG BUSYBOX_VARIANT\n\tFROM busybox:stable${BUSYBOX_VARIANT}\n\t",
                None,
                &[("BUSYBOX_VARIANT", "-musl")]
            ),
            vec![]
        );
    }

    #[test]
    fn invalid_base_image_platform() {
        // testBaseImagePlatformMismatch: the image's platform, then the one asked for
        let mismatch = vec![(0, "example.test/img".into(), "linux/amd64".into(), "linux/arm64".into())];
        let r = check_plain("\nFROM example.test/img\nENV foo=bar\n", &[0], mismatch);
        let got: Vec<Found> = r.warnings.into_iter().map(|w| (w.rule.name, w.start, w.detail)).collect();
        assert_eq!(
            got,
            vec![w(
                "InvalidBaseImagePlatform",
                2,
                "Base image example.test/img was pulled with platform \"linux/arm64\", expected \"linux/amd64\" for current build"
            )]
        );
    }
}
