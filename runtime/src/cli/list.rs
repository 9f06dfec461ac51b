//! `list [--format table|json] [-q]`.

use crate::error::{Error, Result};
use crate::state::Root;

pub fn print(root: &Root, format: &str, quiet: bool) -> Result<()> {
    let mut rows = Vec::new();
    for id in root.ids()? {
        // A container deleted while we list, or one still being created, is skipped.
        let Ok(c) = root.load(&id) else { continue };
        let Ok(v) = super::state::json(&c) else { continue };
        rows.push(v);
    }
    if quiet {
        for r in &rows {
            println!("{}", r["id"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    match format {
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
