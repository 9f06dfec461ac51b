//! `slipway build`'s build checks (BuildKit's Dockerfile linter): the warnings in the build log,
//! `# check=error=true` stopping a build before any step, `BUILDKIT_DOCKERFILE_CHECK`
//! overriding the directive, `build --check` / `--call check`, and buildx's
//! `buildx.build.warnings` in `--metadata-file`. docker 20.10's BuildKit predates the checks
//! (frontend 1.8), so each expectation cites the case of BuildKit's
//! frontend/dockerfile/dockerfile_check_test.go (or buildx's tests) it comes from.

use integration::slipway::{bin, Slipway};
use std::process::Command;

const FROM_AS: &str = "FromAsCasing: 'as' and 'FROM' keywords' casing do not match";

/// The image names of the store.
fn images(s: &Slipway) -> String {
    s.run(&["images"]).ok().stdout
}

#[test]
fn warnings_are_in_the_build_log_and_change_nothing() {
    let s = Slipway::new();
    // testRuleCheckOption's Dockerfile: FromAsCasing (line 2) and ConsistentInstructionCasing (3)
    let warned = s.context("warned", &[("Dockerfile", "FROM scratch as base\ncopy Dockerfile .\n")]);
    let r = s.build(&warned, "warned:1", &["--progress", "plain"]).ok();
    // while the Dockerfile is read, as BuildKit's progress prints a vertex's warnings
    let from_as = format!("WARN: {FROM_AS} (line 1)\n");
    let casing = "WARN: ConsistentInstructionCasing: Command 'copy' should match the case of the command majority (uppercase) (line 2)\n";
    let (at_from, at_casing) = (r.stdout.find(&from_as), r.stdout.find(casing));
    let step1 = r.stdout.find("Step 1/2");
    assert!(at_from.is_some() && at_casing.is_some() && at_from < step1 && at_casing < step1, "{}", r.stdout);
    // counted at the end, as buildx's printWarnings
    let end = format!(
        "Successfully tagged warned:1\n\n 2 warnings found (use --debug to expand):\n - {FROM_AS} (line 1)\n - {}",
        casing.trim_start_matches("WARN: ")
    );
    assert!(r.stdout.ends_with(&end), "{}", r.stdout);
    // --debug expands each as buildx --debug does: description, URL, the Dockerfile's lines
    let r = s.run(&["--debug", "build", "-t", "warned:1", "--progress", "plain", &warned.to_string_lossy()]).ok();
    assert!(r.stdout.contains(" 2 warnings found:\n"), "{}", r.stdout);
    assert!(r.stdout.contains("The 'as' keyword should match the case of the 'from' keyword\n"), "{}", r.stdout);
    assert!(
        r.stdout.contains("More info: https://docs.docker.com/go/dockerfile/rule/from-as-casing/\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Dockerfile:1\n--------------------\n   1 | >>> FROM scratch as base\n"), "{}", r.stdout);
    // the build itself is what it would be without checks
    let clean = s.context("clean", &[("Dockerfile", "FROM scratch AS base\nCOPY Dockerfile .\n")]);
    let r2 = s.build(&clean, "clean:1", &["--progress", "plain"]).ok();
    assert!(!r2.stdout.contains("warning"), "{}", r2.stdout);
    let img = s.save("warned:1");
    assert_eq!(
        img.find("Dockerfile").map(|e| e.data.clone()),
        Some(b"FROM scratch as base\ncopy Dockerfile .\n".to_vec())
    );
}

#[test]
fn error_true_fails_before_any_step_runs() {
    let s = Slipway::new();
    s.base("base:1");
    // testRuleCheckOption: `#check=skip=ConsistentInstructionCasing;error=true` fails with
    // "lint violation found for rules: FromAsCasing"
    let df = "#check=skip=ConsistentInstructionCasing;error=true\nFROM base:1 as base\nRUN echo ran > /ran\ncopy Dockerfile .\n";
    let ctx = s.context("err", &[("Dockerfile", df)]);
    let r = s.build(&ctx, "err:1", &["--progress", "plain"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stderr.contains("lint violation found for rules: FromAsCasing"), "{}", r.stderr);
    assert!(r.stdout.contains(&format!("WARN: {FROM_AS} (line 2)\n")), "{}", r.stdout);
    // counted at the end after a failed build too (buildx prints them when its progress closes)
    assert!(
        r.stdout.ends_with(&format!("\n 1 warning found (use --debug to expand):\n - {FROM_AS} (line 2)\n")),
        "{}",
        r.stdout
    );
    // nothing ran, nothing was named
    assert!(!r.stdout.contains("Step 1/"), "{}", r.stdout);
    assert!(!images(&s).contains("err"), "{}", images(&s));

    // testRuleCheckOption: `#check=skip=all;error=true` finds nothing, so builds
    let ok = s.context("ok", &[("Dockerfile", &df.replace("ConsistentInstructionCasing", "all"))]);
    let r = s.build(&ok, "ok:1", &["--progress", "plain"]).ok();
    assert!(!r.stdout.contains("warning"), "{}", r.stdout);
    assert_eq!(s.save("ok:1").find("ran").map(|e| e.data.clone()), Some(b"ran\n".to_vec()));
}

#[test]
fn the_build_arg_replaces_the_directive() {
    let s = Slipway::new();
    // testRuleCheckOption: the directive says skip=all, the build arg
    // skip=ConsistentInstructionCasing;error=true: FromAsCasing fails the build
    let ctx = s.context("a", &[("Dockerfile", "#check=skip=all\nFROM scratch as base\ncopy Dockerfile .\n")]);
    let arg = "BUILDKIT_DOCKERFILE_CHECK=skip=ConsistentInstructionCasing;error=true";
    let r = s.build(&ctx, "a:1", &["--build-arg", arg]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stderr.contains("lint violation found for rules: FromAsCasing"), "{}", r.stderr);
    assert!(!images(&s).contains("a "), "{}", images(&s));
    // ...and `#check=error=true` with the build arg skip=all builds, without warnings; the
    // arg is BuildKit's, so not reported unconsumed
    let ctx = s.context("b", &[("Dockerfile", "#check=error=true\nFROM scratch as base\ncopy Dockerfile .\n")]);
    let r = s.build(&ctx, "b:1", &["--progress", "plain", "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all"]).ok();
    assert!(!r.stdout.contains("warning"), "{}", r.stdout);
    assert!(!r.stderr.contains("not consumed"), "{}", r.stderr);
    // a bad value is an error naming the arg (dockerui: "failed to parse build-arg:...")
    let r = s.build(&ctx, "b:2", &["--build-arg", "BUILDKIT_DOCKERFILE_CHECK=bogus"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: invalid check option \"bogus\""),
        "{}",
        r.stderr
    );
}

#[test]
fn check_runs_only_the_checks() {
    let s = Slipway::new();
    s.base("base:1");
    // every stage is checked (testAllTargetUnmarshal: the check request sees `first` too);
    // ENV PATH=$PAHT gets the base image's PATH as a suggestion (testUnmatchedVars);
    // .dockerignore'd COPY source (testCopyIgnoredFiles)
    let df = "FROM base:1 AS first\nCOPY $foo .\n\nFROM base:1 AS second\nENV PATH=$PAHT:/x\nCOPY secret.txt /\nRUN echo ran > /ran\n";
    let ctx = s.context("c", &[("Dockerfile", df), (".dockerignore", "secret.txt\n"), ("secret.txt", "s")]);
    let c = ctx.to_string_lossy().into_owned();
    for flags in [&["--check"][..], &["--call", "check"][..]] {
        let mut args = vec!["build", "-t", "c:1"];
        args.extend_from_slice(flags);
        args.push(&c);
        let r = s.run(&args);
        assert_eq!(r.code, 1, "{flags:?}: {r:?}");
        assert!(r.stdout.starts_with("Check complete, 3 warnings have been found!\n"), "{}", r.stdout);
        // lint.Warning.PrintTo: the rule and URL, the message, the lines
        assert!(
            r.stdout.contains(
                "\nWARNING: UndefinedVar - https://docs.docker.com/go/dockerfile/rule/undefined-var/\nUsage of undefined variable '$foo'\nDockerfile:2\n"
            ),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout.contains("Usage of undefined variable '$PAHT' (did you mean $PATH?)\nDockerfile:5\n"),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout
                .contains("Attempting to Copy file \"secret.txt\" that is excluded by .dockerignore\nDockerfile:6\n"),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("   5 | >>> ENV PATH=$PAHT:/x\n"), "{}", r.stdout);
        // nothing built
        assert!(!r.stdout.contains("Step "), "{}", r.stdout);
        assert!(!images(&s).contains("c "), "{}", images(&s));
    }
    // no warnings: buildx's words, exit 0
    let clean = s.context("clean", &[("Dockerfile", "FROM base:1\nRUN true\n")]);
    let r = s.run(&["build", "--check", &clean.to_string_lossy()]).ok();
    assert_eq!(r.stdout, "Check complete, no warnings found.\n");
    // --call build is the default: builds, the warnings in the log; a build checks only the
    // stages its target needs where BuildKit checks while dispatching (testAllTargetUnmarshal:
    // `first`'s $foo is not reported)
    let built = s.context("built", &[("Dockerfile", df), ("secret.txt", "s")]);
    let r = s.build(&built, "c:2", &["--call", "build", "--progress", "plain"]).ok();
    assert!(r.stdout.contains(" 1 warning found (use --debug to expand):\n"), "{}", r.stdout);
    assert!(r.stdout.contains("$PAHT"), "{}", r.stdout);
    assert_eq!(s.save("c:2").find("ran").map(|e| e.data.clone()), Some(b"ran\n".to_vec()));
}

#[test]
fn metadata_file_gets_buildx_warnings_when_asked() {
    let s = Slipway::new();
    let ctx = s.context("m", &[("Dockerfile", "FROM scratch as base\nCOPY Dockerfile .\n")]);
    let md = s.dir.path().join("md.json");
    let run = |env: Option<&str>| {
        let mut c = Command::new(bin());
        c.arg("--root").arg(s.root()).args(["build", "-t", "m:1", "--metadata-file"]).arg(&md).arg(&ctx);
        if let Some(v) = env {
            c.env("BUILDX_METADATA_WARNINGS", v);
        } else {
            c.env_remove("BUILDX_METADATA_WARNINGS");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&md).unwrap()).unwrap();
        v
    };
    // buildx's testBuildMetadataWarnings: only with BUILDX_METADATA_WARNINGS=true
    let v = run(None);
    assert!(v.get("buildx.build.warnings").is_none(), "{v}");
    assert!(v.get("containerimage.config.digest").is_some(), "{v}");
    let v = run(Some("true"));
    let w = v["buildx.build.warnings"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(w.len(), 1, "{v}");
    // client.VertexWarning: short and detail are Go byte slices, so base64
    use base64::Engine;
    let short = base64::engine::general_purpose::STANDARD.decode(w[0]["short"].as_str().unwrap()).unwrap();
    assert_eq!(String::from_utf8(short).unwrap(), format!("{FROM_AS} (line 1)"));
    assert_eq!(w[0]["url"], "https://docs.docker.com/go/dockerfile/rule/from-as-casing/");
    assert_eq!(w[0]["level"], 1);
    assert_eq!(w[0]["range"][0]["start"]["line"], 1);
    assert_eq!(w[0]["sourceInfo"]["filename"], "Dockerfile");
}

#[test]
fn two_stages_of_one_name_build_with_a_warning() {
    let s = Slipway::new();
    s.base("base:1");
    // testDuplicateStageName: BuildKit builds it and warns; the name means the last stage of it
    // (for FROM: the last before it), as BuildKit's dispatch states look names up
    let df = "FROM base:1 AS b\nRUN echo first > /which\nFROM base:1 AS b\nRUN echo second > /which\nFROM b AS c\nRUN cp /which /c\nFROM scratch\nCOPY --from=b /which /which\nCOPY --from=c /c /c\n";
    let ctx = s.context("dup", &[("Dockerfile", df)]);
    let r = s.build(&ctx, "dup:1", &["--progress", "plain"]).ok();
    let warn = "DuplicateStageName: Duplicate stage name \"b\", stage names should be unique (line 3)";
    assert!(r.stdout.contains(&format!("WARN: {warn}\n")), "{}", r.stdout);
    assert!(r.stdout.ends_with(&format!(" 1 warning found (use --debug to expand):\n - {warn}\n")), "{}", r.stdout);
    let img = s.save("dup:1");
    assert_eq!(img.find("which").map(|e| e.data.clone()), Some(b"second\n".to_vec()));
    assert_eq!(img.find("c").map(|e| e.data.clone()), Some(b"second\n".to_vec()));
    // --target names the last one too
    let r = s.build(&ctx, "dup:2", &["--target", "b"]).ok();
    assert!(!r.stdout.contains("echo first"), "{}", r.stdout);
    assert_eq!(s.save("dup:2").find("which").map(|e| e.data.clone()), Some(b"second\n".to_vec()));
}

#[test]
fn warnings_found_before_a_dockerfile_error_are_shown() {
    let s = Slipway::new();
    // testWarningsBeforeError: StageNameCasing and MaintainerDeprecated, then the unknown
    // instruction fails the build (and the check)
    let ctx =
        s.context("bad", &[("Dockerfile", "\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\n")]);
    let casing = "StageNameCasing: Stage name 'BadStageName' should be lowercase (line 2)";
    let maint = "MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 3)";
    let r = s.build(&ctx, "bad:1", &["--progress", "plain"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Dockerfile:4") && r.stderr.contains("BADCMD"), "{}", r.stderr);
    assert!(r.stdout.starts_with(&format!("WARN: {casing}\nWARN: {maint}\n")), "{}", r.stdout);
    assert!(
        r.stdout.ends_with(&format!(" 2 warnings found (use --debug to expand):\n - {casing}\n - {maint}\n")),
        "{}",
        r.stdout
    );
    let r = s.run(&["build", "--check", &ctx.to_string_lossy()]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("Check complete, 2 warnings have been found!\n"), "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "\nWARNING: MaintainerDeprecated - https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/\n"
        ),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("BADCMD"), "{}", r.stderr);
    // format=json: BuildKit's LintResults with the error as buildError, then the error
    let r = s.run(&["build", "--call=check,format=json", &ctx.to_string_lossy()]);
    assert_ne!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    assert_eq!(v["warnings"].as_array().map(|a| a.len()), Some(2), "{v}");
    assert_eq!(v["buildError"]["location"]["ranges"][0]["start"]["line"], 4, "{v}");
    assert!(v["buildError"]["message"].as_str().is_some_and(|m| m.contains("BADCMD")), "{v}");
    assert!(r.stderr.contains("BADCMD"), "{}", r.stderr);
}

#[test]
fn call_targets_lists_the_stages() {
    let s = Slipway::new();
    // buildx's tests/build.go "targets": names, descriptions from the comment above, the last
    // stage the default; nothing is built, no base image is needed
    let df = "\n# build defines stage for compiling the binary\nFROM alpine AS build\nRUN true\n\nFROM busybox as second\nRUN false\n\nFROM alpine\nRUN false\n\n# binary returns the compiled binary\nFROM second AS binary\n\t";
    let ctx = s.context("t", &[("Dockerfile", df)]);
    let c = ctx.to_string_lossy().into_owned();
    let r = s.run(&["build", "--call", "targets", &c]).ok();
    assert_eq!(
        r.stdout,
        "TARGET           DESCRIPTION\nbuild            defines stage for compiling the binary\nsecond           \n                 \nbinary (default) returns the compiled binary\n"
    );
    let r = s.run(&["build", "--call=targets,format=json", &c]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    let t = v["targets"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(t.len(), 4, "{v}");
    assert_eq!(
        (&t[0]["name"], &t[0]["description"], &t[0]["base"]),
        (&"build".into(), &"defines stage for compiling the binary".into(), &"alpine".into())
    );
    assert_eq!((&t[1]["name"], t[1].get("description"), &t[1]["base"]), (&"second".into(), None, &"busybox".into()));
    assert_eq!((t[2].get("name"), &t[2]["base"]), (None, &"alpine".into()));
    assert_eq!((&t[3]["name"], &t[3]["default"], &t[3]["base"]), (&"binary".into(), &true.into(), &"second".into()));
    assert_eq!(v["sources"].as_array().map(|a| a.len()), Some(1));
    assert!(!images(&s).contains("alpine"), "{}", images(&s));
    // an unknown call is refused, naming it
    let r = s.run(&["build", "--call", "bogus", &c]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--call bogus: unknown call"), "{}", r.stderr);
}

#[test]
fn call_check_json_and_ignorestatus() {
    let s = Slipway::new();
    // buildx's "check metadata" Dockerfile: three ConsistentInstructionCasing (no FromAsCasing:
    // a FROM of mixed case leaves `as` to that rule)
    let df = "\nfrOM busybox as base\ncOpy Dockerfile .\nfrom scratch\nCOPy --from=base \\\n  /Dockerfile \\\n  /\n\t";
    let ctx = s.context("j", &[("Dockerfile", df)]);
    let c = ctx.to_string_lossy().into_owned();
    s.base("busybox");
    let r = s.run(&["build", "--call=check,format=json", &c]);
    assert_eq!(r.code, 1, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    let rules: Vec<&str> = v["warnings"].as_array().unwrap().iter().map(|w| w["ruleName"].as_str().unwrap()).collect();
    assert_eq!(rules, ["ConsistentInstructionCasing"; 3], "{v}");
    // Go's field order
    let first = r.stdout.find("\"ruleName\"").zip(r.stdout.find("\"detail\""));
    assert!(
        first.is_some_and(|(a, b)| a < b) && r.stdout.find("\"warnings\"") < r.stdout.find("\"sources\""),
        "{}",
        r.stdout
    );
    assert_eq!(v["sources"][0]["filename"], "Dockerfile", "{v}");
    // buildx's "check metadata": --metadata-file gets the result as result.json, no image
    let md = s.dir.path().join("check-md.json");
    let r = s.run(&["build", "--call=check,format=json", "--metadata-file", &md.to_string_lossy(), &c]);
    assert_eq!(r.code, 1, "{r:?}");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&md).unwrap()).unwrap();
    assert_eq!(m["result.json"]["warnings"].as_array().map(|a| a.len()), Some(3), "{m}");
    assert!(m.get("containerimage.digest").is_none() && m.get("buildx.build.ref").is_none(), "{m}");
    // ignorestatus: the same report, exit 0
    let r = s.run(&["build", "--call=check,ignorestatus=true", &c]).ok();
    assert!(r.stdout.starts_with("Check complete, "), "{}", r.stdout);
    // nothing found: null lists, as Go writes a nil slice
    let clean = s.context("clean", &[("Dockerfile", "FROM busybox\n")]);
    let r = s.run(&["build", "--call=check,format=json", &clean.to_string_lossy()]).ok();
    assert_eq!(r.stdout, "{\n  \"warnings\": null,\n  \"sources\": null\n}\n");
}

#[test]
fn check_fails_when_a_base_image_does_not_resolve() {
    let s = Slipway::new();
    // BuildKit's lint request resolves base images as a build does, and fails with the error
    // (buildx prints the warnings found first): nothing listens on port 1 of loopback
    let ctx = s.context("nobase", &[("Dockerfile", "FROM 127.0.0.1:1/none:1 as x\nCOPY $foo .\n")]);
    let r = s.run(&["build", "--check", &ctx.to_string_lossy()]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("127.0.0.1:1/none:1"), "{}", r.stderr);
    assert!(r.stdout.starts_with("Check complete, 1 warning has been found!\n"), "{}", r.stdout);
    assert!(r.stdout.contains("WARNING: FromAsCasing"), "{}", r.stdout);
}

#[test]
fn call_outline_shows_what_a_target_takes() {
    let s = Slipway::new();
    // buildx's tests/build.go "outline" (--build-arg=BAR=678 --target=target): only the stages
    // the target needs count; a secret's id defaults to its target's base name, ssh's to
    // "default"; nothing is built or pulled
    let df = "\nFROM busybox AS first\nRUN --mount=type=secret,target=/etc/passwd,required=true --mount=type=ssh true\n\nFROM alpine AS second\nRUN --mount=type=secret,id=unused --mount=type=ssh,id=ssh2 true\n\nFROM scratch AS third\nARG BAR\nRUN --mount=type=secret,id=second${BAR} true\n\nFROM third AS target\nCOPY --from=first /foo /\nRUN --mount=type=ssh,id=ssh3,required true\n\nFROM second\n\t";
    let ctx = s.context("o", &[("Dockerfile", df)]);
    let c = ctx.to_string_lossy().into_owned();
    let r = s.run(&["build", "--build-arg=BAR=678", "--target=target", "--call=outline", &c]).ok();
    assert_eq!(
        r.stdout,
        "TARGET: target\n\nBUILD ARG   VALUE   DESCRIPTION\nBAR         678     \n\nSECRET      REQUIRED\npasswd      true\nsecond678   \n\nSSH       REQUIRED\ndefault   \nssh3      true\n\n"
    );
    let r = s.run(&["build", "--build-arg=BAR=678", "--target=target", "--call=outline,format=json", &c]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    assert_eq!(v["name"], "target");
    assert_eq!(v["args"][0]["name"], "BAR");
    assert_eq!(v["args"][0]["value"], "678");
    assert_eq!(v["secrets"][0]["name"], "passwd");
    assert_eq!(v["secrets"][0]["required"], true);
    assert_eq!(v["ssh"][1]["name"], "ssh3");
    assert!(!images(&s).contains("busybox"), "{}", images(&s));
    // buildx's outline-quiet-output: -q prints the same outline, without a leading newline
    let small = s.context("q", &[("Dockerfile", "\nFROM busybox\nARG FOO=bar\n")]);
    let q = s.run(&["build", "-q", "--call=outline", &small.to_string_lossy()]).ok();
    assert_eq!(q.stdout, "BUILD ARG   VALUE   DESCRIPTION\nFOO         bar     \n\n");
}

#[test]
fn base_image_of_another_platform_is_warned_about() {
    let s = Slipway::new();
    // testBaseImagePlatformMismatch: an image made for another platform than the build's (no
    // RUN, so no emulator is needed), then a FROM of it for the host's platform
    let (other, host) = if std::env::consts::ARCH == "aarch64" {
        ("linux/amd64", "linux/arm64")
    } else {
        ("linux/arm64", "linux/amd64")
    };
    let a = s.context("a", &[("Dockerfile", "FROM scratch\nCOPY foo /foo\n"), ("foo", "test")]);
    s.build(&a, "other:1", &["--platform", other]).ok();
    let b = s.context("b", &[("Dockerfile", "\nFROM other:1\nENV foo=bar\n")]);
    let want = format!(
        "InvalidBaseImagePlatform: Base image other:1 was pulled with platform \"{other}\", expected \"{host}\" for current build (line 2)"
    );
    // no --platform: the store's image is taken as it is (with one, slipway would pull that
    // platform's image instead)
    let r = s.build(&b, "mine:1", &["--progress", "plain"]).ok();
    assert!(r.stdout.contains(&format!("WARN: {want}\n")), "{}", r.stdout);
    // it has no docs page in BuildKit: the report names the rule alone
    let r = s.run(&["build", "--check", &b.to_string_lossy()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("\nWARNING: InvalidBaseImagePlatform\nBase image other:1 was pulled"), "{}", r.stdout);
}

/// `# syntax=docker/dockerfile:1.4` pins an older frontend: BuildKit runs that image, whose
/// parser refuses the flags added after it (reference.md's "Minimum Dockerfile version"
/// tables; `COPY --parents` is 1.20, `--exclude` 1.19) as BuildKit's bflag.go words it
/// (`unknown flag: parents` before 1.11, `unknown flag: --parents` from 1.11), naming the line.
/// `1`, no syntax, and the labs image from 1.7 (dfparents) take them.
#[test]
fn a_pinned_older_frontend_refuses_newer_flags() {
    let s = Slipway::new();
    let files = |syntax: &str| format!("{syntax}FROM scratch\nCOPY x/f /f\nCOPY --parents x/f /p/\n");
    for (syntax, msg) in [
        ("# syntax=docker/dockerfile:1.4\n", "Dockerfile:4: unknown flag: parents"),
        ("# syntax=docker/dockerfile:1.4.3\n", "Dockerfile:4: unknown flag: parents"),
        ("# syntax=docker.io/docker/dockerfile-upstream:1.4\n", "Dockerfile:4: unknown flag: parents"),
        ("# syntax=docker/dockerfile:1.6-labs\n", "Dockerfile:4: unknown flag: parents"),
        ("# syntax=docker/dockerfile:1.19\n", "Dockerfile:4: unknown flag: --parents"),
    ] {
        let ctx = s.context("pin-old", &[("Dockerfile", &files(syntax)), ("x/f", "f\n")]);
        let r = s.build(&ctx, "pin:old", &[]);
        assert_ne!(r.code, 0, "{syntax}{}", r.stdout);
        assert!(r.stderr.contains(msg), "{syntax}{}", r.stderr);
        assert!(!r.stdout.contains("Step 1/"), "{syntax}{}", r.stdout);
        assert!(!images(&s).contains("pin"), "{}", images(&s));
    }
    for (i, syntax) in
        ["# syntax=docker/dockerfile:1\n", "", "# syntax=docker/dockerfile:1.7-labs\n"].iter().enumerate()
    {
        let ctx = s.context("pin-new", &[("Dockerfile", &files(syntax)), ("x/f", "f\n")]);
        let tag = format!("pin:new{i}");
        s.build(&ctx, &tag, &[]).ok();
        assert_eq!(s.save(&tag).find("p/x/f").map(|e| e.data.clone()), Some(b"f\n".to_vec()), "{syntax}");
    }
    // --exclude is 1.19's: a 1.19 pin builds with it, and excludes
    let df = "# syntax=docker/dockerfile:1.19\nFROM scratch\nCOPY --exclude=x/g x /e/\n";
    let ctx = s.context("pin-19", &[("Dockerfile", df), ("x/f", "f\n"), ("x/g", "g\n")]);
    s.build(&ctx, "pin:19", &[]).ok();
    let img = s.save("pin:19");
    assert_eq!(img.find("e/f").map(|e| e.data.clone()), Some(b"f\n".to_vec()));
    assert!(img.find("e/g").is_none());
}

/// A frontend before 1.8 has no build checks and does not read `# check=` (reference.md: check
/// "since Dockerfile v1.8.0"): with a 1.7 pin, `error=true` and a FromAsCasing violation build
/// without a warning; a 1.8 pin fails as the newest frontend does.
#[test]
fn a_frontend_before_1_8_runs_no_checks() {
    let s = Slipway::new();
    let df = |v: &str| {
        format!("# syntax=docker/dockerfile:{v}\n# check=error=true\nFROM scratch as base\nCOPY Dockerfile .\n")
    };
    let ctx = s.context("pin-17", &[("Dockerfile", &df("1.7"))]);
    let r = s.build(&ctx, "pin:17", &["--progress", "plain"]).ok();
    assert!(!r.stdout.contains("FromAsCasing") && !r.stdout.contains("warning"), "{}", r.stdout);
    assert!(s.save("pin:17").find("Dockerfile").is_some());
    let ctx = s.context("pin-18", &[("Dockerfile", &df("1.8"))]);
    let r = s.build(&ctx, "pin:18", &["--progress", "plain"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stderr.contains("lint violation found for rules: FromAsCasing"), "{}", r.stderr);
}
