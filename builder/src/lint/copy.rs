//! CopyIgnoredFile: COPY and ADD sources of the context that `.dockerignore` excludes.

use super::check::Checker;
use super::*;
use crate::instructions::{CopyArgs, CopySource};

/// Copy sources that are local paths of the context (not URLs nor heredocs).
pub(super) fn local_sources(a: &CopyArgs, add: bool) -> Vec<&str> {
    a.sources
        .iter()
        .filter_map(|s| match s {
            CopySource::Path(p) => Some(p.as_str()),
            CopySource::Heredoc { .. } => None,
        })
        .filter(|p| !add || !(p.starts_with("http://") || p.starts_with("https://") || p.starts_with("git@")))
        .collect()
}

/// CopyIgnoredFile (BuildKit's `validateCopySourcePath`): not checked when `.dockerignore`
/// has `!` patterns; the context root only when a pattern excludes everything.
pub(super) fn ignored_files(c: &mut Checker, cfg: &Config, srcs: &[String], add: bool, lines: (usize, usize)) {
    let Some(m) = c.input.ignore.filter(|m| !m.is_empty() && !m.has_exclusions()) else { return };
    for s in srcs {
        let s = crate::glob::clean(s);
        if (s == "." || s == "/") && !m.excludes_all() {
            continue;
        }
        if m.excluded(&s) {
            let cmd = if add { "Add" } else { "Copy" };
            c.warn(
                cfg,
                &COPY_IGNORED_FILE,
                format!("Attempting to {cmd} file {s:?} that is excluded by .dockerignore"),
                lines,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::tests::{lint_with, w};

    #[test]
    fn copy_ignored_file() {
        // testCopyIgnoredFiles
        let df = "\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n";
        assert_eq!(
            lint_with(df, Some("\nDockerfile\n"), &[]),
            vec![
                w("CopyIgnoredFile", 3, "Attempting to Copy file \"Dockerfile\" that is excluded by .dockerignore"),
                w("CopyIgnoredFile", 4, "Attempting to Add file \"Dockerfile\" that is excluded by .dockerignore"),
            ]
        );
        let skip = "# check=skip=CopyIgnoredFile\n\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n";
        assert_eq!(lint_with(skip, Some("\nDockerfile\n"), &[]), vec![]);
        let from = "\nFROM scratch AS base\nCOPY Dockerfile /foobar\nADD Dockerfile /windy\n\nFROM base\nCOPY --from=base /foobar /Dockerfile\n";
        assert_eq!(lint_with(from, Some("\nfoobar\n"), &[]), vec![]);
        // `!` patterns: not checked
        assert_eq!(lint_with("\nFROM scratch\nCOPY ./Dockerfile .\n", Some("\n**\n!Dockerfile\n"), &[]), vec![]);
        // testCopyIgnoredFileContextRoot
        assert_eq!(lint_with("\nFROM scratch\nCOPY . .\n", Some("\n.*\n"), &[]), vec![]);
        assert_eq!(
            lint_with("\nFROM scratch\nCOPY . .\n", Some("\n*\n"), &[]),
            vec![w("CopyIgnoredFile", 3, "Attempting to Copy file \".\" that is excluded by .dockerignore")]
        );
    }
}
