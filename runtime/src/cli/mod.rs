//! runc's command line, as containerd's shim, conmon and dockerd call it. One file per
//! subcommand, glue only: its arguments, then parse, call `container::`, print. This file holds
//! the global flags and the dispatch.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod resume;
mod run;
mod spec;
mod start;
mod state;
mod update;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::{Error, Result};
use crate::state::Root;

const VERSION: &str =
    concat!("version ", env!("CARGO_PKG_VERSION"), "\ncommit: ", env!("SKIFF_COMMIT"), "\nspec: 1.2.0");

const ABOUT: &str = "An OCI runtime with runc's command line";

const LONG_ABOUT: &str = "\
An OCI runtime with runc's command line.

skiff runs an OCI bundle (a directory with config.json and a root filesystem) through the OCI
lifecycle: create, start, then kill and delete. containerd's shim, conmon (podman) and dockerd drive
it as they drive runc. It is strict: every field of config.json is applied, or refused with an error
naming it (`skiff features` lists what this skiff supports).

The global options go before the command, as with runc.";

const EXAMPLES: &str = "\
Examples:
  skiff spec && skiff run demo                 a shell in the bundle of the current directory
  skiff --root /run/mine run -d -b /srv/app app    run detached, with a private state directory
  skiff list
  skiff exec -t demo sh                        another shell in the running container
  skiff kill demo KILL && skiff delete demo";

#[derive(Parser, Debug)]
#[command(name = "skiff", version = VERSION, about = ABOUT, long_about = LONG_ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    /// Directory for the state of containers: one subdirectory per container [default: /run/skiff,
    /// or $XDG_RUNTIME_DIR/skiff when run rootless, as runc]. Put it on a tmpfs (it must not
    /// outlive a reboot), and give each user of skiff its own.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Append log messages to this file (containerd's shim reads the last error from it).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Format of the log file: text lines, or one JSON object per line (as runc writes it).
    #[arg(long = "log-format", value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Log debug messages too, among them each step of create.
    #[arg(long)]
    pub debug: bool,
    /// Make containers' cgroups systemd scope units (cgroupsPath "slice:prefix:name"). Read by
    /// create and run; other commands use the driver the container was created with. Given
    /// twice is fine, as with runc.
    #[arg(long = "systemd-cgroup", overrides_with = "systemd_cgroup")]
    pub systemd_cgroup: bool,
    /// Whether cgroups skiff cannot write may be left out: true, false or auto (auto: when run by a
    /// user other than root or in a user namespace, as runc). Go's boolean forms (1, t, TRUE, ...)
    /// are taken too, as runc takes them.
    #[arg(long, value_name = "auto|true|false", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Create(create::CreateArgs),
    Start(start::StartArgs),
    State(state::StateArgs),
    Kill(kill::KillArgs),
    Delete(delete::DeleteArgs),
    Run(run::RunArgs),
    #[command(alias = "ps-all")]
    List(list::ListArgs),
    Exec(exec::ExecArgs),
    Update(update::UpdateArgs),
    Pause(pause::PauseArgs),
    Resume(resume::ResumeArgs),
    Ps(ps::PsArgs),
    Events(events::EventsArgs),
    /// Print what this skiff supports (the runtime-spec features document).
    #[command(after_help = "Examples:\n  skiff features | jq .linux.namespaces")]
    Features,
    Spec(spec::SpecArgs),
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    crate::log::init(cli.log.as_deref(), cli.log_format == "json", cli.debug)
        .map_err(|e| Error::msg(format!("open log file: {e}")))?;
    if cli.log_format != "text" && cli.log_format != "json" {
        return Err(Error::msg(format!("--log-format: unknown format {:?} (text or json)", cli.log_format)));
    }
    // refused for every command when it is no boolean (only create and run act on it)
    crate::rootless::parse_flag(cli.rootless.as_deref())?;
    let root = || match &cli.root {
        Some(dir) => Root::open(dir),
        None => Root::open_default(),
    };
    if matches!(cli.command, Command::Create(_) | Command::Run(_) | Command::Exec(_)) {
        // These put skiff processes inside a container: run them from an unwritable copy (the
        // state root is the overlay's second layer).
        crate::security::selfexe::ensure_sealed(&root()?.dir)?;
        crate::trace::point("sealed");
    }
    let cgroups_may_be_missing = || crate::rootless::cgroups_may_be_missing(cli.rootless.as_deref());
    match &cli.command {
        Command::Create(a) => create::run(&root()?, a, cgroups_may_be_missing()?, cli.systemd_cgroup)?,
        Command::Start(a) => start::run(&root()?, a)?,
        Command::State(a) => state::run(&root()?, a)?,
        Command::Kill(a) => kill::run(&root()?, a)?,
        Command::Delete(a) => delete::run(&root()?, a)?,
        Command::Run(a) => return run::run(&root()?, a, cgroups_may_be_missing()?, cli.systemd_cgroup),
        Command::Exec(a) => return exec::run(&root()?, a),
        Command::Update(a) => update::run(&root()?, a)?,
        Command::Events(a) => events::run(&root()?, a)?,
        Command::Features => features::run(),
        Command::Pause(a) => pause::run(&root()?, a)?,
        Command::Resume(a) => resume::run(&root()?, a)?,
        Command::Ps(a) => ps::run(&root()?, a)?,
        Command::List(a) => list::run(&root()?, a)?,
        Command::Spec(a) => spec::run(a)?,
    }
    Ok(0)
}
