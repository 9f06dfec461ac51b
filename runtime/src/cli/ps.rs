//! `ps ID [--format table|json] [-- PS_ARGS]`: json is the array of host pids (what containerd
//! reads); table runs the host's ps(1) and keeps the header and the container's lines, as runc does.

use clap::Args;

use crate::container;
use crate::error::{Error, Result};
use crate::state::Root;

#[derive(Args, Debug)]
#[command(
    about = "Show the container's processes (json: the array of host pids)",
    long_about = "Show the processes of a container: ps(1)'s table of the processes in its cgroup, or the \
        JSON array of their host pids.",
    after_help = "Examples:\n  skiff ps app\n  skiff ps app -o pid,comm\n  skiff ps --format json app"
)]
pub struct PsArgs {
    /// The ID of the container (see `skiff list`).
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
    /// Output: ps(1)'s table, or a JSON array of host pids.
    #[arg(short, long, value_name = "FORMAT", default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Options for ps(1) in the table format (default -ef).
    #[arg(value_name = "PS_OPTIONS", trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(root: &Root, args: &PsArgs) -> Result<()> {
    print(&container::pids(root, &args.id)?, &args.format, &args.ps_args)
}

fn print(pids: &[i32], format: &str, ps_args: &[String]) -> Result<()> {
    match format {
        "json" => {
            println!("{}", serde_json::to_string(pids).unwrap_or_else(|_| "[]".into()));
            Ok(())
        }
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() { vec!["-ef".into()] } else { ps_args.to_vec() };
            let out = std::process::Command::new("ps").args(&args).output().map_err(|e| Error::io("run ps", e))?;
            if !out.status.success() {
                return Err(Error::msg(format!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let pid_col =
                header.split_whitespace().position(|h| h == "PID").ok_or_else(|| Error::msg("ps: no PID column"))?;
            println!("{header}");
            for line in lines {
                let pid = line.split_whitespace().nth(pid_col).and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    println!("{line}");
                }
            }
            Ok(())
        }
        other => Err(Error::msg(format!("--format: unknown format {other:?} (table or json)"))),
    }
}
