//! Records the git commit for `skiff --version`, and runs again whenever HEAD may name
//! another commit (see build/git_head.rs).
#[path = "build/git_head.rs"]
mod git_head;

fn main() {
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| ".".into()));
    let (commit, watch) = git_head::head(&dir);
    println!("cargo:rustc-env=SKIFF_COMMIT={commit}");
    // with no line of its own cargo would run this again on any change in the package
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/git_head.rs");
    for p in watch {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
