//! NoEmptyContinuation, MaintainerDeprecated, JSONArgsRecommended, MultipleInstructionsDisallowed,
//! LegacyKeyValueFormat and WorkdirRelativePath: instructions written in a form BuildKit
//! discourages.

use super::check::{keyword, Checker};
use super::*;
use crate::dockerfile::parser::{parse_words, Node};

/// NoEmptyContinuation: at the instruction's last line, as BuildKit's parser reports it.
pub(super) fn empty_continuation(c: &mut Checker, cfg: &Config, node: &Node) {
    if node.empty_continuation {
        c.warn(cfg, &NO_EMPTY_CONTINUATION, "Empty continuation line".into(), (node.end_line, node.end_line));
    }
}

/// MaintainerDeprecated.
pub(super) fn maintainer(c: &mut Checker, cfg: &Config, lines: (usize, usize)) {
    let msg = "Maintainer instruction is deprecated in favor of using label".to_string();
    c.warn(cfg, &MAINTAINER_DEPRECATED, msg, lines);
}

/// JSONArgsRecommended: CMD or ENTRYPOINT in shell form, where no SHELL was set (by the stage
/// or its base image).
pub(super) fn json_args(c: &mut Checker, cfg: &Config, name: &str, shell_set: bool, lines: (usize, usize)) {
    if !shell_set {
        let msg = format!("JSON arguments recommended for {name} to prevent unintended behavior related to OS signals");
        c.warn(cfg, &JSON_ARGS_RECOMMENDED, msg, lines);
    }
}

/// MultipleInstructionsDisallowed, at the earlier instruction (the one that goes unused).
pub(super) fn multiple(c: &mut Checker, cfg: &Config, name: &str, prev: (usize, usize)) {
    let msg = format!(
        "Multiple {name} instructions should not be used in the same stage because only the last one will be used"
    );
    c.warn(cfg, &MULTIPLE_INSTRUCTIONS_DISALLOWED, msg, prev);
}

/// ENV/LABEL written `KEY VALUE` (no `=` in the first word): BuildKit's `NoDelim`.
fn legacy_key_value(node: &Node, escape: char) -> bool {
    let rest = node.original.trim_start()[keyword(node).len()..].trim_start();
    parse_words(rest, escape).first().is_some_and(|w| !w.contains('='))
}

/// LegacyKeyValueFormat of ENV and LABEL.
pub(super) fn legacy_form(c: &mut Checker, cfg: &Config, node: &Node, lines: (usize, usize)) {
    if legacy_key_value(node, c.input.df.escape) {
        let name = keyword(node);
        let msg = format!("\"{name} key=value\" should be used instead of legacy \"{name} key value\" format");
        c.warn(cfg, &LEGACY_KEY_VALUE_FORMAT, msg, lines);
    }
}

/// WorkdirRelativePath: a relative WORKDIR before any WORKDIR of the stage (or of the stages
/// it is built on).
pub(super) fn workdir(c: &mut Checker, cfg: &Config, path: &str, workdir_set: bool, lines: (usize, usize)) {
    if !workdir_set && !path.starts_with('/') {
        let msg = format!("Relative workdir {path:?} can have unexpected results if the base image changes");
        c.warn(cfg, &WORKDIR_RELATIVE_PATH, msg, lines);
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::tests::{lint, w, Found};

    #[test]
    fn rows_from_buildkits_check_tests() {
        // Each row: a Dockerfile and the warnings BuildKit's dockerfile_check_test.go expects
        // (the test function named in the comment).
        let rows: Vec<(&str, Vec<Found>)> = vec![
            // testNoEmptyContinuation
            (
                "\nFROM scratch\n# warning: empty continuation line\nCOPY Dockerfile \\\n\n.\nCOPY Dockerfile \\\n.\n",
                vec![w("NoEmptyContinuation", 6, "Empty continuation line")],
            ),
            // testJSONArgsRecommended
            (
                "\nFROM scratch\nCMD mycommand\n",
                vec![w("JSONArgsRecommended", 3, "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals")],
            ),
            (
                "\nFROM scratch\nENTRYPOINT mycommand\n",
                vec![w(
                    "JSONArgsRecommended",
                    3,
                    "JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals",
                )],
            ),
            ("\nFROM scratch\nSHELL [\"/usr/bin/customshell\"]\nCMD mycommand\n", vec![]),
            ("\nFROM scratch AS base\nSHELL [\"/usr/bin/customshell\"]\n\nFROM base\nENTRYPOINT mycommand\n", vec![]),
            // testMaintainerDeprecated
            (
                "\nFROM scratch\nMAINTAINER me@example.org\n",
                vec![w("MaintainerDeprecated", 3, "Maintainer instruction is deprecated in favor of using label")],
            ),
            ("\nFROM scratch\n# check=skip=JSONArgsRecommended\nCMD mycommand\n", vec![]),
            ("\nFROM scratch\n# check=skip=MaintainerDeprecated\nMAINTAINER me@example.org\n", vec![]),
            // testWorkdirRelativePath
            (
                "\nFROM scratch\nWORKDIR app/\n",
                vec![w("WorkdirRelativePath", 3, "Relative workdir \"app/\" can have unexpected results if the base image changes")],
            ),
            ("\nFROM scratch AS a\nWORKDIR /app\n\nFROM a AS b\nWORKDIR subdir/\n", vec![]),
            ("\nFROM scratch\n# check=skip=WorkdirRelativePath\nWORKDIR app/\n", vec![]),
            // testMultipleInstructionsDisallowed
            (
                "\nFROM scratch\nENTRYPOINT [\"/myapp\"]\nENTRYPOINT [\"/myotherapp\"]\nCMD [\"/myapp\"]\nCMD [\"/myotherapp\"]\nHEALTHCHECK CMD [\"/myapp\"]\nHEALTHCHECK CMD [\"/myotherapp\"]\n",
                vec![
                    w("MultipleInstructionsDisallowed", 3, "Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used"),
                    w("MultipleInstructionsDisallowed", 5, "Multiple CMD instructions should not be used in the same stage because only the last one will be used"),
                    w("MultipleInstructionsDisallowed", 7, "Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used"),
                ],
            ),
            (
                "\nFROM scratch AS a\nENTRYPOINT [\"/myapp\"]\nCMD [\"/myapp\"]\nHEALTHCHECK CMD [\"/myapp\"]\n\nFROM a AS b\nENTRYPOINT [\"/myotherapp\"]\nCMD [\"/myotherapp\"]\nHEALTHCHECK CMD [\"/myotherapp\"]\n",
                vec![],
            ),
            // testLegacyKeyValueFormat
            (
                "\nFROM scratch\nENV testkey value\nLABEL key value\n",
                vec![
                    w("LegacyKeyValueFormat", 3, "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format"),
                    w("LegacyKeyValueFormat", 4, "\"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format"),
                ],
            ),
            ("\nFROM scratch\nENV testkey=value\nLABEL key=value\n", vec![]),
            (
                "\nFROM scratch\n# check=skip=LegacyKeyValueFormat\nENV testkey value\n# check=skip=LegacyKeyValueFormat\nLABEL key value\n",
                vec![],
            ),
        ];
        for (src, want) in rows {
            assert_eq!(lint(src), want, "{src}");
        }
    }
}
