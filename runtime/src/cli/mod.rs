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

#[derive(Parser, Debug)]
#[command(name = "skiff", version = VERSION, about = "An OCI runtime with runc's command line")]
pub struct Cli {
    /// Directory for container state (private per user of skiff) [default: /run/skiff, or
    /// $XDG_RUNTIME_DIR/skiff when run rootless, as runc]
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Write log messages to this file.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// Log debug messages.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd for cgroups (not supported: there is no systemd driver).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Whether cgroups skiff cannot write may be left out: true, false or auto (auto: when run
    /// by a user other than root or in a user namespace, as runc).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container and leave it blocked before it runs its program.
    Create(create::CreateArgs),
    /// Let a created container run its program.
    Start(start::StartArgs),
    /// Print a container's state as JSON.
    State(state::StateArgs),
    /// Send a signal (default SIGTERM) to a container's init, or with --all to all its processes.
    Kill(kill::KillArgs),
    /// Delete a container's resources; --force kills a running one first.
    Delete(delete::DeleteArgs),
    /// Create and start a container; in the foreground, wait and exit with its status.
    Run(run::RunArgs),
    /// List containers.
    #[command(alias = "ps-all")]
    List(list::ListArgs),
    /// Run another process in a running container.
    Exec(exec::ExecArgs),
    /// Change a running container's resource limits.
    Update(update::UpdateArgs),
    /// Freeze every process of a running container.
    Pause(pause::PauseArgs),
    /// Thaw a paused container.
    Resume(resume::ResumeArgs),
    /// Show the container's processes (json: the array of host pids).
    Ps(ps::PsArgs),
    /// Print the container's resource statistics and OOM events as JSON lines.
    Events(events::EventsArgs),
    /// Print what this skiff supports (the runtime-spec features document).
    Features,
    /// Write a default config.json (`--rootless` for the rootless variant).
    Spec(spec::SpecArgs),
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    crate::log::init(cli.log.as_deref(), cli.log_format == "json", cli.debug)
        .map_err(|e| Error::msg(format!("open log file: {e}")))?;
    if cli.log_format != "text" && cli.log_format != "json" {
        return Err(Error::msg(format!("--log-format: unknown format {:?} (text or json)", cli.log_format)));
    }
    if cli.systemd_cgroup {
        return Err(Error::msg("--systemd-cgroup is not supported: skiff manages cgroups through cgroupfs only"));
    }
    if matches!(cli.command, Command::Create(_) | Command::Run(_) | Command::Exec(_)) {
        // These put skiff processes inside a container: run them from a sealed copy.
        crate::security::selfexe::ensure_sealed()?;
    }
    let rootless = crate::rootless::parse_flag(cli.rootless.as_deref())?;
    let root = || match &cli.root {
        Some(dir) => Root::open(dir),
        None => Root::open_default(),
    };
    let cgroups_may_be_missing = || crate::rootless::cgroups_may_be_missing(cli.rootless.as_deref());
    match &cli.command {
        Command::Create(a) => create::run(&root()?, a, cgroups_may_be_missing()?)?,
        Command::Start(a) => start::run(&root()?, a)?,
        Command::State(a) => state::run(&root()?, a)?,
        Command::Kill(a) => kill::run(&root()?, a)?,
        Command::Delete(a) => delete::run(&root()?, a)?,
        Command::Run(a) => return run::run(&root()?, a, cgroups_may_be_missing()?),
        Command::Exec(a) => return exec::run(&root()?, a),
        Command::Update(a) => update::run(&root()?, a)?,
        Command::Events(a) => events::run(&root()?, a)?,
        Command::Features => features::run(),
        Command::Pause(a) => pause::run(&root()?, a)?,
        Command::Resume(a) => resume::run(&root()?, a)?,
        Command::Ps(a) => ps::run(&root()?, a)?,
        Command::List(a) => list::run(&root()?, a)?,
        Command::Spec(a) => spec::run(a, rootless == Some(true))?,
    }
    Ok(0)
}
