//! `build --call=targets`: BuildKit's `frontend.targets` subrequest (buildx `--call`), the
//! Dockerfile's stages with the descriptions their comments give, printed as buildx prints
//! them (a table, or with `format=json` BuildKit's JSON). Reads the parsed Dockerfile only;
//! builds nothing.

use crate::dockerfile::parser::Dockerfile;
use crate::instructions::{parse_node, Instruction};
use serde::Serialize;

/// What `--call` asks for: buildx's `CallFunc` (`NAME[,format=json|text][,ignorestatus=BOOL]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    pub json: bool,
    /// `ignorestatus=true`: exit 0 even when the result says otherwise (check's warnings).
    pub ignore_status: bool,
}

impl Call {
    /// Parses `--call`: buildx's names (`check` also as `lint`), its `format` and `ignorestatus`.
    pub fn parse(s: &str) -> Result<Call, String> {
        let mut parts = s.split(',');
        let name = match parts.next().map(str::trim).unwrap_or("") {
            "build" | "" => "build",
            "check" | "lint" => "check",
            "targets" => "targets",
            "outline" => return Err("--call outline: not supported yet (build, check and targets are)".into()),
            n => return Err(format!("--call {n}: unknown call (build, check and targets are known)")),
        };
        let mut c = Call { name: name.to_string(), json: false, ignore_status: false };
        for p in parts {
            match p.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("format", "json")) => c.json = true,
                Some(("format", "text" | "")) => c.json = false,
                Some(("format", f)) => return Err(format!("--call {s}: unknown format {f:?} (json or text)")),
                Some(("ignorestatus", v)) => {
                    c.ignore_status = match v {
                        "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
                        "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
                        _ => return Err(format!("--call {s}: ignorestatus={v}: not a boolean")),
                    }
                }
                _ => return Err(format!("--call {s}: unknown option {p:?} (format, ignorestatus)")),
            }
        }
        if c.json && c.name == "build" {
            return Err(format!("--call {s}: format applies to check and targets, not to a build"));
        }
        Ok(c)
    }
}

#[derive(Serialize)]
struct Position {
    line: usize,
}

#[derive(Serialize)]
struct Range {
    start: Position,
    end: Position,
}

/// `pb.Location` (its source index is 0: omitted, as protobuf's JSON omits zero values).
#[derive(Serialize)]
struct Location {
    ranges: Vec<Range>,
}

/// BuildKit's `targets.Target`.
#[derive(Serialize)]
struct Target {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    default: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    base: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    platform: String,
    location: Location,
}

/// BuildKit's `targets.List`: the sources are the Dockerfile's bytes (base64 in Go's JSON).
#[derive(Serialize)]
struct List {
    targets: Vec<Target>,
    sources: Vec<String>,
}

/// BuildKit's `getDocComment`: the first comment above the FROM that starts with the stage's
/// name and a space, without them.
fn doc_comment(comments: &[String], name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let prefix = format!("{name} ");
    comments.iter().find_map(|c| c.strip_prefix(&prefix)).unwrap_or("").to_string()
}

/// The stages as `ListTargets` makes them: each stage's (lowercased) name, description, base and
/// `--platform` as written, the last one the default.
fn targets(df: &Dockerfile) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for node in &df.nodes {
        let Ok(Instruction::From { image, alias, platform }) = parse_node(node) else { continue };
        let name = alias.unwrap_or_default();
        out.push(Target {
            description: doc_comment(&node.comments, &name),
            name,
            default: false,
            base: image,
            platform: platform.unwrap_or_default(),
            location: Location {
                ranges: vec![Range {
                    start: Position { line: node.start_line },
                    end: Position { line: node.end_line },
                }],
            },
        });
    }
    if let Some(t) = out.last_mut() {
        t.default = true;
    }
    out
}

/// Go's `json.MarshalIndent(v, "", "  ")`, which also escapes `<`, `>` and `&` (only strings
/// can hold them).
fn go_json(v: &impl Serialize) -> String {
    let s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

/// Go's `text/tabwriter` with minwidth 0 and padding 1 over rows of two cells: the first
/// padded to the widest first cell plus one, the last as it is.
fn table(rows: &[(String, String)]) -> String {
    let w = rows.iter().map(|(a, _)| a.chars().count()).max().unwrap_or(0) + 1;
    rows.iter().map(|(a, b)| format!("{a:<w$}{b}\n")).collect()
}

/// `--call=targets`: buildx's `PrintTargets` table, or BuildKit's JSON with `json`.
pub fn print_targets(df: &Dockerfile, src: &str, json: bool) -> String {
    let targets = targets(df);
    if json {
        use base64::Engine;
        let sources = vec![base64::engine::general_purpose::STANDARD.encode(src.as_bytes())];
        return go_json(&List { targets, sources }) + "\n";
    }
    let mut rows = vec![("TARGET".to_string(), "DESCRIPTION".to_string())];
    for t in targets {
        let name = match (t.name.is_empty(), t.default) {
            (true, true) => "(default)".to_string(),
            (false, true) => format!("{} (default)", t.name),
            _ => t.name,
        };
        rows.push((name, t.description));
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parser::parse;

    // buildx's tests/build.go "targets" Dockerfile
    const DF: &str = "\n# build defines stage for compiling the binary\nFROM alpine AS build\nRUN true\n\nFROM busybox as second\nRUN false\n\nFROM alpine\nRUN false\n\n# binary returns the compiled binary\nFROM second AS binary\n\t";

    #[test]
    fn targets_as_buildx_tests_them() {
        let df = parse(DF).unwrap();
        let t = targets(&df);
        let got: Vec<(&str, &str, &str, bool)> =
            t.iter().map(|t| (t.name.as_str(), t.description.as_str(), t.base.as_str(), t.default)).collect();
        assert_eq!(
            got,
            [
                ("build", "defines stage for compiling the binary", "alpine", false),
                ("second", "", "busybox", false),
                ("", "", "alpine", false),
                ("binary", "returns the compiled binary", "second", true),
            ]
        );
        assert_eq!(
            print_targets(&df, DF, false),
            "TARGET           DESCRIPTION\nbuild            defines stage for compiling the binary\nsecond           \n                 \nbinary (default) returns the compiled binary\n"
        );
        let v: serde_json::Value = serde_json::from_str(&print_targets(&df, DF, true)).unwrap();
        assert_eq!(v["targets"][3]["default"], true);
        assert_eq!(v["targets"][0]["location"]["ranges"][0]["start"]["line"], 3);
        assert!(v["targets"][2].get("name").is_none());
        assert_eq!(v["sources"].as_array().map(|a| a.len()), Some(1));
    }

    #[test]
    fn call_parses_as_buildx() {
        assert_eq!(Call::parse("check").unwrap(), Call { name: "check".into(), json: false, ignore_status: false });
        let c = Call::parse("targets,format=json").unwrap();
        assert!(c.json && c.name == "targets");
        assert!(Call::parse("check,ignorestatus=true").unwrap().ignore_status);
        assert!(Call::parse("lint").unwrap().name == "check");
        assert!(Call::parse("bogus").unwrap_err().contains("unknown call"));
        assert!(Call::parse("check,format=yaml").is_err());
        assert!(Call::parse("outline").unwrap_err().contains("not supported yet"));
    }
}
