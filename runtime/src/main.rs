//! The `skiff` binary: parse runc's command line, run it, print errors the way callers read them.

#![deny(unsafe_code)]

use clap::Parser;

fn main() {
    skiff::trace::init();
    skiff::trace::point("main");
    let cli = match skiff::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print to stdout and exit 0
        Err(e) if !e.use_stderr() => e.exit(),
        // no command at all: the help, as clap prints it
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        // a usage error: clap's message (with the usage line), prefixed as every skiff error is
        Err(e) => {
            let text = e.render().to_string();
            eprint!("skiff: {}", text.strip_prefix("error: ").unwrap_or(&text));
            std::process::exit(2);
        }
    };
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
