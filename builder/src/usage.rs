//! `capture-usage=true`: the machine's resource usage sampled while a build runs, as BuildKit's
//! SysSampler writes it into the provenance (`buildkit_metadata.sysUsage`,
//! executor/resources/sys_linux.go): /proc/stat's CPU times and counters, /proc/meminfo, and
//! the pressure files, every 2 s (the interval doubling after 20 samples, as BuildKit's
//! Sampler), plus one when the build ends. The samples carry the time they were taken, so an
//! attestation with them is never reproducible (BuildKit's are not either).
//!
//! Per step, BuildKit samples the step's cgroup only on cgroup v2 (its Monitor records
//! nothing on v1 or hybrid hosts); slipway does not sample steps yet (builder/README.md).
//! This module reads files and keeps samples; it decides nothing about the build.

use serde_json::{json, Map, Value};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

/// BuildKit's sampling interval and how many samples before it doubles (its SysSampler's).
const INTERVAL: Duration = Duration::from_secs(2);
const SYS_MAX_SAMPLES: u32 = 20;

/// The clock ticks per second /proc/stat counts in (USER_HZ, 100 on Linux: procfs divides by
/// it to give seconds).
const USER_HZ: f64 = 100.0;

/// Go's time.Time JSON (RFC 3339 with the nanoseconds' significant digits), in UTC.
fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let base = crate::store::image::rfc3339(d.as_secs() as i64);
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return base;
    }
    let frac = format!("{nanos:09}");
    format!("{}.{}Z", base.trim_end_matches('Z'), frac.trim_end_matches('0'))
}

/// A float as Go's encoding/json writes it: an integral value without `.0`.
fn go_float(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        json!(f as i64)
    } else {
        json!(f)
    }
}

/// `/proc/stat`: the `cpu` line's times in seconds (rounded to 3 decimals, as BuildKit's
/// SysCPUStat marshals them), then the context switches, processes created and running.
pub fn parse_proc_stat(text: &str) -> Option<(Value, Value)> {
    let mut cpu = None;
    let (mut ctxt, mut processes, mut running) = (0u64, 0u64, 0u64);
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("cpu") => {
                let v: Vec<f64> = f.map(|n| n.parse::<f64>().unwrap_or(0.0) / USER_HZ).collect();
                let at = |i: usize| go_float((v.get(i).copied().unwrap_or(0.0) * 1000.0).round() / 1000.0);
                let mut m = Map::new();
                for (i, k) in
                    ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guestNice"]
                        .iter()
                        .enumerate()
                {
                    m.insert(k.to_string(), at(i));
                }
                cpu = Some(Value::Object(m));
            }
            Some("ctxt") => ctxt = f.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            Some("processes") => processes = f.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            Some("procs_running") => running = f.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            _ => {}
        }
    }
    Some((cpu?, json!({"contextSwitches": ctxt, "processCreated": processes, "processesRunning": running})))
}

/// `/proc/meminfo` as BuildKit's SysMemoryStat (procfs's values: kB as the file gives them).
pub fn parse_meminfo(text: &str) -> Value {
    let get = |key: &str| -> Value {
        text.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k == key).then(|| v.split_whitespace().next()?.parse::<u64>().ok()).flatten()
            })
            .map(|n| json!(n))
            .unwrap_or(Value::Null)
    };
    let mut m = Map::new();
    for (name, key) in [
        ("total", "MemTotal"),
        ("free", "MemFree"),
        ("available", "MemAvailable"),
        ("buffers", "Buffers"),
        ("cached", "Cached"),
        ("active", "Active"),
        ("inactive", "Inactive"),
        ("swap", "SwapTotal"),
        ("dirty", "Dirty"),
        ("writeback", "Writeback"),
        ("slab", "Slab"),
    ] {
        m.insert(name.into(), get(key));
    }
    Value::Object(m)
}

/// A pressure file (`some avg10=0.00 avg60=0.00 avg300=0.00 total=0`, then `full ...`) as
/// BuildKit's Pressure: `some` and `full`, null when the file lacks the line.
pub fn parse_pressure(text: &str) -> Result<Value, String> {
    let mut out = json!({"some": null, "full": null});
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut f = line.split_whitespace();
        let prefix = f.next().unwrap_or_default();
        let mut v = json!({"avg10": null, "avg60": null, "avg300": null, "total": null});
        for kv in f {
            let (k, val) = kv.split_once('=').ok_or_else(|| format!("pressure line {line:?}: no '=' in {kv:?}"))?;
            if k == "total" {
                v["total"] = json!(val.parse::<u64>().map_err(|e| format!("pressure {kv:?}: {e}"))?);
            } else if ["avg10", "avg60", "avg300"].contains(&k) {
                v[k] = go_float(val.parse::<f64>().map_err(|e| format!("pressure {kv:?}: {e}"))?);
            }
        }
        if prefix == "some" || prefix == "full" {
            out[prefix] = v;
        }
    }
    Ok(out)
}

/// Reads a pressure file; None when the kernel has none (no CONFIG_PSI).
fn read_pressure(path: &Path) -> Result<Option<Value>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => parse_pressure(&t).map(Some).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::EOPNOTSUPP) => {
            Ok(None)
        }
        Err(e) => Err(format!("read {}: {e}", path.display())),
    }
}

/// One sample of the machine (BuildKit's SysSample, in its field order).
pub fn sample_sys(at: SystemTime) -> Result<Value, String> {
    let stat = std::fs::read_to_string("/proc/stat").map_err(|e| format!("read /proc/stat: {e}"))?;
    let (cpu, procs) = parse_proc_stat(&stat).ok_or("/proc/stat: no cpu line")?;
    let mem = std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("read /proc/meminfo: {e}"))?;
    let mut s = Map::new();
    s.insert("timestamp".into(), json!(timestamp(at)));
    s.insert("cpuStat".into(), cpu);
    s.insert("procStat".into(), procs);
    s.insert("memoryStat".into(), parse_meminfo(&mem));
    if Path::new("/proc/pressure").symlink_metadata().is_ok() {
        for (k, f) in [("cpuPressure", "cpu"), ("memoryPressure", "memory"), ("ioPressure", "io")] {
            if let Some(p) = read_pressure(&Path::new("/proc/pressure").join(f))? {
                s.insert(k.into(), p);
            }
        }
    }
    Ok(Value::Object(s))
}

/// BuildKit's Sampler and one subscriber of it: a thread that takes a sample every interval
/// (doubled once `max` samples' worth of time has passed), until [`Sampler::close`] takes a
/// last one and returns them all.
pub struct Sampler {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
    take: Arc<dyn Fn(SystemTime) -> Result<Value, String> + Send + Sync>,
}

#[derive(Default)]
struct State {
    samples: Vec<Value>,
    err: Option<String>,
    done: bool,
}

impl Sampler {
    fn start(max: u32, take: Arc<dyn Fn(SystemTime) -> Result<Value, String> + Send + Sync>) -> Sampler {
        let shared: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let (sh, tk) = (shared.clone(), take.clone());
        let thread = std::thread::spawn(move || {
            let first = std::time::Instant::now();
            let mut interval = INTERVAL;
            let (lock, cv) = &*sh;
            let Ok(mut st) = lock.lock() else { return };
            loop {
                let (g, timeout) = match cv.wait_timeout_while(st, interval, |s| !s.done) {
                    Ok(r) => r,
                    Err(_) => return,
                };
                st = g;
                if !timeout.timed_out() || st.done {
                    return;
                }
                drop(st);
                let v = tk(SystemTime::now());
                let Ok(g) = lock.lock() else { return };
                st = g;
                match v {
                    Ok(v) => st.samples.push(v),
                    Err(e) => st.err = Some(e),
                }
                if interval * max <= first.elapsed() {
                    interval *= 2;
                }
            }
        });
        Sampler { shared, thread: Some(thread), take }
    }

    /// The machine's sampler (BuildKit's SysSampler), started at the build's start.
    pub fn sys() -> Sampler {
        Sampler::start(SYS_MAX_SAMPLES, Arc::new(sample_sys))
    }

    /// Stops the thread; the samples with a last one taken now (when `last`).
    pub fn close(mut self, last: bool) -> Result<Vec<Value>, String> {
        let (lock, cv) = &*self.shared;
        if let Ok(mut st) = lock.lock() {
            st.done = true;
        }
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut st = lock.lock().map_err(|_| "resource sampler: poisoned".to_string())?;
        if let Some(e) = st.err.take() {
            return Err(e);
        }
        let mut out = std::mem::take(&mut st.samples);
        if last {
            out.push((self.take)(SystemTime::now())?);
        }
        Ok(out)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        let (lock, cv) = &*self.shared;
        if let Ok(mut st) = lock.lock() {
            st.done = true;
        }
        cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_read_as_procfs_and_buildkit() {
        let stat = "cpu  1000 5 250 90000 12 0 3 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nctxt 42\nbtime 1\nprocesses 77\nprocs_running 3\n";
        let (cpu, procs) = parse_proc_stat(stat).unwrap();
        // USER_HZ ticks to seconds; integral values as Go writes them
        assert_eq!(
            cpu.to_string(),
            r#"{"user":10,"nice":0.05,"system":2.5,"idle":900,"iowait":0.12,"irq":0,"softirq":0.03,"steal":0,"guest":0,"guestNice":0}"#
        );
        assert_eq!(procs, json!({"contextSwitches": 42, "processCreated": 77, "processesRunning": 3}));
        let mem = parse_meminfo("MemTotal:       24000000 kB\nMemFree: 100 kB\nMemAvailable: 200 kB\nSlab: 5 kB\n");
        assert_eq!(mem["total"], 24000000);
        assert_eq!(mem["available"], 200);
        assert!(mem["dirty"].is_null(), "a missing line is null, as BuildKit's nil pointer");
        let p = parse_pressure("some avg10=0.50 avg60=0.00 avg300=1.25 total=123\n").unwrap();
        assert_eq!(p.to_string(), r#"{"some":{"avg10":0.5,"avg60":0,"avg300":1.25,"total":123},"full":null}"#);
        assert!(parse_pressure("some avg10\n").is_err());
    }

    #[test]
    fn the_sys_sampler_takes_a_last_sample() {
        let s = Sampler::sys();
        let v = s.close(true).unwrap();
        assert_eq!(v.len(), 1, "closed at once: the last sample only");
        assert!(v[0]["cpuStat"]["user"].is_number(), "{}", v[0]);
        assert!(v[0]["memoryStat"]["total"].as_u64().unwrap_or(0) > 0, "{}", v[0]);
        assert!(v[0]["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
