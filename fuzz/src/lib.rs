//! One function per fuzz target: each feeds arbitrary bytes to one of the readers that take
//! input from strangers (config.json, Dockerfiles and their words, .dockerignore, image and
//! layer tars). They must never panic and never hang; errors are fine. `fuzz_targets/` wraps
//! them for libFuzzer (`make fuzz`); `tests/smoke.rs` runs them on seeds and mutations in CI.

pub mod seeds;

/// Every target, by the name of its function and fuzz_targets/ file.
pub const TARGETS: &[&str] =
    &["config", "dockerfile", "shell_word", "dockerignore", "tar_extract", "tar_load", "estargz"];

use std::path::Path;

use slipway::dockerfile::shell::Lexer;

/// The function of the target named `name` (one of [`TARGETS`]).
pub fn target(name: &str) -> Option<fn(&[u8])> {
    Some(match name {
        "config" => config,
        "dockerfile" => dockerfile,
        "shell_word" => shell_word,
        "dockerignore" => dockerignore,
        "tar_extract" => tar_extract,
        "tar_load" => tar_load,
        "estargz" => estargz,
        _ => return None,
    })
}

/// config.json: parse, then validate what parsed.
pub fn config(data: &[u8]) {
    if let Ok(spec) = skiff::bundle::parse_config(data) {
        let _ = skiff::bundle::validate(&spec);
    }
}

/// A Dockerfile: parse, then type every instruction and build the stage graph.
pub fn dockerfile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(df) = slipway::dockerfile::parser::parse(text) {
        for node in &df.nodes {
            let _ = slipway::instructions::parse_node(node);
        }
        let _ = slipway::instructions::stages(&df);
    }
}

/// Word expansion: the first byte picks the escape character, the rest is `word\0env`.
pub fn shell_word(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let escape = if first % 2 == 0 { '\\' } else { '`' };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let (word, env_text) = text.split_once('\0').unwrap_or((text, "A=1\nB=x y\nEMPTY="));
    let env: Vec<(String, String)> =
        env_text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let lexer = Lexer::new(escape);
    let _ = lexer.process_word(word, &env);
    let _ = lexer.process_words(word, &env);
    let _ = Lexer::expand_heredoc(word, &env);
}

/// .dockerignore: the patterns, then `\0`-separated paths matched against them.
pub fn dockerignore(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (patterns, paths) = text.split_once('\0').unwrap_or((text, "a/b/c\0Dockerfile\0.dockerignore\0x"));
    let Ok(m) = slipway::dockerignore::Matcher::parse(patterns) else { return };
    for p in paths.split('\0') {
        let _ = m.excluded(p);
        let _ = m.can_prune(p);
    }
}

/// A layer or ADD archive: extracted into a fresh directory in each whiteout mode.
pub fn tar_extract(data: &[u8]) {
    use slipway::layer::Whiteouts;
    for mode in [Whiteouts::Keep, Whiteouts::Apply, Whiteouts::Overlay] {
        let dir = tempfile::tempdir().expect("tempdir");
        let _ = slipway::layer::extract(data, dir.path(), mode);
        remove_tree(dir.path());
    }
}

/// `slipway load`: an archive (docker or OCI layout) into a fresh store.
pub fn tar_load(data: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input.tar");
    std::fs::write(&input, data).expect("write input");
    if let Ok(store) = slipway::store::Store::open(&dir.path().join("store")) {
        let _ = slipway::archive::load(&store, &input);
    }
    remove_tree(dir.path());
}

/// eStargz: the bytes as a layer tar made eStargz (`compression=estargz`, forced on a layer
/// that came from elsewhere; small chunks, so that chunking runs), then as a blob read as
/// eStargz (a pulled base's: its footer, its TOC, the tar it was made of).
pub fn estargz(data: &[u8]) {
    use slipway::estargz;
    let _ = estargz::write(&mut &data[..], std::io::sink(), 1, 1024);
    let dir = tempfile::tempdir().expect("tempdir");
    let blob = dir.path().join("blob");
    std::fs::write(&blob, data).expect("write input");
    if let Ok(Some(off)) = estargz::toc_offset(&blob) {
        let _ = estargz::toc_digest(&blob, off);
        if let Ok(mut r) = estargz::open_payload(&blob, off) {
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        }
    }
}

/// Removes what a target extracted, including read-only directories it made.
fn remove_tree(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if entry.file_type().is_dir() {
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o700));
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
