//! Build checks: BuildKit's Dockerfile linter (`frontend/dockerfile/linter`). The rules with
//! their names, messages and docs URLs, the `# check=` / `BUILDKIT_DOCKERFILE_CHECK`
//! configuration, and the warnings as buildx prints them. `rules` finds the warnings. A check
//! only reads: it never changes what a build does (only `error=true` stops one, before any
//! step runs, as BuildKit does).

pub mod check;
mod copy;
mod descriptions;
mod expose;
mod forms;
mod from_args;
mod naming;
mod vars;

use std::collections::BTreeSet;

/// One check, as BuildKit's `LinterRule`.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: &'static str,
    pub description: &'static str,
    /// The docs page (InvalidBaseImagePlatform has none in BuildKit).
    pub url: Option<&'static str>,
    /// Off unless `experimental=` names it (or `all`).
    pub experimental: bool,
}

macro_rules! rule {
    ($id:ident, $name:literal, $desc:literal, $slug:literal) => {
        rule!($id, $name, $desc, Some(concat!("https://docs.docker.com/go/dockerfile/rule/", $slug, "/")), false);
    };
    ($id:ident, $name:literal, $desc:literal, $url:expr, $exp:literal) => {
        pub const $id: Rule = Rule { name: $name, description: $desc, url: $url, experimental: $exp };
    };
}

rule!(STAGE_NAME_CASING, "StageNameCasing", "Stage names should be lowercase", "stage-name-casing");
rule!(FROM_AS_CASING, "FromAsCasing", "The 'as' keyword should match the case of the 'from' keyword", "from-as-casing");
rule!(
    NO_EMPTY_CONTINUATION,
    "NoEmptyContinuation",
    "Empty continuation lines will become errors in a future release",
    "no-empty-continuation"
);
rule!(
    CONSISTENT_INSTRUCTION_CASING,
    "ConsistentInstructionCasing",
    "All commands within the Dockerfile should use the same casing (either upper or lower)",
    "consistent-instruction-casing"
);
rule!(DUPLICATE_STAGE_NAME, "DuplicateStageName", "Stage names should be unique", "duplicate-stage-name");
rule!(
    RESERVED_STAGE_NAME,
    "ReservedStageName",
    "Reserved words should not be used as stage names",
    "reserved-stage-name"
);
rule!(
    JSON_ARGS_RECOMMENDED,
    "JSONArgsRecommended",
    "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals",
    "json-args-recommended"
);
rule!(
    MAINTAINER_DEPRECATED,
    "MaintainerDeprecated",
    "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
    "maintainer-deprecated"
);
rule!(UNDEFINED_ARG_IN_FROM, "UndefinedArgInFrom", "FROM command must use declared ARGs", "undefined-arg-in-from");
rule!(
    WORKDIR_RELATIVE_PATH,
    "WorkdirRelativePath",
    "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes",
    "workdir-relative-path"
);
rule!(UNDEFINED_VAR, "UndefinedVar", "Variables should be defined before their use", "undefined-var");
rule!(
    MULTIPLE_INSTRUCTIONS_DISALLOWED,
    "MultipleInstructionsDisallowed",
    "Multiple instructions of the same type should not be used in the same stage",
    "multiple-instructions-disallowed"
);
rule!(
    LEGACY_KEY_VALUE_FORMAT,
    "LegacyKeyValueFormat",
    "Legacy key/value format with whitespace separator should not be used",
    "legacy-key-value-format"
);
rule!(
    INVALID_BASE_IMAGE_PLATFORM,
    "InvalidBaseImagePlatform",
    "Base image platform does not match expected target platform",
    None,
    false
);
rule!(
    REDUNDANT_TARGET_PLATFORM,
    "RedundantTargetPlatform",
    "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
    "redundant-target-platform"
);
rule!(
    SECRETS_USED_IN_ARG_OR_ENV,
    "SecretsUsedInArgOrEnv",
    "Sensitive data should not be used in the ARG or ENV commands",
    "secrets-used-in-arg-or-env"
);
rule!(
    INVALID_DEFAULT_ARG_IN_FROM,
    "InvalidDefaultArgInFrom",
    "Default value for global ARG results in an empty or invalid base image name",
    "invalid-default-arg-in-from"
);
rule!(
    FROM_PLATFORM_FLAG_CONST_DISALLOWED,
    "FromPlatformFlagConstDisallowed",
    "FROM --platform flag should not use a constant value",
    "from-platform-flag-const-disallowed"
);
rule!(
    COPY_IGNORED_FILE,
    "CopyIgnoredFile",
    "Attempting to Copy file that is excluded by .dockerignore",
    "copy-ignored-file"
);
rule!(
    INVALID_DEFINITION_DESCRIPTION,
    "InvalidDefinitionDescription",
    "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.",
    Some("https://docs.docker.com/go/dockerfile/rule/invalid-definition-description/"),
    true
);
rule!(
    EXPOSE_PROTO_CASING,
    "ExposeProtoCasing",
    "Protocol in EXPOSE instruction should be lowercase",
    "expose-proto-casing"
);
rule!(
    EXPOSE_INVALID_FORMAT,
    "ExposeInvalidFormat",
    "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release",
    "expose-invalid-format"
);

/// Every rule, in BuildKit's `ruleset.go` order.
pub const RULES: [&Rule; 22] = [
    &STAGE_NAME_CASING,
    &FROM_AS_CASING,
    &NO_EMPTY_CONTINUATION,
    &CONSISTENT_INSTRUCTION_CASING,
    &DUPLICATE_STAGE_NAME,
    &RESERVED_STAGE_NAME,
    &JSON_ARGS_RECOMMENDED,
    &MAINTAINER_DEPRECATED,
    &UNDEFINED_ARG_IN_FROM,
    &WORKDIR_RELATIVE_PATH,
    &UNDEFINED_VAR,
    &MULTIPLE_INSTRUCTIONS_DISALLOWED,
    &LEGACY_KEY_VALUE_FORMAT,
    &INVALID_BASE_IMAGE_PLATFORM,
    &REDUNDANT_TARGET_PLATFORM,
    &SECRETS_USED_IN_ARG_OR_ENV,
    &INVALID_DEFAULT_ARG_IN_FROM,
    &FROM_PLATFORM_FLAG_CONST_DISALLOWED,
    &COPY_IGNORED_FILE,
    &INVALID_DEFINITION_DESCRIPTION,
    &EXPOSE_PROTO_CASING,
    &EXPOSE_INVALID_FORMAT,
];

/// The build arg that configures the checks instead of the `# check=` directive.
pub const BUILD_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// Which rules run and whether a warning fails the build: BuildKit's `linter.Config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub skip_all: bool,
    pub skip: BTreeSet<String>,
    pub experimental_all: bool,
    pub experimental: BTreeSet<String>,
    /// `error=true`: any warning fails the build.
    pub error: bool,
}

impl Config {
    /// Parses `skip=A,B|all;error=BOOL;experimental=A|all` as BuildKit's `ParseLintOptions`
    /// (at most three `;` parts; the last keeps any further `;`).
    pub fn parse(s: &str) -> Result<Config, String> {
        let s = s.trim();
        let mut c = Config::default();
        if s.is_empty() {
            return Ok(c);
        }
        let list = |v: &str| -> BTreeSet<String> { v.split(',').map(|r| r.trim().to_string()).collect() };
        for part in s.splitn(3, ';') {
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!("invalid check option {part:?}"));
            };
            match k.trim() {
                "skip" if v.trim() == "all" => c.skip_all = true,
                "skip" => c.skip = list(v.trim()),
                "experimental" if v.trim() == "all" => c.experimental_all = true,
                "experimental" => c.experimental = list(v.trim()),
                "error" => {
                    let t = v.trim();
                    c.error = crate::gobool::parse(t).ok_or_else(|| {
                        format!(
                            "failed to parse check option {part:?}: strconv.ParseBool: parsing {t:?}: invalid syntax"
                        )
                    })?;
                }
                k => return Err(format!("invalid check option {k:?}")),
            }
        }
        Ok(c)
    }

    /// The build's configuration: `BUILDKIT_DOCKERFILE_CHECK` when given (it replaces the
    /// directive whole, as in BuildKit's dockerui), else the `# check=` directive.
    pub fn for_build(directive: Option<&str>, build_args: &[(String, String)]) -> Result<Config, String> {
        if let Some((_, v)) = build_args.iter().rev().find(|(k, _)| k == BUILD_ARG) {
            return Config::parse(v).map_err(|e| format!("failed to parse build-arg:{BUILD_ARG}: {e}"));
        }
        Config::parse(directive.unwrap_or("")).map_err(|e| format!("failed to parse check options: {e}"))
    }

    /// This configuration with an instruction's own `# check=` comment merged in (it can only
    /// skip more, or enable more experimental rules), as `WithMergedConfigFromComments`: the
    /// first such comment counts, its value ends at the first space; a bad one is ignored.
    pub fn with_comments(&self, comments: &[String]) -> Config {
        for c in comments {
            let Some(value) = check_comment(c) else { continue };
            let value = value.split(' ').next().unwrap_or("");
            let Ok(o) = Config::parse(value) else {
                return self.clone();
            };
            let mut m = self.clone();
            m.skip_all |= o.skip_all;
            m.experimental_all |= o.experimental_all;
            m.skip.extend(o.skip);
            m.experimental.extend(o.experimental);
            return m;
        }
        self.clone()
    }

    /// Whether `rule` runs: an experimental rule only when enabled (`skip` does not touch
    /// it), any other unless skipped.
    pub fn enabled(&self, rule: &Rule) -> bool {
        if rule.experimental {
            self.experimental_all || self.experimental.contains(rule.name)
        } else {
            !(self.skip_all || self.skip.contains(rule.name))
        }
    }
}

/// The value of a comment that reads as a `check` directive (`check = VALUE`, key in any case).
fn check_comment(comment: &str) -> Option<&str> {
    let rest = comment.trim_start();
    let (key, after) = rest.split_at(rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len()));
    if !key.eq_ignore_ascii_case("check") {
        return None;
    }
    let value = after.trim_start().strip_prefix('=')?.trim();
    (!value.is_empty()).then_some(value)
}

/// One warning: a rule, its message, and the instruction's lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub rule: &'static Rule,
    pub detail: String,
    pub start: usize,
    pub end: usize,
}

impl Warning {
    /// BuildKit's `LintFormatShort`: `RULE: MESSAGE (line N)`.
    pub fn short(&self) -> String {
        if self.start > 0 {
            format!("{}: {} (line {})", self.rule.name, self.detail, self.start)
        } else {
            format!("{}: {}", self.rule.name, self.detail)
        }
    }

    /// How buildx prints it in `--call=check` (`lint.Warning.PrintTo`): the rule and its URL,
    /// the message, and the Dockerfile's lines around it.
    pub fn expanded(&self, file: &str, src: &str) -> String {
        let mut out = format!("WARNING: {}", self.rule.name);
        if let Some(u) = self.rule.url {
            out.push_str(&format!(" - {u}"));
        }
        out.push_str(&format!("\n{}\n", self.detail));
        out.push_str(&crate::build::dockerfile_excerpt(file, src, self.start, self.end));
        out
    }

    /// buildx's `buildx.build.warnings` entry in `--metadata-file` (BuildKit's
    /// `client.VertexWarning`; Go writes its byte slices in base64).
    pub fn metadata(&self, file: &str, src: &str) -> serde_json::Value {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        let mut w = serde_json::json!({
            "level": 1,
            "short": b64(&self.short()),
            "detail": [b64(self.rule.description)],
            "sourceInfo": {"filename": file, "data": b64(src), "language": "Dockerfile"},
            "range": [{"start": {"line": self.start}, "end": {"line": self.end}}],
        });
        if let Some(u) = self.rule.url {
            w["url"] = serde_json::Value::from(u);
        }
        w
    }
}

/// BuildKit's `lint.LintResults` (subrequests/lint), for `--call=check,format=json`.
#[derive(serde::Serialize)]
struct JsonResults<'a> {
    warnings: Option<Vec<JsonWarning<'a>>>,
    sources: Option<Vec<JsonSource<'a>>>,
    #[serde(rename = "buildError", skip_serializing_if = "Option::is_none")]
    build_error: Option<JsonBuildError<'a>>,
}

/// BuildKit's `lint.BuildError`.
#[derive(serde::Serialize)]
struct JsonBuildError<'a> {
    message: &'a str,
    location: JsonLocation,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonWarning<'a> {
    rule_name: &'a str,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    detail: &'a str,
    location: JsonLocation,
}

#[derive(serde::Serialize)]
struct JsonLocation {
    ranges: Vec<JsonRange>,
}

#[derive(serde::Serialize)]
struct JsonRange {
    start: JsonLine,
    end: JsonLine,
}

#[derive(serde::Serialize)]
struct JsonLine {
    line: usize,
}

#[derive(serde::Serialize)]
struct JsonSource<'a> {
    filename: &'a str,
    language: &'a str,
    data: String,
}

/// The build's checks: what they found and whether that fails the build.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub warnings: Vec<Warning>,
    pub error: bool,
}

impl Report {
    /// The warnings by line, as buildx's `LintResults.PrintTo` sorts them (stable: the order
    /// found within a line).
    fn by_line(&self) -> Vec<&Warning> {
        let mut w: Vec<&Warning> = self.warnings.iter().collect();
        w.sort_by_key(|w| w.start);
        w
    }

    /// `error=true` with warnings: BuildKit's `lint violation found for rules: A, B` (rules in
    /// the order first found; BuildKit's order is a Go map's).
    pub fn failure(&self) -> Option<String> {
        if !self.error || self.warnings.is_empty() {
            return None;
        }
        let mut names: Vec<&str> = Vec::new();
        for w in &self.warnings {
            if !names.contains(&w.rule.name) {
                names.push(w.rule.name);
            }
        }
        Some(format!("lint violation found for rules: {}", names.join(", ")))
    }

    /// The lines the build log shows while the Dockerfile is read, as BuildKit's progress
    /// prints a vertex's warnings (`#1 WARN: RULE: MESSAGE (line N)`).
    pub fn log_lines(&self) -> Vec<String> {
        self.warnings.iter().map(|w| format!("WARN: {}", w.short())).collect()
    }

    /// The count at the end of the build log, as buildx's `printWarnings` when its progress
    /// closes (after a failed build too): each warning's short form; with `expand` (buildx's
    /// `--debug`, slipway's `--debug`) also its description, URL and the Dockerfile's lines.
    /// Empty without warnings.
    pub fn summary(&self, file: &str, src: &str, expand: bool) -> String {
        if self.warnings.is_empty() {
            return String::new();
        }
        let n = self.warnings.len();
        let mut out = if n == 1 { "\n 1 warning found".to_string() } else { format!("\n {n} warnings found") };
        if !expand {
            out.push_str(" (use --debug to expand)");
        }
        out.push_str(":\n");
        for w in &self.warnings {
            out.push_str(&format!(" - {}\n", w.short()));
            if !expand {
                continue;
            }
            out.push_str(&format!("{}\n", w.rule.description));
            if let Some(u) = w.rule.url {
                out.push_str(&format!("More info: {u}\n"));
            }
            out.push_str(&crate::build::dockerfile_excerpt(file, src, w.start, w.end));
            out.push('\n');
        }
        out
    }

    /// `build --call=check,format=json`: BuildKit's `LintResults` as buildx prints it (Go's
    /// indented JSON in its field order, the warnings in the order found; `null` lists when
    /// there is nothing, a source index of 0 omitted).
    pub fn check_json(&self, file: &str, src: &str) -> String {
        self.check_json_with_error(file, src, None)
    }

    /// [`Report::check_json`] of a Dockerfile that failed: BuildKit's `buildError` (message and
    /// line) next to the warnings found before it.
    pub fn check_json_with_error(&self, file: &str, src: &str, error: Option<(usize, &str)>) -> String {
        use base64::Engine;
        let warnings: Vec<JsonWarning> = self
            .warnings
            .iter()
            .map(|w| JsonWarning {
                rule_name: w.rule.name,
                description: w.rule.description,
                url: w.rule.url,
                detail: &w.detail,
                location: JsonLocation {
                    ranges: vec![JsonRange { start: JsonLine { line: w.start }, end: JsonLine { line: w.end } }],
                },
            })
            .collect();
        let build_error = error.map(|(line, message)| JsonBuildError {
            message,
            location: JsonLocation { ranges: vec![JsonRange { start: JsonLine { line }, end: JsonLine { line } }] },
        });
        let results = if warnings.is_empty() && build_error.is_none() {
            JsonResults { warnings: None, sources: None, build_error: None }
        } else {
            let data = base64::engine::general_purpose::STANDARD.encode(src.as_bytes());
            JsonResults {
                warnings: (!warnings.is_empty()).then_some(warnings),
                sources: Some(vec![JsonSource { filename: file, language: "Dockerfile", data }]),
                build_error,
            }
        };
        let s = serde_json::to_string_pretty(&results).unwrap_or_default();
        s.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026") + "\n"
    }

    /// `build --check` output, as buildx's `--call=check`: the count, then each warning.
    pub fn check_output(&self, file: &str, src: &str) -> String {
        match self.warnings.len() {
            0 => "Check complete, no warnings found.\n".to_string(),
            n => {
                let mut out = if n == 1 {
                    "Check complete, 1 warning has been found!\n".to_string()
                } else {
                    format!("Check complete, {n} warnings have been found!\n")
                };
                for w in self.by_line() {
                    out.push('\n');
                    out.push_str(&w.expanded(file, src));
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_as_buildkits() {
        // linter.ParseLintOptions
        let c = Config::parse("skip=A, B;error=true;experimental=all").unwrap();
        assert_eq!(c.skip, ["A", "B"].iter().map(|s| s.to_string()).collect());
        assert!(c.error && c.experimental_all && !c.skip_all);
        assert!(Config::parse("skip=all").unwrap().skip_all);
        assert_eq!(Config::parse("").unwrap(), Config::default());
        assert_eq!(Config::parse("bogus").unwrap_err(), "invalid check option \"bogus\"");
        assert_eq!(Config::parse("foo=1").unwrap_err(), "invalid check option \"foo\"");
        assert_eq!(
            Config::parse("error=maybe").unwrap_err(),
            "failed to parse check option \"error=maybe\": strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        // SplitN(..., 3): a fourth part stays in the third
        assert!(Config::parse("skip=A;skip=B;error=true;skip=C").is_err());
    }

    #[test]
    fn build_arg_replaces_the_directive() {
        // dockerfile_check_test.go testRuleCheckOption: the build arg wins whole
        let args = vec![(BUILD_ARG.to_string(), "skip=all".to_string())];
        let c = Config::for_build(Some("error=true"), &args).unwrap();
        assert!(c.skip_all && !c.error);
        let c = Config::for_build(Some("error=true"), &[]).unwrap();
        assert!(c.error);
        assert!(Config::for_build(None, &[(BUILD_ARG.into(), "x".into())]).unwrap_err().contains("build-arg:"));
    }

    #[test]
    fn experimental_rules_ignore_skip() {
        // testDefinitionDescription: skip=all;experimental=InvalidDefinitionDescription
        let c = Config::parse("skip=all;experimental=InvalidDefinitionDescription").unwrap();
        assert!(c.enabled(&INVALID_DEFINITION_DESCRIPTION));
        assert!(!c.enabled(&STAGE_NAME_CASING));
        assert!(!Config::default().enabled(&INVALID_DEFINITION_DESCRIPTION));
    }

    #[test]
    fn comments_merge() {
        // testSecretsUsedInArgOrEnv: `# check=skip=X // why` applies to the next instruction
        let c = Config::default().with_comments(&["check=skip=SecretsUsedInArgOrEnv // allow".into()]);
        assert!(!c.enabled(&SECRETS_USED_IN_ARG_OR_ENV));
        assert!(c.enabled(&UNDEFINED_VAR));
        let c = Config::default().with_comments(&["just a comment".into()]);
        assert_eq!(c, Config::default());
    }

    #[test]
    fn short_form_is_lint_format_short() {
        let w = Warning {
            rule: &FROM_AS_CASING,
            detail: "'as' and 'FROM' keywords' casing do not match".into(),
            start: 2,
            end: 2,
        };
        assert_eq!(w.short(), "FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 2)");
        let r = Report { warnings: vec![w.clone(), w], error: true };
        assert_eq!(r.failure().unwrap(), "lint violation found for rules: FromAsCasing");
    }
}
