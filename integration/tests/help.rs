//! What `--help` tells a new user, checked from the outside: every subcommand of skiff and
//! slipway describes every argument and flag, lists the values a flag allows, gives examples,
//! and does not repeat the global flags; skiff has every flag runc 1.1 has (but a listed few);
//! and `make install` puts man pages and shell completions made from the same definitions.

use std::path::{Path, PathBuf};
use std::process::Command;

fn help(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).arg("--help").output().unwrap_or_else(|e| panic!("{bin:?}: {e}"));
    assert!(out.status.success(), "{bin:?} {args:?} --help: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommands `--help` lists (not `help` itself).
fn subcommands(top: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in top.lines() {
        if line == "Commands:" {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with("  ") {
                break;
            }
            let name = line.split_whitespace().next().unwrap_or_default();
            if name != "help" {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// The entries (`-f, --file <FILE>`, `<CONTEXT>`) of the Arguments and Options sections of a
/// help, each with its description: on the same line after two spaces or more (`-h`'s format), or
/// on the lines under it, indented further (`--help`'s).
fn entries(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut section = false;
    for line in text.lines() {
        if line == "Arguments:" || line == "Options:" {
            section = true;
            continue;
        }
        if !line.starts_with(' ') && !line.is_empty() {
            section = false;
        }
        if !section || line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let starts_entry = (indent == 2 || indent == 6) && line.trim_start().starts_with(['-', '<', '[']);
        if starts_entry {
            let body = line.trim();
            let (spec, desc) = match body.find("  ") {
                Some(at) => (body[..at].to_string(), body[at..].trim().to_string()),
                None => (body.to_string(), String::new()),
            };
            out.push((spec, desc));
        } else if let Some(last) = out.last_mut() {
            last.1.push(' ');
            last.1.push_str(line.trim());
        }
    }
    out
}

/// The long flags (`--file`) in a help text's entries.
fn flags(text: &str) -> Vec<String> {
    entries(text)
        .iter()
        .filter_map(|(spec, _)| {
            spec.split([',', ' ', '[', '=']).map(str::trim).find(|w| w.starts_with("--")).map(String::from)
        })
        .collect()
}

fn check_every_entry_is_described(bin: &Path, globals: &[&str]) {
    let top = help(bin, &[]);
    let subs = subcommands(&top);
    assert!(subs.len() > 5, "{top}");
    assert!(top.contains("Examples:"), "{bin:?} --help has no examples");
    for sub in &subs {
        let text = help(bin, &[sub]);
        for (spec, desc) in entries(&text) {
            let desc = desc.trim();
            assert!(
                desc.split_whitespace().count() >= 2,
                "{bin:?} {sub}: {spec:?} has no description: {desc:?}\n{text}"
            );
        }
        assert!(text.contains("Examples:"), "{bin:?} {sub} --help has no examples\n{text}");
        for g in globals {
            assert!(!flags(&text).iter().any(|f| f == g), "{bin:?} {sub} --help repeats the global {g}");
        }
    }
    for (spec, desc) in entries(&top) {
        assert!(desc.split_whitespace().count() >= 2, "{bin:?}: {spec:?} has no description");
    }
}

fn skiff() -> PathBuf {
    integration::workspace_dir().join("target/release/skiff")
}

#[test]
fn skiff_help_describes_every_argument_and_flag() {
    check_every_entry_is_described(&skiff(), &["--root", "--log", "--log-format", "--debug", "--systemd-cgroup"]);
    // the values a flag allows are listed
    assert!(help(&skiff(), &[]).contains("[possible values: text, json]"));
    assert!(help(&skiff(), &["list"]).contains("[possible values: table, json]"));
    assert!(help(&skiff(), &["ps"]).contains("[possible values: table, json]"));
    // `spec --rootless` is spec's own flag and says what it writes
    let spec = entries(&help(&skiff(), &["spec"]));
    let rootless = spec.iter().find(|(s, _)| s.starts_with("--rootless")).expect("spec --rootless");
    assert!(rootless.1.contains("user namespace"), "{rootless:?}");
}

#[test]
fn slipway_help_describes_every_argument_and_flag() {
    let bin = integration::slipway::bin();
    check_every_entry_is_described(&bin, &["--root", "--debug"]);
    let build = help(&bin, &["build"]);
    for values in ["[possible values: auto, plain, tty, quiet, none]", "[possible values: default, none, host]"] {
        assert!(build.contains(values), "build --help lacks {values}");
    }
    assert!(help(&bin, &["save"]).contains("[possible values: docker, oci]"));
}

#[test]
fn skiff_has_every_flag_of_runc() {
    let Ok(runc) = which("runc") else {
        integration::skip("runc is not installed (make deps installs it)");
        return;
    };
    // runc 1.1's flags skiff does not have, and why
    let lacking = [
        ("run", "--no-subreaper"),       // skiff never makes itself a subreaper: the init is its child
        ("exec", "--cgroup"),            // exec into a sub-cgroup: not implemented
        ("update", "--l3-cache-schema"), // Intel RDT: linux.intelRdt is refused
        ("update", "--mem-bw-schema"),   // Intel RDT
    ];
    for sub in subcommands(&help(&skiff(), &[])) {
        let out = Command::new(&runc).args([sub.as_str(), "--help"]).output().expect("runc --help");
        let runc_help = String::from_utf8_lossy(&out.stdout);
        let theirs: Vec<&str> = runc_help
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("--"))
            .map(|l| l.split([' ', ',', '=']).next().unwrap_or_default())
            .collect();
        let ours = flags(&help(&skiff(), &[&sub]));
        for f in theirs {
            let flag = format!("--{f}");
            if f == "help" || lacking.contains(&(sub.as_str(), flag.as_str())) {
                continue;
            }
            assert!(ours.contains(&flag), "runc {sub} has {flag}, skiff {sub} has not: {ours:?}");
        }
    }
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
        .ok_or(())
}

#[test]
fn make_install_puts_man_pages_and_completions() {
    let ws = integration::workspace_dir();
    if !ws.join("target/release/docgen").exists() {
        panic!("target/release/docgen is missing: `make build` builds it");
    }
    let dest = tempfile::tempdir().expect("tempdir");
    let out = Command::new("make")
        .current_dir(&ws)
        .args(["-s", "install-files", "PREFIX=/usr"])
        .arg(format!("DESTDIR={}", dest.path().display()))
        .output()
        .expect("make");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let usr = dest.path().join("usr");
    for f in
        ["bin/skiff", "bin/slipway", "share/bash-completion/completions/skiff", "share/zsh/site-functions/_slipway"]
    {
        assert!(usr.join(f).is_file(), "{f} not installed");
    }
    assert!(usr.join("share/fish/vendor_completions.d/skiff.fish").is_file());
    // a page per subcommand, with its flags described
    let man = usr.join("share/man/man1");
    for sub in subcommands(&help(&skiff(), &[])) {
        let page = std::fs::read_to_string(man.join(format!("skiff-{sub}.1")))
            .unwrap_or_else(|e| panic!("skiff-{sub}.1: {e}"));
        for f in flags(&help(&skiff(), &[&sub])) {
            assert!(page.contains(&f.replace('-', "\\-")), "skiff-{sub}.1 lacks {f}");
        }
    }
    let page = std::fs::read_to_string(man.join("slipway-build.1")).expect("slipway-build.1");
    assert!(page.contains("\\-\\-build\\-arg") && page.contains("Examples:"), "slipway-build.1");
    // bash completes a subcommand from its prefix, and a flag of it
    let script = format!(
        // as bash calls a completion function: the command, the word, the word before it
        "source {}; COMP_WORDS=(skiff ru); COMP_CWORD=1; _skiff skiff ru skiff; echo \"${{COMPREPLY[@]}}\"; \
         COMP_WORDS=(skiff run --ke); COMP_CWORD=2; _skiff skiff --ke run; echo \"${{COMPREPLY[@]}}\"",
        usr.join("share/bash-completion/completions/skiff").display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().expect("bash");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "run\n--keep\n", "{}", String::from_utf8_lossy(&out.stderr));
}
