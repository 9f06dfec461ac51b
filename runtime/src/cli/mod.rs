//! runc's command line, as containerd's shim, conmon and dockerd call it. One file per
//! subcommand, glue only: parse, call `container::`, print.

mod events;
mod features;
mod list;
mod ps;
mod spec;
mod state;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::container::{self, CreateOpts};
use crate::error::{Error, Result};
use crate::state::Root;

const VERSION: &str =
    concat!("version ", env!("CARGO_PKG_VERSION"), "\ncommit: ", env!("SKIFF_COMMIT"), "\nspec: 1.2.0");

#[derive(Parser, Debug)]
#[command(name = "skiff", version = VERSION, about = "An OCI runtime with runc's command line")]
pub struct Cli {
    /// Directory for container state (private per user of skiff).
    #[arg(long, global = true, default_value = "/run/skiff")]
    pub root: PathBuf,
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
    /// Accepted for runc compatibility (auto, true, false); skiff decides by itself.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    pub id: String,
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not give the container its own session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many fds beyond stdio (3, 4, ...) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

impl CreateArgs {
    fn opts(&self) -> CreateOpts {
        // systemd socket activation passes LISTEN_FDS fds, which runc keeps too.
        let listen = std::env::var("LISTEN_FDS").ok().and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
        CreateOpts {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds + listen,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container and leave it blocked before it runs its program.
    Create(CreateArgs),
    /// Let a created container run its program.
    Start { id: String },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to a container's init, or with --all to all its processes.
    Kill {
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container's resources; --force kills a running one first.
    Delete {
        id: String,
        #[arg(short, long)]
        force: bool,
    },
    /// Create and start a container; in the foreground, wait and exit with its status.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once the container has started.
        #[arg(short, long)]
        detach: bool,
        /// Do not delete the container after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// List containers.
    #[command(alias = "ps-all")]
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run another process in a running container.
    Exec {
        id: String,
        /// The process as OCI JSON (process.json); otherwise the command after the id.
        #[arg(short, long)]
        process: Option<PathBuf>,
        #[arg(short, long)]
        tty: bool,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(short, long = "env")]
        env: Vec<String>,
        /// UID[:GID]
        #[arg(short, long)]
        user: Option<String>,
        #[arg(short = 'g', long = "additional-gids", value_delimiter = ',')]
        additional_gids: Vec<u32>,
        #[arg(short, long = "cap")]
        cap: Vec<String>,
        #[arg(long = "no-new-privs")]
        no_new_privs: bool,
        #[arg(short, long)]
        detach: bool,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long = "preserve-fds", default_value_t = 0)]
        preserve_fds: u32,
        /// SELinux label for the process (applied where SELinux is enabled, ignored otherwise).
        #[arg(long = "process-label")]
        process_label: Option<String>,
        /// AppArmor profile for the process (applied where AppArmor is enabled, ignored otherwise).
        #[arg(long)]
        apparmor: Option<String>,
        /// Exec into a paused container too (the process starts frozen, as in runc).
        #[arg(long = "ignore-paused")]
        ignore_paused: bool,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Change a running container's resource limits.
    Update {
        id: String,
        /// A LinuxResources JSON file, or - for stdin; flags are ignored with it.
        #[arg(short, long)]
        resources: Option<PathBuf>,
        #[arg(long)]
        memory: Option<String>,
        #[arg(long = "memory-reservation")]
        memory_reservation: Option<String>,
        #[arg(long = "memory-swap")]
        memory_swap: Option<String>,
        #[arg(long = "cpu-period")]
        cpu_period: Option<u64>,
        #[arg(long = "cpu-quota")]
        cpu_quota: Option<i64>,
        #[arg(long = "cpu-share")]
        cpu_share: Option<u64>,
        #[arg(long = "cpu-rt-period")]
        cpu_rt_period: Option<u64>,
        #[arg(long = "cpu-rt-runtime")]
        cpu_rt_runtime: Option<i64>,
        #[arg(long = "cpuset-cpus")]
        cpuset_cpus: Option<String>,
        #[arg(long = "cpuset-mems")]
        cpuset_mems: Option<String>,
        #[arg(long = "pids-limit")]
        pids_limit: Option<i64>,
        #[arg(long = "blkio-weight")]
        blkio_weight: Option<u16>,
    },
    /// Freeze every process of a running container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Show the container's processes (json: the array of host pids).
    Ps {
        id: String,
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Options passed to ps(1) for the table format (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print the container's resource statistics and OOM events as JSON lines.
    Events {
        id: String,
        /// Print the statistics once and exit.
        #[arg(long)]
        stats: bool,
        /// How often to print statistics (a Go duration: 5s, 500ms, ...).
        #[arg(long, default_value = "5s")]
        interval: String,
    },
    /// Print what this skiff supports (the runtime-spec features document).
    Features,
    /// Write a default config.json (`--rootless` for the rootless variant).
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
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
    if matches!(cli.command, Command::Create(_) | Command::Run { .. } | Command::Exec { .. }) {
        // These put skiff processes inside a container: run them from a sealed copy.
        crate::security::selfexe::ensure_sealed()?;
    }
    let root = || Root::open(&cli.root);
    match &cli.command {
        Command::Create(a) => {
            container::create(&root()?, &a.opts())?;
        }
        Command::Start { id } => container::start(&root()?, id)?,
        Command::State { id } => state::print(&root()?, id)?,
        Command::Kill { id, signal, all } => {
            let sig = container::parse_signal(signal)?;
            container::kill(&root()?, id, sig, *all)?;
        }
        Command::Delete { id, force } => container::delete(&root()?, id, *force)?,
        Command::Run { create, detach, keep } => return container::run(&root()?, &create.opts(), *detach, *keep),
        Command::Exec {
            id,
            process,
            tty,
            console_socket,
            cwd,
            env,
            user,
            additional_gids,
            cap,
            no_new_privs,
            detach,
            pid_file,
            preserve_fds,
            process_label,
            apparmor,
            ignore_paused,
            command,
        } => {
            let opts = container::ExecOpts {
                id: id.clone(),
                process_file: process.clone(),
                args: command.clone(),
                tty: *tty,
                console_socket: console_socket.clone(),
                cwd: cwd.clone(),
                env: env.clone(),
                user: user.clone(),
                additional_gids: additional_gids.clone(),
                caps: cap.clone(),
                no_new_privs: *no_new_privs,
                detach: *detach,
                pid_file: pid_file.clone(),
                preserve_fds: *preserve_fds,
                process_label: process_label.clone(),
                apparmor: apparmor.clone(),
                ignore_paused: *ignore_paused,
            };
            return container::exec(&root()?, &opts);
        }
        Command::Update {
            id,
            resources,
            memory,
            memory_reservation,
            memory_swap,
            cpu_period,
            cpu_quota,
            cpu_share,
            cpu_rt_period,
            cpu_rt_runtime,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
            blkio_weight,
        } => {
            let res = match resources {
                Some(p) if p.as_os_str() == "-" => {
                    let mut buf = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                        .map_err(|e| Error::io("read stdin", e))?;
                    Some(container::update::from_json(&buf, "stdin")?)
                }
                Some(p) => {
                    let text = std::fs::read(p).map_err(|e| Error::io(format!("read {}", p.display()), e))?;
                    Some(container::update::from_json(&text, &p.display().to_string())?)
                }
                None => None,
            };
            let flags = container::UpdateOpts {
                memory: memory.clone(),
                memory_reservation: memory_reservation.clone(),
                memory_swap: memory_swap.clone(),
                cpu_period: *cpu_period,
                cpu_quota: *cpu_quota,
                cpu_shares: *cpu_share,
                cpu_rt_period: *cpu_rt_period,
                cpu_rt_runtime: *cpu_rt_runtime,
                cpuset_cpus: cpuset_cpus.clone(),
                cpuset_mems: cpuset_mems.clone(),
                pids_limit: *pids_limit,
                blkio_weight: *blkio_weight,
            };
            container::update(&root()?, id, res, &flags)?;
        }
        Command::Events { id, stats, interval } => events::run(&root()?, id, *stats, interval)?,
        Command::Features => features::print(),
        Command::Pause { id } => container::pause(&root()?, id)?,
        Command::Resume { id } => container::resume(&root()?, id)?,
        Command::Ps { id, format, ps_args } => ps::print(&container::pids(&root()?, id)?, format, ps_args)?,
        Command::List { format, quiet } => list::print(&root()?, format, *quiet)?,
        Command::Spec { bundle } => spec::write(bundle, matches!(cli.rootless.as_deref(), Some("true" | "1")))?,
    }
    Ok(0)
}
