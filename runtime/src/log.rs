//! The `--log FILE --log-format text|json` logger. json writes one `{"level","msg","time"}` object per
//! line as runc does: containerd's shim reads the last error line from it. Without `--log`, messages
//! at warning level and above go to stderr. skiff is single-threaded, so a plain Mutex is fine even
//! in forked children (nobody else can hold it).

use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

struct Logger {
    file: Option<std::fs::File>,
    json: bool,
    min: Level,
}

static LOGGER: Mutex<Logger> = Mutex::new(Logger { file: None, json: false, min: Level::Warn });

/// Configures the logger from the global flags. `path` is opened for append (created 0644).
pub fn init(path: Option<&std::path::Path>, json: bool, debug: bool) -> std::io::Result<()> {
    let file = match path {
        Some(p) => Some(std::fs::OpenOptions::new().create(true).append(true).open(p)?),
        None => None,
    };
    let mut l = LOGGER.lock().unwrap_or_else(|p| p.into_inner());
    l.file = file;
    l.json = json;
    l.min = if debug { Level::Debug } else { Level::Info };
    Ok(())
}

pub fn log(level: Level, msg: &str) {
    let mut l = LOGGER.lock().unwrap_or_else(|p| p.into_inner());
    if level < l.min {
        return;
    }
    let time = rfc3339(SystemTime::now());
    let line = if l.json {
        let obj = serde_json::json!({"level": level.name(), "msg": msg, "time": time});
        format!("{obj}\n")
    } else {
        format!("time={time:?} level={} msg={msg:?}\n", level.name())
    };
    let show_debug = l.min == Level::Debug;
    match l.file.as_mut() {
        Some(f) => {
            let _ = f.write_all(line.as_bytes());
        }
        // Without a log file only warnings and errors are worth the caller's stderr; errors are
        // printed by main itself in plain text.
        None if level == Level::Warn || (level == Level::Debug && show_debug) => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        None => {}
    }
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg)
}
pub fn warn(msg: &str) {
    log(Level::Warn, msg)
}
pub fn error(msg: &str) {
    log(Level::Error, msg)
}

/// Formats a time as RFC 3339 UTC with nanoseconds, e.g. `2026-12-01T15:06:47.123456789Z`.
/// Written here because pulling in chrono for one format string is not worth its weight.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, day) = civil_from_days(days);
    format!("{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z", rem / 3600, rem % 3600 / 60, rem % 60, d.subsec_nanos())
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        // 2024-02-29T12:34:56Z, a leap day.
        let t = UNIX_EPOCH + Duration::new(1_709_210_096, 5);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.000000005Z");
    }
}
