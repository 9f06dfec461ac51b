//! `update ID [-r resources.json|-] [--memory ...]`: change a running container's resource limits,
//! from a LinuxResources JSON file or from runc's flags.

use std::path::{Path, PathBuf};

use clap::Args;
use oci_spec::runtime::LinuxResources;

use crate::container::{self, UpdateOpts};
use crate::error::{Error, Result};
use crate::state::Root;

#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub id: String,
    /// A LinuxResources JSON file, or - for stdin; flags are ignored with it.
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
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
