//! `update ID [-r resources.json|-] [--memory ...]`: change a running container's resource limits,
//! from a LinuxResources JSON file or from runc's flags.

use std::path::{Path, PathBuf};

use clap::Args;
use oci_spec::runtime::LinuxResources;

use crate::container::{self, UpdateOpts};
use crate::error::{Error, Result};
use crate::state::Root;

#[derive(Args, Debug)]
#[command(
    about = "Change a running container's resource limits",
    long_about = "Change a running container's resource limits: from a LinuxResources JSON document \
        (config.json's linux.resources, as containerd and docker send it), or from flags. Only what is given \
        changes.",
    after_help = "Examples:\n  skiff update --memory 256m --pids-limit 100 app\n  \
        echo '{\"cpu\": {\"quota\": 50000, \"period\": 100000}}' | skiff update -r - app"
)]
pub struct UpdateArgs {
    /// The ID of the container (see `skiff list`).
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
    /// A LinuxResources JSON file, or - for stdin. The flags below cannot be given with it.
    #[arg(short, long, value_name = "FILE", conflicts_with_all = [
        "memory", "memory_reservation", "memory_swap", "cpu_period", "cpu_quota", "cpu_share", "cpu_rt_period",
        "cpu_rt_runtime", "cpuset_cpus", "cpuset_mems", "pids_limit", "blkio_weight",
    ])]
    pub resources: Option<PathBuf>,
    /// Memory limit, in bytes or with a unit (k, m, g: 256m); -1 for none.
    #[arg(long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Memory soft limit (memory.soft_limit_in_bytes, memory.low on v2), in bytes or with a unit.
    #[arg(long = "memory-reservation", value_name = "BYTES")]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit, in bytes or with a unit; -1 for unlimited swap.
    #[arg(long = "memory-swap", value_name = "BYTES")]
    pub memory_swap: Option<String>,
    /// CPU CFS period in microseconds (with --cpu-quota: the CPU time allowed per period).
    #[arg(long = "cpu-period", value_name = "USECS")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds per period; -1 for none.
    #[arg(long = "cpu-quota", value_name = "USECS")]
    pub cpu_quota: Option<i64>,
    /// CPU shares, the weight against other cgroups (cpu.weight on v2, converted as runc does).
    #[arg(long = "cpu-share", value_name = "SHARES")]
    pub cpu_share: Option<u64>,
    /// Real-time scheduling period in microseconds.
    #[arg(long = "cpu-rt-period", value_name = "USECS")]
    pub cpu_rt_period: Option<u64>,
    /// Real-time runtime in microseconds per period.
    #[arg(long = "cpu-rt-runtime", value_name = "USECS")]
    pub cpu_rt_runtime: Option<i64>,
    /// The CPUs the container may run on (0-3,6).
    #[arg(long = "cpuset-cpus", value_name = "CPUS")]
    pub cpuset_cpus: Option<String>,
    /// The memory nodes the container may use (0,1).
    #[arg(long = "cpuset-mems", value_name = "NODES")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (and threads); -1 for none.
    #[arg(long = "pids-limit", value_name = "N")]
    pub pids_limit: Option<i64>,
    /// Block I/O weight, 10 to 1000 (needs the BFQ scheduler on v1).
    #[arg(long = "blkio-weight", value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,
}

pub fn run(root: &Root, a: &UpdateArgs) -> Result<()> {
    let res = a.resources.as_deref().map(read_resources).transpose()?;
    let flags = UpdateOpts {
        memory: a.memory.clone(),
        memory_reservation: a.memory_reservation.clone(),
        memory_swap: a.memory_swap.clone(),
        cpu_period: a.cpu_period,
        cpu_quota: a.cpu_quota,
        cpu_shares: a.cpu_share,
        cpu_rt_period: a.cpu_rt_period,
        cpu_rt_runtime: a.cpu_rt_runtime,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        pids_limit: a.pids_limit,
        blkio_weight: a.blkio_weight,
    };
    container::update(root, &a.id, res, &flags)
}

/// `--resources FILE`, or `-` for stdin.
fn read_resources(p: &Path) -> Result<LinuxResources> {
    if p.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|e| Error::io("read stdin", e))?;
        return container::update::from_json(&buf, "stdin");
    }
    let text = std::fs::read(p).map_err(|e| Error::io(format!("read {}", p.display()), e))?;
    container::update::from_json(&text, &p.display().to_string())
}
