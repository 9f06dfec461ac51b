//! InvalidDefinitionDescription (experimental): the comment right above a named stage or an
//! ARG, read by `--call=outline`/`targets` as its description, should start with the name.

use super::check::Checker;
use super::*;
use crate::dockerfile::parser::Node;

/// InvalidDefinitionDescription (experimental): a comment right above a named FROM or an ARG
/// should start with the name.
pub(super) fn definition_description(c: &mut Checker, cfg: &Config, node: &Node, inst: &str, keys: &[String]) {
    let (Some(last), Some(first)) = (node.comments.last(), keys.first()) else { return };
    let word = last.split(' ').next().unwrap_or("");
    if keys.iter().any(|k| k == word) {
        return;
    }
    let example = if keys.len() > 1 { "<arg_key>" } else { first.as_str() };
    let msg = format!("Comment for {inst} should follow the format: `# {example} <description>`");
    c.warn(cfg, &INVALID_DEFINITION_DESCRIPTION, msg, (node.start_line, node.end_line));
}

#[cfg(test)]
mod tests {
    use super::super::check::tests::{lint, w, Found};

    #[test]
    fn rows_from_buildkits_check_tests() {
        // Each row: a Dockerfile and the warnings BuildKit's dockerfile_check_test.go expects
        // (the test function named in the comment).
        let rows: Vec<(&str, Vec<Found>)> = vec![
            // testDefinitionDescription
            (
                "# check=skip=all;experimental=InvalidDefinitionDescription\n# foo this is the foo\nARG foo=bar\n\n# base this is the base image\nFROM scratch AS base\n\n# version this is the version number\nARG version=latest\n\n# baz this is the baz\nARG foo=baz bar=qux baz=quux\n#\nARG bit=bat\n\n# comment for something other than ARG or FROM\nCOPY Dockerfile .\n",
                vec![],
            ),
            (
                "# check=experimental=InvalidDefinitionDescription\n# bar this is the bar\nARG foo=bar\n# BasE this is the BasE image\nFROM scratch AS base\n# definitely a bad comment\nARG version=latest\n# definitely a bad comment\nARG foo=baz bar=qux baz=quux\n",
                vec![
                    w("InvalidDefinitionDescription", 3, "Comment for ARG should follow the format: `# foo <description>`"),
                    w("InvalidDefinitionDescription", 5, "Comment for FROM should follow the format: `# base <description>`"),
                    w("InvalidDefinitionDescription", 7, "Comment for ARG should follow the format: `# version <description>`"),
                    w("InvalidDefinitionDescription", 9, "Comment for ARG should follow the format: `# <arg_key> <description>`"),
                ],
            ),
        ];
        for (src, want) in rows {
            assert_eq!(lint(src), want, "{src}");
        }
    }
}
