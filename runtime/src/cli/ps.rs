//! `ps ID [--format table|json] [-- PS_ARGS]`: json is the array of host pids (what containerd
//! reads); table runs the host's ps(1) and keeps the header and the container's lines, as runc does.

use clap::Args;

use crate::container;
use crate::error::{Error, Result};
use crate::state::Root;

#[derive(Args, Debug)]
pub struct PsArgs {
    pub id: String,
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Options passed to ps(1) for the table format (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
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
