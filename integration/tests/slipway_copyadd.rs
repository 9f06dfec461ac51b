//! COPY and ADD as BuildKit does them: `--link`, `--parents`, `ADD` of URLs and git
//! repositories, `--checksum`, and the semantics where slipway deviated from BuildKit (ARG/ENV
//! precedence, `--chown` with a user name alone, wildcards that match nothing). Each case builds
//! a real Dockerfile, saves the image and checks its files; where docker 20.10's BuildKit can
//! build the same Dockerfile (`integration::buildkit`), the test builds it there too and
//! compares, and where it cannot (frontend features newer than 20.10's), the comment says what
//! BuildKit's own tests and code expect.

use integration::buildkit::BuildKit;
use integration::slipway::{Entry, Saved, Slipway};

/// Every entry of every layer, in order: (layer index, path without a trailing `/`, kind, mode,
/// uid, gid), mtimes aside.
fn entries(img: &Saved) -> Vec<(usize, String, char, u32, u64, u64)> {
    let mut out = Vec::new();
    for (i, l) in img.layers.iter().enumerate() {
        for e in l {
            out.push((i, e.path.trim_end_matches('/').to_string(), e.kind, e.mode & 0o7777, e.uid, e.gid));
        }
    }
    out
}

fn find<'a>(img: &'a Saved, path: &str) -> &'a Entry {
    img.find(path).unwrap_or_else(|| panic!("{path} not in the image: {:#?}", entries(img)))
}

fn env(img: &Saved) -> Vec<String> {
    img.cfg("Env")
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// A later ARG replaces an ENV of the same name (BuildKit keeps both in one list, the LLB
/// state's env): in expansion and in RUN's environment; the config keeps the ENV value.
#[test]
fn an_arg_after_an_env_of_the_same_name_wins_as_in_buildkit() {
    let s = Slipway::new();
    let df = "FROM scratch\nENV A=env\nARG A=arg\nENV B=${A}\nARG C=argc\nENV C=envc\nENV D=${C}\n";
    let ctx = s.context("argenv", &[("Dockerfile", df)]);
    s.build(&ctx, "argenv", &[]).ok();
    let img = s.save("argenv");
    let want = ["A=env", "B=arg", "C=envc", "D=envc"];
    assert_eq!(env(&img)[1..], want, "{:?}", env(&img));
    // RUN sees the ARG's value
    s.base("argenv-base");
    let df = "FROM argenv-base\nENV A=env\nARG A=arg\nRUN echo \"$A\" > /a\n";
    let run_ctx = s.context("argenv-run", &[("Dockerfile", df)]);
    s.build(&run_ctx, "argenv-run", &[]).ok();
    let ran = s.save("argenv-run");
    assert_eq!(find(&ran, "a").data, b"arg\n");
    let Some(bk) = BuildKit::shared() else { return };
    bk.build(&ctx, "argenv", &[]).ok();
    let theirs: Vec<String> = serde_json::from_str(&bk.inspect("argenv", "{{json .Config.Env}}")).expect("Env");
    assert_eq!(theirs, env(&img), "config Env: BuildKit vs slipway");
    // the same RUN through BuildKit, on slipway's busybox image
    let tar = s.dir.path().join("base.tar");
    s.run(&["save", "argenv-base", "-o", &tar.to_string_lossy()]).ok();
    bk.run(&["load", "-i", &tar.to_string_lossy()]).ok();
    bk.build(&run_ctx, "argenv-run", &[]).ok();
    assert_eq!(find(&bk.save("argenv-run"), "a").data, b"arg\n", "BuildKit's RUN");
}
