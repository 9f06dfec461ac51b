//! `build --call=targets|outline`: BuildKit's `frontend.targets` and `frontend.outline`
//! subrequests (buildx `--call`): the Dockerfile's stages with the descriptions their comments
//! give, or what a target's build takes (build args, secrets, ssh), printed as buildx prints
//! them (tables, or with `format=json` BuildKit's JSON). Reads the parsed Dockerfile only;
//! builds nothing, resolves no image.

use crate::dockerfile::parser::{Dockerfile, Node};
use crate::dockerfile::shell::{Env, Lexer};
use crate::instructions::{parse_node, Instruction, Stages};
use crate::plan::graph::Graph;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeSet;

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
            "outline" => "outline",
            n => return Err(format!("--call {n}: unknown call (build, check, outline and targets are known)")),
        };
        let mut c = Call { name: name.to_string(), json: false, ignore_status: false };
        for p in parts {
            match p.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("format", "json")) => c.json = true,
                Some(("format", "text" | "")) => c.json = false,
                Some(("format", f)) => return Err(format!("--call {s}: unknown format {f:?} (json or text)")),
                Some(("ignorestatus", v)) => {
                    c.ignore_status =
                        crate::gobool::parse(v).ok_or_else(|| format!("--call {s}: ignorestatus={v}: not a boolean"))?
                }
                _ => return Err(format!("--call {s}: unknown option {p:?} (format, ignorestatus)")),
            }
        }
        if c.json && c.name == "build" {
            return Err(format!("--call {s}: format applies to check, outline and targets, not to a build"));
        }
        Ok(c)
    }
}

/// What a `--call` other than build gives: buildx's printed form, BuildKit's JSON (printed with
/// `format=json`, and `result.json` of `--metadata-file`), and the exit status it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResult {
    pub text: String,
    pub json: String,
    pub status: i32,
}

impl CallResult {
    /// buildx's `--metadata-file` of a call: its exporter response decoded, whose JSON result
    /// is `result.json` (no image, so no digest or build ref).
    pub fn metadata(&self) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.json).unwrap_or(serde_json::Value::Null);
        let mut text = serde_json::to_string_pretty(&serde_json::json!({ "result.json": v })).unwrap_or_default();
        text.push('\n');
        text
    }
}

#[derive(Debug, Clone, Serialize)]
struct Position {
    line: usize,
}

#[derive(Debug, Clone, Serialize)]
struct Range {
    start: Position,
    end: Position,
}

/// `pb.Location` (its source index is 0: omitted, as protobuf's JSON omits zero values).
#[derive(Debug, Clone, Serialize)]
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

/// Records the variables an expansion found set (BuildKit's `ProcessWordWithMatches`).
struct Used<'a> {
    env: &'a [(String, String)],
    found: RefCell<BTreeSet<String>>,
}

impl Env for Used<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        let v = self.env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        if v.is_some() {
            self.found.borrow_mut().insert(name.to_string());
        }
        v
    }
}

/// An ARG as the outline shows it (BuildKit's `argInfo`).
#[derive(Debug, Clone, Serialize)]
struct OutlineArg {
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    location: Location,
    /// The global ARGs its default reads (a used ARG makes them used).
    #[serde(skip)]
    deps: BTreeSet<String>,
}

/// A secret or ssh mount a RUN asks for.
#[derive(Debug, Serialize)]
struct Need {
    name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    required: bool,
    location: Location,
}

/// BuildKit's `outline.Outline`.
#[derive(Serialize)]
struct Outline {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    args: Vec<OutlineArg>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    secrets: Vec<Need>,
    #[serde(rename = "ssh", skip_serializing_if = "Vec::is_empty")]
    ssh: Vec<Need>,
    sources: Vec<String>,
}

fn location(line: usize, end: usize) -> Location {
    Location { ranges: vec![Range { start: Position { line }, end: Position { line: end } }] }
}

/// What an outline reads besides the Dockerfile.
pub struct OutlineInput<'a> {
    pub df: &'a Dockerfile,
    pub stages: &'a Stages,
    pub build_args: &'a [(String, String)],
    /// The automatic platform ARGs with their values.
    pub platform_args: &'a [(String, String)],
    pub target: Option<&'a str>,
}

/// The node of a line (for its comments and end line).
fn node_at(df: &Dockerfile, line: usize) -> Option<&Node> {
    df.nodes.iter().find(|n| n.start_line == line)
}

/// `--call=outline`: the target stage's name and description, the build args its stages
/// declare or its FROMs read (with their values and descriptions), the secrets and ssh agents
/// its RUNs mount; as BuildKit's `dispatchState.Outline`, each list in Dockerfile order.
fn outline(i: &OutlineInput) -> Result<Outline, String> {
    let lexer = Lexer::new(i.df.escape);
    let end_of = |line: usize| node_at(i.df, line).map_or(line, |n| n.end_line);
    let doc = |line: usize, key: &str| node_at(i.df, line).map(|n| doc_comment(&n.comments, key)).unwrap_or_default();
    let given = |k: &str| i.build_args.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    // the global ARGs (buildMetaArgs): a build arg's value, else the default expanded
    let mut global_env: Vec<(String, String)> = i.platform_args.to_vec();
    let mut globals: Vec<OutlineArg> = Vec::new();
    for c in &i.stages.meta_args {
        let Instruction::Arg(list) = &c.inst else { continue };
        for (k, d) in list {
            let mut deps = BTreeSet::new();
            let value = match (given(k), d) {
                (Some(v), _) => Some(v),
                (None, Some(d)) => {
                    let u = Used { env: &global_env, found: RefCell::default() };
                    let v = lexer.process_word(d, &u).map_err(|e| format!("ARG {k}: {}", e.0))?;
                    deps = u.found.into_inner();
                    Some(v)
                }
                (None, None) => None,
            };
            if let Some(v) = &value {
                global_env.push((k.clone(), v.clone()));
            }
            globals.retain(|a| &a.name != k);
            let (line, end) = (c.line, end_of(c.line));
            globals.push(OutlineArg {
                name: k.clone(),
                description: doc(line, k),
                value,
                location: location(line, end),
                deps,
            });
        }
    }
    let graph = Graph::new(i.stages, &lexer, &global_env).map_err(|(line, e)| format!("line {line}: {e}"))?;
    let target = match i.target {
        Some(t) => graph.stage_index(t).ok_or_else(|| format!("target stage {t:?} could not be found"))?,
        None => i.stages.stages.len().checked_sub(1).ok_or("no stage in the Dockerfile")?,
    };
    // the target first, then the stages it needs (the first seen of a name wins, as BuildKit
    // visits the target, its base, its dependencies)
    let mut order = vec![target];
    order.extend(graph.needed(target).into_iter().rev().filter(|&s| s != target));
    let (mut args, mut secrets, mut ssh): (Vec<OutlineArg>, Vec<Need>, Vec<Need>) = Default::default();
    let mut used_globals: BTreeSet<String> = BTreeSet::new();
    for &si in &order {
        let stage = &i.stages.stages[si];
        for word in std::iter::once(&stage.base).chain(stage.platform.iter()) {
            let u = Used { env: &global_env, found: RefCell::default() };
            let _ = lexer.process_word(word, &u);
            used_globals.extend(u.found.into_inner());
        }
        let mut env: Vec<(String, String)> = Vec::new();
        for c in &stage.commands {
            match &c.inst {
                Instruction::Arg(list) => {
                    for (k, d) in list {
                        let global = globals.iter().find(|a| &a.name == k);
                        let own = match (given(k), d) {
                            (Some(v), _) => Some(v),
                            (None, Some(d)) => lexer.process_word(d, &env).ok(),
                            (None, None) => None,
                        };
                        let info = match (own, global) {
                            // an ARG that only brings a global one in keeps the global's line
                            (None, Some(g)) => g.clone(),
                            (value, _) => OutlineArg {
                                name: k.clone(),
                                description: doc(c.line, k),
                                value,
                                location: location(c.line, end_of(c.line)),
                                deps: BTreeSet::new(),
                            },
                        };
                        if let Some(v) = &info.value {
                            env.push((k.clone(), v.clone()));
                        }
                        if !args.iter().any(|a| a.name == info.name) {
                            args.push(info);
                        }
                    }
                }
                Instruction::Env(pairs) => {
                    for (k, v) in pairs {
                        let v = lexer.process_word(v, &env).unwrap_or_default();
                        env.push((k.clone(), v));
                    }
                }
                Instruction::Run { mounts, .. } => {
                    for raw in mounts {
                        let word = lexer.process_word(raw, &env).map_err(|e| format!("RUN --mount={raw}: {}", e.0))?;
                        let m = crate::runmount::parse(&word).map_err(|e| format!("RUN --mount={raw}: {e}"))?;
                        let loc = location(c.line, end_of(c.line));
                        match m.kind {
                            crate::runmount::Kind::Secret => {
                                // convert_secrets.go: id, else source, else the target's base name
                                let base =
                                    |p: &str| p.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string();
                                let id = m.id.clone().or(m.source.clone()).or_else(|| m.target.as_deref().map(base));
                                let name = id.unwrap_or_default();
                                if !secrets.iter().any(|s| s.name == name) {
                                    secrets.push(Need { name, required: m.required, location: loc });
                                }
                            }
                            crate::runmount::Kind::Ssh => {
                                let name = m.id.clone().filter(|i| !i.is_empty()).unwrap_or_else(|| "default".into());
                                if !ssh.iter().any(|s| s.name == name) {
                                    ssh.push(Need { name, required: m.required, location: loc });
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
    // a used global ARG makes the globals its default read used too (markAllUsed)
    let mut todo: Vec<String> = used_globals.iter().cloned().collect();
    while let Some(k) = todo.pop() {
        if let Some(g) = globals.iter().find(|a| a.name == k) {
            for d in &g.deps {
                if used_globals.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
    }
    for g in globals.iter().filter(|g| used_globals.contains(&g.name)) {
        if !args.iter().any(|a| a.name == g.name) {
            args.push(g.clone());
        }
    }
    let line = |l: &Location| l.ranges.first().map_or(0, |r| r.start.line);
    args.sort_by_key(|a| line(&a.location));
    secrets.sort_by_key(|s| line(&s.location));
    ssh.sort_by_key(|s| line(&s.location));
    let st = &i.stages.stages[target];
    let name = st.name.clone().unwrap_or_default();
    let description = node_at(i.df, st.line).map(|n| doc_comment(&n.comments, &name)).unwrap_or_default();
    Ok(Outline { name, description, args, secrets, ssh, sources: Vec::new() })
}

/// Go's `text/tabwriter` (minwidth 0, the given padding) over rows of cells: each cell but a
/// row's last padded to its column's widest plus `padding`.
fn tab(rows: &[Vec<String>], padding: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter(|r| c + 1 < r.len()).map(|r| r[c].chars().count()).max().unwrap_or(0) + padding)
        .collect();
    let mut out = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 < r.len() {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            } else {
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}

/// `--call=outline`: buildx's `PrintOutline`, or BuildKit's JSON with `json`.
pub fn print_outline(i: &OutlineInput, src: &str, json: bool) -> Result<String, String> {
    let mut o = outline(i)?;
    if json {
        use base64::Engine;
        o.sources = vec![base64::engine::general_purpose::STANDARD.encode(src.as_bytes())];
        return Ok(go_json(&o) + "\n");
    }
    let mut out = String::new();
    if !o.name.is_empty() || !o.description.is_empty() {
        let name = if o.name.is_empty() { "(default)".to_string() } else { o.name.clone() };
        let mut rows = vec![vec!["TARGET:".to_string(), name]];
        if !o.description.is_empty() {
            rows.push(vec!["DESCRIPTION:".to_string(), o.description.clone()]);
        }
        out.push_str(&tab(&rows, 1));
        out.push('\n');
    }
    if !o.args.is_empty() {
        let mut rows = vec![vec!["BUILD ARG".into(), "VALUE".into(), "DESCRIPTION".into()]];
        for a in &o.args {
            rows.push(vec![a.name.clone(), a.value.clone().unwrap_or_default(), a.description.clone()]);
        }
        out.push_str(&tab(&rows, 3));
        out.push('\n');
    }
    for (head, list) in [("SECRET", &o.secrets), ("SSH", &o.ssh)] {
        if list.is_empty() {
            continue;
        }
        let mut rows = vec![vec![head.to_string(), "REQUIRED".into()]];
        for s in list {
            rows.push(vec![s.name.clone(), if s.required { "true".into() } else { String::new() }]);
        }
        out.push_str(&tab(&rows, 3));
        out.push('\n');
    }
    Ok(out)
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
        assert!(Call::parse("outline,format=json").unwrap().json);
    }

    fn outline_of(src: &str, args: &[(&str, &str)], target: Option<&str>, json: bool) -> String {
        let df = parse(src).unwrap();
        let stages = crate::instructions::stages(&df).unwrap();
        let args: Vec<(String, String)> = args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let i = OutlineInput { df: &df, stages: &stages, build_args: &args, platform_args: &[], target };
        print_outline(&i, src, json).unwrap()
    }

    #[test]
    fn outline_as_buildx_tests_it() {
        // buildx's tests/build.go "outline": --build-arg=BAR=678 --target=target
        let src = "\nFROM busybox AS first\nRUN --mount=type=secret,target=/etc/passwd,required=true --mount=type=ssh true\n\nFROM alpine AS second\nRUN --mount=type=secret,id=unused --mount=type=ssh,id=ssh2 true\n\nFROM scratch AS third\nARG BAR\nRUN --mount=type=secret,id=second${BAR} true\n\nFROM third AS target\nCOPY --from=first /foo /\nRUN --mount=type=ssh,id=ssh3,required true\n\nFROM second\n\t";
        let v: serde_json::Value =
            serde_json::from_str(&outline_of(src, &[("BAR", "678")], Some("target"), true)).unwrap();
        assert_eq!(v["name"], "target");
        assert_eq!(v["args"].as_array().map(|a| a.len()), Some(1), "{v}");
        assert_eq!((&v["args"][0]["name"], &v["args"][0]["value"]), (&"BAR".into(), &"678".into()));
        let names = |k: &str| -> Vec<(String, bool)> {
            v[k].as_array()
                .unwrap()
                .iter()
                .map(|s| (s["name"].as_str().unwrap().to_string(), s.get("required").is_some()))
                .collect()
        };
        assert_eq!(names("secrets"), [("passwd".into(), true), ("second678".into(), false)]);
        assert_eq!(names("ssh"), [("default".into(), false), ("ssh3".into(), true)]);
        assert_eq!(v["sources"].as_array().map(|a| a.len()), Some(1));
        assert_eq!(
            outline_of(src, &[("BAR", "678")], Some("target"), false),
            "TARGET: target\n\nBUILD ARG   VALUE   DESCRIPTION\nBAR         678     \n\nSECRET      REQUIRED\npasswd      true\nsecond678   \n\nSSH       REQUIRED\ndefault   \nssh3      true\n\n"
        );
    }

    #[test]
    fn outline_args_with_descriptions() {
        // BuildKit's testOutlineArgs shape: global ARGs a FROM reads (and those their defaults
        // read) count; the stage's ARGs with their comments as descriptions
        let src = "# HTTP_PROXY the proxy\nARG REGISTRY=docker.io\n# TAG the tag\nARG TAG=latest\nARG IMAGE=$REGISTRY/busybox\nARG UNUSED=x\n# build builds it\nFROM $IMAGE:$TAG AS build\n# VERSION the version to build\nARG VERSION=1.0\nRUN true\n";
        let out = outline_of(src, &[], None, false);
        assert_eq!(
            out,
            "TARGET:      build\nDESCRIPTION: builds it\n\nBUILD ARG   VALUE               DESCRIPTION\nREGISTRY    docker.io           \nTAG         latest              the tag\nIMAGE       docker.io/busybox   \nVERSION     1.0                 the version to build\n\n"
        );
    }
}
