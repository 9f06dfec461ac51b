//! SOURCE_DATE_EPOCH as BuildKit's newest Dockerfile frontend takes it
//! (frontend/dockerfile/dockerfile2llb/epoch.go, and convert.go's toDispatchState): the value
//! of the build arg (present, even empty, it wins), else of a global `ARG SOURCE_DATE_EPOCH`;
//! an integer is seconds since 1970 (negative before, as Go's `time.Unix` takes them), anything else names where to read the time from, tried
//! in this order: `context` (the build's context), a `--build-context` name, a stage of the
//! Dockerfile that is only one remote ADD (`FROM scratch`, ARGs, one `ADD URL`). A git source
//! gives its commit's committer time; an http one its Last-Modified, else the mtime of the
//! newest regular file when the download is a tar archive; a local directory, an image or an
//! http file that is no archive give none, and the build is then one without
//! SOURCE_DATE_EPOCH. The seconds then replace the value wherever the build sees it (the
//! build arg and the global ARG: BuildKit's setBuildArgValue), so `ARG SOURCE_DATE_EPOCH` in a
//! stage reads the number. What to read is decided here (pure, unit-tested); the reading goes
//! through `fetch` (git ls-remote and the commit object, the http download and its record).

use crate::dockerfile::shell::Lexer;
use crate::fetch::{self, git::GitRef};
use crate::instructions::{CopySource, Instruction, Stage, Stages};
use crate::named_context::{self, NamedContexts, Value};
use crate::store::Store;

pub const ARG: &str = "SOURCE_DATE_EPOCH";

/// The value the build gives SOURCE_DATE_EPOCH, and whether it is the build arg's (else the
/// global ARG's): `getBuildArgValue`. None: not given, or the global ARG has no value.
pub fn given(build_args: &[(String, String)], global: &[(String, Option<String>)]) -> Option<(String, bool)> {
    if let Some((_, v)) = build_args.iter().rev().find(|(k, _)| k == ARG) {
        return Some((v.clone(), true));
    }
    match global.iter().rev().find(|(k, _)| k == ARG) {
        Some((_, Some(v))) if !v.is_empty() => Some((v.clone(), false)),
        _ => None,
    }
}

/// What a SOURCE_DATE_EPOCH value means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meaning {
    /// Empty: unset.
    Unset,
    Seconds(i64),
    /// `context`: the build's context.
    Context,
    /// A `--build-context` (its key).
    Named(String),
    /// A stage (its index).
    Stage(usize),
}

/// `resolveSourceDateEpochValue` and `resolveSourceDateEpochState`: an integer (Go's
/// strconv.ParseInt(v, 10, 64), which Rust's i64 parsing matches: a sign allowed, `-0` is 0,
/// leading zeros are decimal, one beyond i64 is no number), `context`, a name a `--build-context` has (the name is
/// a reference first, as BuildKit's NamedContext parses it: "invalid context name" when it is
/// none), a stage's name (any case), else "invalid SOURCE_DATE_EPOCH: VALUE".
pub fn meaning(v: &str, named: &NamedContexts, stages: &Stages) -> Result<Meaning, String> {
    if v.is_empty() {
        return Ok(Meaning::Unset);
    }
    if let Ok(n) = v.parse::<i64>() {
        check_time(n).map_err(|e| format!("SOURCE_DATE_EPOCH={v}: {e}"))?;
        return Ok(Meaning::Seconds(n));
    }
    if v == "context" {
        return Ok(Meaning::Context);
    }
    named_context::key(v).map_err(|e| format!("invalid context name {v}: {e}"))?;
    // looked up for BuildKit's own platform (epoch.go: ContextOpt{} is platforms.DefaultSpec())
    if let Some((key, _)) = named.lookup(v, &crate::registry::Platform::host()) {
        return Ok(Meaning::Named(key.to_string()));
    }
    match stages.stages.iter().position(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(v))) {
        Some(i) => Ok(Meaning::Stage(i)),
        None => Err(format!("invalid SOURCE_DATE_EPOCH: {v}")),
    }
}

/// The first and last second RFC 3339 writes with its four-digit year: 0000-01-01T00:00:00Z
/// and 9999-12-31T23:59:59Z.
const FIRST: i64 = -62_167_219_200;
const LAST: i64 = 253_402_300_799;

/// Whether `t` (seconds since 1970) can be an image's `created`: its year in 0000-9999, as
/// RFC 3339 writes it. BuildKit takes any int64, then fails writing the config (Go's
/// `Time.MarshalJSON`: "year outside of range [0,9999]"); refused here before the build.
pub fn check_time(t: i64) -> Result<(), String> {
    if (FIRST..=LAST).contains(&t) {
        Ok(())
    } else {
        Err(format!(
            "{t} seconds since 1970 is outside the years 0000-9999 (from {FIRST} to {LAST}), which an image's \
             `created` (RFC 3339) cannot hold"
        ))
    }
}

/// The one remote source of a SOURCE_DATE_EPOCH stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageSource {
    /// An http(s) URL, with `ADD --checksum` (expanded).
    Http {
        url: String,
        checksum: Option<String>,
    },
    Git(GitRef),
}

/// `sourceDateEpochStageSource`: the stage must start `FROM scratch` (its base expanded with
/// the global ARGs, SOURCE_DATE_EPOCH left out) and hold only ARGs and exactly one ADD of one
/// http(s) URL or git repository; its words are expanded with the global ARGs and the stage's
/// ARGs (a build arg of the name wins over the default; an ARG without one adds nothing). The
/// errors are BuildKit's words; the caller puts them at the stage's FROM line.
pub fn stage_source(
    stage: &Stage,
    global: &[(String, String)],
    build_args: &[(String, String)],
    lexer: &Lexer,
) -> Result<StageSource, String> {
    let mut env: Vec<(String, String)> = global.iter().filter(|(k, _)| k != ARG).cloned().collect();
    let base = lexer
        .process_word(&stage.base, &env)
        .map_err(|e| format!("failed to process source stage base name {:?}: {}", stage.base, e.0))?;
    if base != "scratch" {
        return Err("SOURCE_DATE_EPOCH stage must use FROM scratch".into());
    }
    let mut source = None;
    for c in &stage.commands {
        match &c.inst {
            Instruction::Arg(list) => {
                for (k, d) in list {
                    let v = match (build_args.iter().rev().find(|(n, _)| n == k), d) {
                        (Some((_, v)), _) => v.clone(),
                        (None, None) => continue,
                        (None, Some(d)) => lexer.process_word(d, &env).map_err(|e| e.0)?,
                    };
                    env.retain(|(n, _)| n != k);
                    env.push((k.clone(), v));
                }
            }
            Instruction::Add(a) => {
                if source.is_some() {
                    return Err("SOURCE_DATE_EPOCH stage must contain exactly one remote ADD".into());
                }
                let [CopySource::Path(word)] = a.sources.as_slice() else {
                    return Err("SOURCE_DATE_EPOCH stage must contain exactly one remote ADD source".into());
                };
                let src = lexer.process_word(word, &env).map_err(|e| e.0)?;
                let checksum = match &a.checksum {
                    Some(c) => Some(lexer.process_word(c, &env).map_err(|e| e.0)?),
                    None => None,
                };
                source = Some(if fetch::is_http(&src) {
                    if let Some(c) = &checksum {
                        fetch::http::parse_checksum(c)?;
                    }
                    StageSource::Http { url: src, checksum }
                } else {
                    match fetch::git::parse(&src)? {
                        Some(mut g) => {
                            if checksum.is_some() {
                                g.checksum = checksum;
                            }
                            StageSource::Git(g)
                        }
                        None => return Err("SOURCE_DATE_EPOCH stage source must be a single HTTP(S) or Git ADD".into()),
                    }
                });
            }
            other => {
                return Err(format!(
                    "SOURCE_DATE_EPOCH stage does not meet source-only requirements: unsupported {} instruction",
                    other.keyword().to_ascii_lowercase()
                ))
            }
        }
    }
    source.ok_or_else(|| "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD".into())
}

/// The time of a stage's source, fetched as ADD fetches it (an http URL revalidated or
/// downloaded into the store, with `--checksum` checked; a git ref resolved with ls-remote and
/// its commit fetched), and what it is, for the log.
pub fn stage_source_time(store: &Store, s: &StageSource) -> Result<(Option<i64>, String), String> {
    match s {
        StageSource::Http { url, checksum } => {
            let rec = match checksum {
                Some(c) => fetch::http::fetch(store, url, c),
                None => fetch::http::resolve(store, url),
            }
            .map_err(|e| e.to_string())?;
            let (t, what) = fetch::http::time(store, &rec);
            Ok((t, format!("{what}, {url}")))
        }
        StageSource::Git(g) => {
            let (commit, full_ref) = fetch::git::resolve(g).map_err(|e| e.to_string())?;
            let bare = fetch::git::bare_repo(store, &g.remote);
            let t = fetch::git::commit_time(&bare, &g.remote, &full_ref, &commit).map_err(|e| e.to_string())?;
            Ok((Some(t), format!("the committer time of commit {commit} of {}", g.remote)))
        }
    }
}

/// The time of a `--build-context`: a remote one's as the build's context gives it
/// ([`fetch::context::Fetched::time`]); a directory or an image gives none (BuildKit's local and
/// image sources have no time to give).
pub fn named_time(store: &Store, key: &str, v: &Value) -> Result<(Option<i64>, String), String> {
    match v {
        Value::Remote(url, r) => {
            let f = fetch::context::fetch(store, url, r, fetch::context::Use::Named, false)
                .map_err(|e| format!("--build-context {key}={url}: {e}"))?;
            let (t, what) = f.time(store).map_err(|e| format!("--build-context {key}={url}: {e}"))?;
            Ok((t, format!("{what} (--build-context {key})")))
        }
        Value::Dir(_) => Ok((None, format!("--build-context {key} is a local directory, which has no time"))),
        Value::Image(_) | Value::OciLayout { .. } => {
            Ok((None, format!("--build-context {key} is an image, which has no time")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parser::parse;
    use crate::instructions::stages;

    fn stages_of(df: &str) -> Stages {
        stages(&parse(df).unwrap()).unwrap()
    }

    #[test]
    fn the_build_arg_wins_then_the_global_arg() {
        // convert.go getBuildArgValue: a build arg present (even empty) wins; a global ARG only
        // with a value
        let ba = |v: &str| vec![(ARG.to_string(), v.to_string())];
        let global = |v: Option<&str>| vec![(ARG.to_string(), v.map(str::to_string))];
        assert_eq!(given(&ba("5"), &global(Some("7"))), Some(("5".into(), true)));
        assert_eq!(given(&ba(""), &global(Some("7"))), Some(("".into(), true)));
        assert_eq!(given(&[], &global(Some("7"))), Some(("7".into(), false)));
        assert_eq!(given(&[], &global(Some(""))), None);
        assert_eq!(given(&[], &global(None)), None);
        assert_eq!(given(&[], &[]), None);
    }

    #[test]
    fn values_name_seconds_the_context_a_named_context_or_a_stage() {
        // epoch.go resolveSourceDateEpochValue / resolveSourceDateEpochState, in that order;
        // convert_test.go TestResolveSourceDateEpochValue
        let st = stages_of("FROM scratch AS src\nADD https://h/x.tar /\nFROM scratch AS context\nFROM scratch\n");
        let mut named = NamedContexts::default();
        named.by_key.insert("src".into(), Value::Dir("/tmp".into()));
        named.by_key.insert("ghcr.io/x/y".into(), Value::Image("alpine".into()));
        let rows: &[(&str, Result<Meaning, &str>)] = &[
            ("", Ok(Meaning::Unset)),
            ("1700000501", Ok(Meaning::Seconds(1700000501))),
            ("+12", Ok(Meaning::Seconds(12))),
            ("0", Ok(Meaning::Seconds(0))),
            // a time before 1970: BuildKit's time.Unix(sde, 0) (1969-12-31T00:00:00Z)
            ("-1", Ok(Meaning::Seconds(-1))),
            ("-86400", Ok(Meaning::Seconds(-86400))),
            // ParseInt(v, 10, 64): -0 is 0, leading zeros are decimal, either sign
            ("-0", Ok(Meaning::Seconds(0))),
            ("+0", Ok(Meaning::Seconds(0))),
            ("007", Ok(Meaning::Seconds(7))),
            ("-010", Ok(Meaning::Seconds(-10))),
            ("-62167219200", Ok(Meaning::Seconds(-62_167_219_200))),
            ("253402300799", Ok(Meaning::Seconds(253_402_300_799))),
            // an int64 whose year RFC 3339 cannot write (BuildKit fails marshalling the config)
            ("-62167219201", Err("SOURCE_DATE_EPOCH=-62167219201: -62167219201 seconds since 1970 is outside")),
            ("253402300800", Err("outside the years 0000-9999")),
            ("-9223372036854775808", Err("outside the years 0000-9999")),
            // not ParseInt's: a name, then no name
            ("0x10", Err("invalid SOURCE_DATE_EPOCH: 0x10")),
            ("1_000", Err("invalid SOURCE_DATE_EPOCH: 1_000")),
            ("--1", Err("invalid context name --1")),
            ("- 1", Err("invalid")),
            (" 1", Err("invalid")),
            // `context` first, even with a stage of that name
            ("context", Ok(Meaning::Context)),
            // a --build-context before a stage of the same name, matched as a reference
            ("src", Ok(Meaning::Named("src".into()))),
            ("ghcr.io/x/y:latest", Ok(Meaning::Named("ghcr.io/x/y".into()))),
            ("not-a-timestamp", Err("invalid SOURCE_DATE_EPOCH: not-a-timestamp")),
            ("1.5", Err("invalid SOURCE_DATE_EPOCH: 1.5")),
            ("99999999999999999999", Err("invalid SOURCE_DATE_EPOCH: 99999999999999999999")),
            // not a reference: NamedContext's error
            ("Src", Err("invalid context name Src")),
        ];
        for (v, want) in rows {
            match (meaning(v, &named, &st), want) {
                (Ok(got), Ok(w)) => assert_eq!(&got, w, "{v}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{v}: {e}"),
                (got, w) => panic!("{v}: {got:?}, want {w:?}"),
            }
        }
        // the stage, when no context has the name
        assert_eq!(meaning("src", &NamedContexts::default(), &st), Ok(Meaning::Stage(0)));
    }

    fn source_of(df: &str, build_args: &[(&str, &str)]) -> Result<StageSource, String> {
        let st = stages_of(df);
        let ba: Vec<(String, String)> = build_args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        // the global ARGs as the build evaluated them (`ARG B=scratch` before the first FROM)
        let global = vec![
            ("HOST".to_string(), "h".to_string()),
            ("B".to_string(), "scratch".to_string()),
            (ARG.to_string(), "src".to_string()),
        ];
        stage_source(&st.stages[0], &global, &ba, &Lexer::new('\\'))
    }

    #[test]
    fn a_stage_is_one_remote_add() {
        // epoch.go sourceDateEpochStageSource / sourceDateEpochAddSource; convert_test.go
        // TestSourceDateEpochStageSourceHTTP, ...RequiresScratch, TestResolveSourceDateEpochValueStageInvalid
        assert_eq!(
            source_of("FROM scratch AS src\nARG F=x.tar\nADD https://$HOST/$F /\n", &[]),
            Ok(StageSource::Http { url: "https://h/x.tar".into(), checksum: None })
        );
        // a build arg wins over the stage ARG's default
        assert_eq!(
            source_of("FROM scratch AS src\nARG F=x.tar\nADD https://$HOST/$F /\n", &[("F", "y.tgz")]),
            Ok(StageSource::Http { url: "https://h/y.tgz".into(), checksum: None })
        );
        let sum = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            source_of(&format!("FROM scratch AS src\nADD --checksum={sum} https://h/x /x\n"), &[]),
            Ok(StageSource::Http { url: "https://h/x".into(), checksum: Some(sum) })
        );
        match source_of("ARG B=scratch\nFROM ${B} AS src\nADD git://h/r.git#v1:sub /\n", &[]) {
            Ok(StageSource::Git(g)) => assert_eq!((g.remote.as_str(), g.ref_name.as_str()), ("git://h/r.git", "v1")),
            other => panic!("{other:?}"),
        }
        let rows = [
            ("FROM busybox AS src\nADD https://h/x /\n", "SOURCE_DATE_EPOCH stage must use FROM scratch"),
            (
                "FROM scratch AS src\nCOPY a /\n",
                "SOURCE_DATE_EPOCH stage does not meet source-only requirements: unsupported copy instruction",
            ),
            (
                "FROM scratch AS src\nADD https://h/x /\nRUN true\n",
                "SOURCE_DATE_EPOCH stage does not meet source-only requirements: unsupported run instruction",
            ),
            ("FROM scratch AS src\nARG A=1\n", "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD"),
            ("FROM scratch AS src\n", "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD"),
            (
                "FROM scratch AS src\nADD https://h/x /\nADD https://h/y /\n",
                "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD",
            ),
            (
                "FROM scratch AS src\nADD https://h/x https://h/y /d/\n",
                "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD source",
            ),
            (
                "FROM scratch AS src\nADD <<EOF /f\nhi\nEOF\n",
                "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD source",
            ),
            (
                "FROM scratch AS src\nADD local.tar /\n",
                "SOURCE_DATE_EPOCH stage source must be a single HTTP(S) or Git ADD",
            ),
            ("FROM scratch AS src\nADD --checksum=md5:00 https://h/x /\n", "unsupported digest algorithm"),
        ];
        for (df, want) in rows {
            match source_of(df, &[]) {
                Err(e) => assert!(e.contains(want), "{df}: {e}"),
                Ok(s) => panic!("{df}: {s:?}"),
            }
        }
    }
}
