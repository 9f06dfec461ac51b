//! `list [--format table|json] [-q]`.

use clap::Args;

use crate::error::{Error, Result};
use crate::state::Root;

#[derive(Args, Debug)]
#[command(
    about = "List containers",
    long_about = "List the containers under --root: ID, PID, STATUS, BUNDLE, CREATED, OWNER.",
    after_help = "Examples:\n  skiff list\n  skiff list -q\n  skiff list --format json | jq -r '.[].id'"
)]
pub struct ListArgs {
    /// Output: a table, or a JSON array of the containers' states.
    #[arg(short, long, value_name = "FORMAT", default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the IDs, one per line.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(root: &Root, args: &ListArgs) -> Result<()> {
    let mut rows = Vec::new();
    for id in root.ids()? {
        // A container deleted while we list, or one still being created, is skipped.
        let Ok(c) = root.load(&id) else { continue };
        let Ok(mut v) = super::state::json(&c) else { continue };
        // runc's list names the owner of the state directory; its `state` leaves it empty.
        v["owner"] = owner_name(&c.dir).into();
        rows.push(v);
    }
    if args.quiet {
        for r in &rows {
            println!("{}", r["id"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    match args.format.as_str() {
        "json" => println!("{}", serde_json::Value::Array(rows)),
        "table" => {
            let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
            let table: Vec<[String; 6]> = rows
                .iter()
                .map(|r| {
                    let s = |k: &str| r[k].as_str().map(str::to_string).unwrap_or_else(|| r[k].to_string());
                    [s("id"), s("pid"), s("status"), s("bundle"), s("created"), s("owner")]
                })
                .collect();
            let mut widths = header.map(str::len);
            for row in &table {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.len());
                }
            }
            let line = |cells: [&str; 6]| {
                let mut out = String::new();
                for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                    if i == 5 {
                        out.push_str(cell);
                    } else {
                        out.push_str(&format!("{cell:<w$}   "));
                    }
                }
                println!("{}", out.trim_end());
            };
            line(header);
            for row in &table {
                line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
            }
        }
        other => return Err(Error::msg(format!("--format: unknown format {other:?} (table or json)"))),
    }
    Ok(())
}

/// The user name owning `dir`, from /etc/passwd, or the numeric uid.
fn owner_name(dir: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(dir).map(|m| m.uid()) else { return String::new() };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| format!("#{uid}"))
}
