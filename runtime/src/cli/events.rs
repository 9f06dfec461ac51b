//! `events ID [--stats] [--interval D]`: one JSON object per line, as runc prints them.

use std::io::Write;
use std::time::Duration;

use clap::Args;

use crate::container::events::{self, EventsOpts};
use crate::error::{Error, Result};
use crate::state::Root;

#[derive(Args, Debug)]
#[command(
    about = "Print the container's resource statistics and OOM events as JSON lines",
    long_about = "Print a container's events as JSON lines, as runc 1.1 prints them: `stats` (cpu, memory, \
        pids, blkio, hugetlb, network interfaces) every --interval, and `oom` for each OOM kill, until the \
        container stops.",
    after_help = "Examples:\n  skiff events --stats app | jq .data.memory.usage\n  skiff events --interval 1s app"
)]
pub struct EventsArgs {
    /// The ID of the container (see `skiff list`).
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
    /// Print the statistics once and exit.
    #[arg(long)]
    pub stats: bool,
    /// How often to print statistics: a Go duration (5s, 500ms, 1m30s).
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub interval: String,
}

pub fn run(root: &Root, args: &EventsArgs) -> Result<()> {
    let opts = EventsOpts { interval: parse_duration(&args.interval)?, stats_only: args.stats };
    let stdout = std::io::stdout();
    events::events(root, &args.id, &opts, &mut |e| {
        let line = serde_json::to_string(e).map_err(|e| Error::msg(format!("encode event: {e}")))?;
        let mut out = stdout.lock();
        writeln!(out, "{line}").and_then(|_| out.flush()).map_err(|e| Error::io("write event", e))
    })
}

/// A Go duration as runc's `--interval` takes it: "5s", "250ms", "1m30s", "1.5h", "0".
pub fn parse_duration(raw: &str) -> Result<Duration> {
    let bad = || Error::msg(format!("--interval: invalid duration {raw:?}"));
    let s = raw.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let nanos = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * nanos;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        // Go's time.ParseDuration, which runc's --interval flag uses.
        let ok = [
            ("5s", Duration::from_secs(5)),
            ("250ms", Duration::from_millis(250)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5s", Duration::from_millis(1500)),
            ("0", Duration::ZERO),
        ];
        for (s, want) in ok {
            assert_eq!(parse_duration(s).unwrap(), want, "{s}");
        }
        // A unit is required; negatives are refused.
        for s in ["5", "", "-1s", "5x", "s"] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }
}
