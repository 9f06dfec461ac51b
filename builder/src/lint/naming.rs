//! StageNameCasing, FromAsCasing, ConsistentInstructionCasing, DuplicateStageName and
//! ReservedStageName: how stages and instructions are named. BuildKit checks these while
//! parsing, so every stage is checked.

use super::check::{alias, keyword, Checker, Stages};
use super::*;
use crate::dockerfile::parser::{Args, Node};

/// StageNameCasing and FromAsCasing of one `FROM IMAGE AS NAME` (BuildKit's
/// `isLowerCaseStageName` and `doesFromCaseMatchAsCase`).
pub(super) fn from_casing(c: &mut Checker, cfg: &Config, node: &Node) {
    let Args::List(a) = &node.args else { return };
    if a.len() != 3 {
        return;
    }
    let lines = (node.start_line, node.end_line);
    if a[2] != a[2].to_lowercase() {
        c.warn(cfg, &STAGE_NAME_CASING, format!("Stage name '{}' should be lowercase", a[2]), lines);
    }
    let from = keyword(node);
    let (lower, upper) = (from == from.to_lowercase(), from == from.to_uppercase());
    let mismatch = (lower && a[1] != a[1].to_lowercase()) || (upper && a[1] != a[1].to_uppercase());
    if (lower || upper) && mismatch {
        let msg = format!("'{}' and '{from}' keywords' casing do not match", a[1]);
        c.warn(cfg, &FROM_AS_CASING, msg, lines);
    }
}

/// DuplicateStageName and ReservedStageName (BuildKit's `validateStageNames`).
pub(super) fn stage_names(c: &mut Checker, stages: &Stages) {
    let cfg = c.input.config;
    let mut seen = BTreeSet::new();
    for (from, _) in stages {
        let Some(name) = alias(from) else { continue };
        let lines = (from.start_line, from.end_line);
        if name == "context" || name == "scratch" {
            c.warn(
                cfg,
                &RESERVED_STAGE_NAME,
                format!("Stage name should not use the same name as reserved stage {name:?}"),
                lines,
            );
        }
        if !seen.insert(name.clone()) {
            c.warn(
                cfg,
                &DUPLICATE_STAGE_NAME,
                format!("Duplicate stage name {name:?}, stage names should be unique"),
                lines,
            );
        }
    }
}

/// ConsistentInstructionCasing (BuildKit's `validateCommandCasing`): each keyword of the stages
/// (not the ARGs before the first FROM) all lower or all upper case, as most of them are.
pub(super) fn casing(c: &mut Checker, stages: &Stages) {
    let cfg = c.input.config;
    let words: Vec<(&str, (usize, usize))> = stages
        .iter()
        .flat_map(|(from, cmds)| std::iter::once(*from).chain(cmds.iter().map(|(n, _)| *n)))
        .map(|n| (keyword(n), (n.start_line, n.end_line)))
        .collect();
    let (mut lower, mut upper) = (0, 0);
    for (w, _) in &words {
        if *w == w.to_lowercase() {
            lower += 1;
        } else if *w == w.to_uppercase() {
            upper += 1;
        }
    }
    let majority_lower = lower > upper;
    for (w, lines) in words {
        let want = if majority_lower && w != w.to_lowercase() {
            "lowercase"
        } else if !majority_lower && w != w.to_uppercase() {
            "uppercase"
        } else {
            continue;
        };
        c.warn(
            cfg,
            &CONSISTENT_INSTRUCTION_CASING,
            format!("Command '{w}' should match the case of the command majority ({want})"),
            lines,
        );
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
            // testStageName
            (
                "\n# warning: stage name should be lowercase\n#\nFROM scratch AS BadStageName\n\n# warning: 'as' should match 'FROM' cmd casing.\n#\nFROM scratch as base2\n\nFROM scratch AS base3\n",
                vec![
                    w("StageNameCasing", 4, "Stage name 'BadStageName' should be lowercase"),
                    w("FromAsCasing", 8, "'as' and 'FROM' keywords' casing do not match"),
                ],
            ),
            (
                "\n# warning: 'AS' should match 'from' cmd casing.\n#\nfrom scratch AS base\n\nfrom scratch as base2\n",
                vec![w("FromAsCasing", 4, "'AS' and 'from' keywords' casing do not match")],
            ),
            // testConsistentInstructionCasing
            (
                "\n# warning: 'FROM' should be either lowercased or uppercased\n#\nFrom scratch as base\nFROM scratch AS base2\n",
                vec![w("ConsistentInstructionCasing", 4, "Command 'From' should match the case of the command majority (uppercase)")],
            ),
            (
                "\nFROM scratch\n# warning: 'copy' should match command majority's casing (uppercase)\ncopy Dockerfile /foo\nCOPY Dockerfile /bar\n",
                vec![w("ConsistentInstructionCasing", 4, "Command 'copy' should match the case of the command majority (uppercase)")],
            ),
            (
                "\n# warning: 'frOM' should be either lowercased or uppercased\n#\nfrOM scratch as base\nfrom scratch as base2\n",
                vec![w("ConsistentInstructionCasing", 4, "Command 'frOM' should match the case of the command majority (lowercase)")],
            ),
            (
                "\nfrom scratch\nCOPY Dockerfile /foo\ncopy Dockerfile /bar\n",
                vec![w("ConsistentInstructionCasing", 3, "Command 'COPY' should match the case of the command majority (lowercase)")],
            ),
            (
                "\nfrom scratch\nCOPY Dockerfile /foo\nCOPY Dockerfile /bar\nCOPY Dockerfile /baz\n",
                vec![w("ConsistentInstructionCasing", 2, "Command 'from' should match the case of the command majority (uppercase)")],
            ),
            ("\nfrom scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\n", vec![]),
            ("\nFROM alpine\nRUN <<'EOT'\nenv\nEOT\n", vec![]),
            // testReservedStageName
            (
                "\nFROM scratch AS scratch\nFROM scratch AS context\n",
                vec![
                    w("ReservedStageName", 2, "Stage name should not use the same name as reserved stage \"scratch\""),
                    w("ReservedStageName", 3, "Stage name should not use the same name as reserved stage \"context\""),
                ],
            ),
            ("\nFROM scratch\nFROM scratch AS a\n", vec![]),
            // testDuplicateStageName
            (
                "\nFROM scratch AS b\nFROM scratch AS b\n",
                vec![w("DuplicateStageName", 3, "Duplicate stage name \"b\", stage names should be unique")],
            ),
            ("\nFROM scratch AS b1\nFROM scratch AS b2\n", vec![]),
        ];
        for (src, want) in rows {
            assert_eq!(lint(src), want, "{src}");
        }
    }
}
