//! UndefinedVar and SecretsUsedInArgOrEnv: the variables an instruction expands, and the
//! names ARG and ENV give them. BuildKit checks these while dispatching.

use super::check::Checker;
use super::*;
use crate::dockerfile::shell::Env;
use std::collections::BTreeSet;

/// Levenshtein distance (BuildKit's `suggest` uses agext/levenshtein with unit costs).
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// BuildKit's `suggest.Search` (case-sensitive): the closest option under distance 3, none on
/// an exact match.
pub(super) fn suggest<'a>(val: &str, options: impl IntoIterator<Item = &'a String>) -> Option<String> {
    let mut best: Option<(usize, &String)> = None;
    for o in options {
        if o == val {
            return None;
        }
        let d = levenshtein(val, o);
        if d < best.map_or(3, |(b, _)| b) {
            best = Some((d, o));
        }
    }
    best.map(|(_, o)| o.clone())
}

/// Where an instruction's words are expanded, for UndefinedVar.
pub(super) struct Site<'a> {
    pub(super) cfg: &'a Config,
    pub(super) lines: (usize, usize),
    pub(super) env: &'a BTreeSet<String>,
}

impl Site<'_> {
    /// Expands `word`; warns of each variable neither set nor declared by an ARG.
    pub(super) fn undefined(&self, c: &mut Checker, declared: &BTreeSet<String>, word: &str) -> String {
        let vars = |k: &str| self.env.contains(k).then(String::new);
        let (s, _, unmatched) = c.expand(word, &vars);
        for v in unmatched {
            if declared.contains(&v) || v == "BUILDKIT_SBOM_SCAN_CONTEXT" || v == "BUILDKIT_SBOM_SCAN_STAGE" {
                continue;
            }
            let msg = match suggest(&v, self.env) {
                Some(s) => format!("Usage of undefined variable '${v}' (did you mean ${s}?)"),
                None => format!("Usage of undefined variable '${v}'"),
            };
            c.warn(self.cfg, &UNDEFINED_VAR, msg, self.lines);
        }
        s
    }
}

/// An environment with nothing set, for expanding a name alone.
pub(super) struct NoVars;
impl Env for NoVars {
    fn lookup(&self, _: &str) -> Option<String> {
        None
    }
}

/// The secret-looking names of SecretsUsedInArgOrEnv: a token of the deny list as the whole
/// name or its first or last `_` part, unless an allow-list token is (case-insensitive).
fn looks_secret(key: &str) -> bool {
    const DENY: [&str; 10] =
        ["apikey", "auth", "credential", "credentials", "key", "password", "pword", "passwd", "secret", "token"];
    const ALLOW: [&str; 3] = ["public", "file", "version"];
    let k = key.to_ascii_lowercase();
    let parts: Vec<&str> = k.split('_').collect();
    // (?:_|^)TOKEN(?:_|$): the token is one whole `_`-separated part
    let has = |list: &[&str]| parts.iter().any(|p| list.contains(p));
    has(&DENY) && !has(&ALLOW)
}

/// SecretsUsedInArgOrEnv of one ARG or ENV key.
pub(super) fn secret_name(c: &mut Checker, cfg: &Config, inst: &str, key: &str, lines: (usize, usize)) {
    if looks_secret(key) {
        let msg = format!("Do not use ARG or ENV instructions for sensitive data ({inst} {key:?})");
        c.warn(cfg, &SECRETS_USED_IN_ARG_OR_ENV, msg, lines);
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::tests::{lint, w, Found};
    use super::*;

    #[test]
    fn rows_from_buildkits_check_tests() {
        // Each row: a Dockerfile and the warnings BuildKit's dockerfile_check_test.go expects
        // (the test function named in the comment).
        let rows: Vec<(&str, Vec<Found>)> = vec![
            // testUnmatchedVars
            ("\nFROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n", vec![]),
            ("\nFROM alpine AS base\nARG foo=Dockerfile\n\nFROM base\nCOPY $foo .\n", vec![]),
            ("\nFROM alpine\nRUN echo $PATH\n", vec![]),
            (
                "\nFROM alpine\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n",
                vec![w("UndefinedVar", 3, "Usage of undefined variable '$foo'")],
            ),
            (
                "\nFROM alpine\nARG DIR_BINARIES=binaries/\nARG DIR_ASSETS=assets/\nARG DIR_CONFIG=config/\nCOPY $DIR_ASSET .\n",
                vec![w("UndefinedVar", 6, "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)")],
            ),
            (
                "\nFROM alpine\nENV PATH=$PAHT:/tmp/bin\n",
                vec![w("UndefinedVar", 3, "Usage of undefined variable '$PAHT' (did you mean $PATH?)")],
            ),
        ];
        for (src, want) in rows {
            assert_eq!(lint(src), want, "{src}");
        }
    }

    #[test]
    fn secrets_used_in_arg_or_env() {
        // testSecretsUsedInArgOrEnv
        let src = "# check=skip=InvalidDefinitionDescription\n\nFROM scratch\nARG SECRET_PASSPHRASE\nENV SUPER_Secret=foo\nENV password=bar secret=baz\nARG super_duper_secret_token=foo auth=bar\nENV apikey=bar sunflower=foo\nENV git_key=\nENV PUBLIC_KEY=\nARG public_token\nARG SECRET_PASSPHRASE_FILE\nENV password_file=bar secret_File=baz\nARG AUTH_MODULE_VERSION\n# check=skip=SecretsUsedInArgOrEnv // allow secret in environment\nENV password=bar\n# check=skip=SecretsUsedInArgOrEnv // allow secret in arg\nARG password\n# check=skip=all // is local to only this instruction\nENV alternate_password=bar\n# check=skip=all // is local to only this instruction\nARG alternate_password\n";
        let got: Vec<(usize, String)> = lint(src).into_iter().map(|(_, l, m)| (l, m)).collect();
        let d = |k: &str| format!("Do not use ARG or ENV instructions for sensitive data ({k})");
        assert_eq!(
            got,
            vec![
                (4, d("ARG \"SECRET_PASSPHRASE\"")),
                (5, d("ENV \"SUPER_Secret\"")),
                (6, d("ENV \"password\"")),
                (6, d("ENV \"secret\"")),
                (7, d("ARG \"auth\"")),
                (7, d("ARG \"super_duper_secret_token\"")),
                (8, d("ENV \"apikey\"")),
                (9, d("ENV \"git_key\"")),
            ]
        );
    }

    #[test]
    fn secrets_tokens() {
        for (k, yes) in
            [("GITHUB_TOKEN", true), ("api_key", true), ("KEYBOARD", false), ("PUBLIC_KEY", false), ("AUTH", true)]
        {
            assert_eq!(looks_secret(k), yes, "{k}");
        }
    }
}
