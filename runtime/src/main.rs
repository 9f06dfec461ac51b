//! The `skiff` binary: parse runc's command line, run it, print errors the way callers read them.

#![deny(unsafe_code)]

use clap::Parser;

fn main() {
    let cli = skiff::cli::Cli::parse();
    let code = match skiff::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = e.to_string();
            skiff::log::error(&msg);
            eprintln!("skiff: {msg}");
            1
        }
    };
    std::process::exit(code);
}
