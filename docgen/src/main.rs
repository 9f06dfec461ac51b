//! `docgen OUTDIR`: writes the man pages (OUTDIR/man/NAME.1 and NAME-COMMAND.1) and the bash, zsh
//! and fish completions (OUTDIR/completions/) of skiff and slipway, generated from the same clap
//! definitions the binaries parse with, so they cannot drift from `--help`. `make install`
//! installs them.

use clap::CommandFactory;
use clap_complete::Shell;
use std::path::{Path, PathBuf};

fn main() {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("docgen: usage: docgen OUTDIR");
        std::process::exit(2);
    };
    if let Err(e) = write_all(&out) {
        eprintln!("docgen: {e}");
        std::process::exit(1);
    }
}

fn write_all(out: &Path) -> Result<(), String> {
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    for cmd in [skiff::cli::Cli::command(), slipway::cli::Cli::command()] {
        // one line in the pages' header (skiff's --version has three: version, commit, spec)
        let mut cmd = cmd.version(env!("CARGO_PKG_VERSION"));
        let name = cmd.get_name().to_string();
        // the page of each command and of each of its subcommands (NAME-COMMAND.1)
        clap_mangen::generate_to(cmd.clone(), &man).map_err(|e| format!("man pages of {name}: {e}"))?;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            clap_complete::generate_to(shell, &mut cmd, &name, &completions)
                .map_err(|e| format!("{shell} completion of {name}: {e}"))?;
        }
    }
    Ok(())
}
