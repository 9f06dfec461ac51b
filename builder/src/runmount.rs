//! `RUN --mount=...` values typed, as BuildKit's `instructions/commands_runmount.go` reads them:
//! CSV fields (`type=cache,target=/c,id=x`), keys case-insensitive, defaults by type (`bind`
//! when no type; read-only for bind, secret and ssh; writable for cache and tmpfs), and the same
//! checks with the same words. Values are already expanded (`plan/run.rs` expands each word
//! first); nothing here touches the filesystem or knows what a stage is.

/// What kind of mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bind => "bind",
            Kind::Cache => "cache",
            Kind::Tmpfs => "tmpfs",
            Kind::Secret => "secret",
            Kind::Ssh => "ssh",
        }
    }
}

/// How a cache mount is shared between steps that run at once (in one build or in two
/// builds on the same store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Everyone uses the same directory at the same time (the default).
    Shared,
    /// A writer that finds the directory in use gets a directory of its own.
    Private,
    /// A writer waits until the one using the directory is done.
    Locked,
}

/// One `--mount` flag, typed; fields not given are `None`/empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub kind: Kind,
    pub from: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub readonly: bool,
    /// tmpfs `size`, in bytes.
    pub size: Option<u64>,
    /// `id` (cache, secret, ssh).
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    pub required: bool,
    /// secret `env=`: the variable the secret's value is put in.
    pub env: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Splits a CSV record as Go's encoding/csv reads one line (BuildKit uses a CSV reader): fields
/// separated by commas, a field that starts with `"` is quoted (`""` is a quote inside it).
/// Written here because the rule is these ten lines and the csv crate's reader adds nothing.
pub fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "failed to parse csv mounts: {s:?}: extraneous or missing \" in quoted-field"
                        ))
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Ok(out);
                }
                Some(',') => {}
                Some(_) => {
                    return Err(format!("failed to parse csv mounts: {s:?}: extraneous or missing \" in quoted-field"))
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        out.push(field);
                        return Ok(out);
                    }
                    Some(',') => break,
                    Some('"') => return Err(format!("failed to parse csv mounts: {s:?}: bare \" in non-quoted-field")),
                    Some(c) => field.push(c),
                }
            }
        }
        out.push(field);
    }
}

/// The `from=` of a raw `--mount` value, if any, before expansion (the stage graph needs it).
/// BuildKit refuses a variable there: a stage dependency must be known before args are.
pub fn raw_from(raw: &str) -> Result<Option<String>, String> {
    let mut from = None;
    for f in csv_fields(raw)? {
        if let Some((k, v)) = f.split_once('=') {
            if k.eq_ignore_ascii_case("from") {
                if v.find('$').is_some_and(|i| i != v.len() - 1) {
                    return Err(format!("'{k}' doesn't support variable expansion, define alias stage instead"));
                }
                from = Some(v.to_string());
            }
        }
    }
    Ok(from)
}

/// The `target=` (`dst=`, `destination=`) of a raw `--mount` value, as written (for messages).
pub fn raw_target(raw: &str) -> String {
    let fields = csv_fields(raw).unwrap_or_default();
    let t = fields
        .iter()
        .filter_map(|f| f.split_once('='))
        .rev()
        .find(|(k, _)| ["target", "dst", "destination"].iter().any(|n| k.eq_ignore_ascii_case(n)));
    t.map(|(_, v)| v.to_string()).unwrap_or_default()
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    crate::gobool::parse(v).ok_or_else(|| format!("invalid value for {key}: {v}"))
}

/// docker's `units.RAMInBytes`: a number with an optional b/k/m/g/t/p unit (binary), an
/// optional trailing `b` or `ib`.
pub fn ram_in_bytes(s: &str) -> Option<u64> {
    let t = s.trim();
    let num_end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (n, unit) = t.split_at(num_end);
    let n: f64 = n.parse().ok()?;
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        "p" | "pb" | "pib" => 1 << 50,
        _ => return None,
    };
    (n >= 0.0).then_some((n * mul as f64) as u64)
}

/// Parses one `--mount` value (no expansion).
pub fn parse(val: &str) -> Result<Spec, String> {
    parse_fields(csv_fields(val)?)
}

/// Types the CSV fields of one `--mount` value, their values already expanded.
pub fn parse_fields(fields: Vec<String>) -> Result<Spec, String> {
    let mut m = Spec {
        kind: Kind::Bind,
        from: None,
        source: None,
        target: None,
        readonly: false,
        size: None,
        id: None,
        sharing: None,
        required: false,
        env: None,
        mode: None,
        uid: None,
        gid: None,
    };
    let mut ro_auto = true;
    let unexpected = |k: &str, m: &Spec| format!("unexpected key '{k}' for mount type '{}'", m.kind.name());
    for field in fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => {
                    m.readonly = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.readonly = false;
                    ro_auto = false;
                }
                "required" if matches!(m.kind, Kind::Secret | Kind::Ssh) => m.required = true,
                "required" => return Err(unexpected(&key, &m)),
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        match key.as_str() {
            "type" => {
                m.kind = match value.to_ascii_lowercase().as_str() {
                    "bind" => Kind::Bind,
                    "cache" => Kind::Cache,
                    "tmpfs" => Kind::Tmpfs,
                    "secret" => Kind::Secret,
                    "ssh" => Kind::Ssh,
                    _ => {
                        return Err(format!(
                            "unsupported mount type \"{value}\" (expected bind, cache, tmpfs, secret or ssh)"
                        ))
                    }
                }
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => {
                m.readonly = parse_bool(&key, &value)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.readonly = !parse_bool(&key, &value)?;
                ro_auto = false;
            }
            "required" if matches!(m.kind, Kind::Secret | Kind::Ssh) => m.required = parse_bool(&key, &value)?,
            "required" => return Err(unexpected(&key, &m)),
            "size" if m.kind == Kind::Tmpfs => {
                m.size = Some(ram_in_bytes(&value).ok_or_else(|| format!("invalid value for {key}: {value}"))?)
            }
            "size" => return Err(unexpected(&key, &m)),
            "id" => m.id = Some(value),
            "sharing" => {
                m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => {
                        return Err(format!(
                            "unsupported sharing value \"{value}\" (expected shared, private or locked)"
                        ))
                    }
                })
            }
            "mode" => {
                m.mode = Some(u32::from_str_radix(&value, 8).map_err(|_| format!("invalid value {value} for mode"))?)
            }
            "uid" => m.uid = Some(value.parse().map_err(|_| format!("invalid value {value} for uid"))?),
            "gid" => m.gid = Some(value.parse().map_err(|_| format!("invalid value {value} for gid"))?),
            "env" => m.env = Some(value),
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    let file_info = matches!(m.kind, Kind::Secret | Kind::Ssh | Kind::Cache);
    if !file_info {
        for (name, set) in [("mode", m.mode.is_some()), ("uid", m.uid.is_some()), ("gid", m.gid.is_some())] {
            if set {
                return Err(format!("{name} not allowed for \"{}\" type mounts", m.kind.name()));
            }
        }
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, Kind::Cache | Kind::Tmpfs);
    }
    if m.kind == Kind::Secret {
        if m.from.is_some() {
            return Err("secret mount should not have a from".into());
        }
        if m.sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if m.source.is_some() && m.id.is_some() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.sharing.is_some() && m.kind != Kind::Cache {
        return Err(format!("invalid cache sharing set for {} mount", m.kind.name()));
    }
    if m.env.is_some() && m.kind != Kind::Secret {
        // BuildKit keeps `env` for secrets only (it is read nowhere else): refused, not dropped
        return Err(format!("unexpected key 'env' for mount type '{}'", m.kind.name()));
    }
    if matches!(m.kind, Kind::Secret | Kind::Ssh) && !ro_auto && !m.readonly {
        // BuildKit accepts `rw` there and mounts read-only anyway: refused rather than ignored
        return Err(format!("{} mounts are read-only: rw is not allowed", m.kind.name()));
    }
    if m.kind == Kind::Ssh && m.source.is_some() {
        return Err("ssh does not support source".into());
    }
    if matches!(m.kind, Kind::Tmpfs | Kind::Secret | Kind::Ssh) && m.from.is_some() {
        return Err(format!("unexpected key 'from' for mount type '{}'", m.kind.name()));
    }
    if matches!(m.kind, Kind::Tmpfs) && m.source.is_some() {
        return Err("unexpected key 'source' for mount type 'tmpfs'".into());
    }
    if matches!(m.kind, Kind::Bind | Kind::Tmpfs) && m.id.is_some() {
        return Err(format!("unexpected key 'id' for mount type '{}'", m.kind.name()));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_as_go_reads_it() {
        assert_eq!(csv_fields("a=1,b=2").unwrap(), ["a=1", "b=2"]);
        assert_eq!(csv_fields("\"a=1,2\",b").unwrap(), ["a=1,2", "b"]);
        assert_eq!(csv_fields("\"x\"\"y\"").unwrap(), ["x\"y"]);
        assert_eq!(csv_fields("").unwrap(), [""]);
        assert!(csv_fields("a\"b").is_err());
        assert!(csv_fields("\"ab").is_err());
    }

    #[test]
    fn defaults_by_type() {
        // commands_runmount.go: bind when no type; ro for bind/secret/ssh, rw for cache/tmpfs
        let m = parse("target=/x").unwrap();
        assert_eq!((m.kind, m.readonly), (Kind::Bind, true));
        let m = parse("type=cache,target=/c").unwrap();
        assert_eq!((m.kind, m.readonly), (Kind::Cache, false));
        let m = parse("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!((m.readonly, m.size), (false, Some(64 << 20)));
        let m = parse("type=secret,id=s").unwrap();
        assert!(m.readonly && !m.required);
        let m = parse("type=bind,target=/x,rw").unwrap();
        assert!(!m.readonly);
        let m = parse("type=cache,target=/c,ro=true,sharing=LOCKED,mode=0700,uid=1000,gid=1001,id=pip").unwrap();
        assert_eq!(
            (m.readonly, m.sharing, m.mode, m.uid, m.gid, m.id.as_deref()),
            (true, Some(Sharing::Locked), Some(0o700), Some(1000), Some(1001), Some("pip"))
        );
        let m = parse("TYPE=ssh,required,dst=/s").unwrap();
        assert!(m.required && m.target.as_deref() == Some("/s"));
        let m = parse("type=secret,id=t,env=TOKEN,required=true").unwrap();
        assert_eq!((m.env.as_deref(), m.required), (Some("TOKEN"), true));
    }

    #[test]
    fn refusals_as_buildkit_words_them() {
        for (val, want) in [
            ("type=nfs,target=/x", "unsupported mount type \"nfs\""),
            ("type=cache,target=/x,sharing=everyone", "unsupported sharing value \"everyone\""),
            ("type=bind,target=/x,mode=0700", "mode not allowed for \"bind\" type mounts"),
            ("type=tmpfs,target=/x,uid=1", "uid not allowed for \"tmpfs\" type mounts"),
            ("type=bind,target=/x,required", "unexpected key 'required' for mount type 'bind'"),
            ("type=cache,target=/x,size=1m", "unexpected key 'size' for mount type 'cache'"),
            ("type=cache,target=/x,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
            ("type=cache,target", "invalid field 'target' must be a key=value pair"),
            ("type=secret,from=x,id=a", "secret mount should not have a from"),
            ("type=secret,id=a,sharing=shared", "secret mount should not define sharing"),
            ("type=secret", "one of source, target required"),
            ("type=secret,source=a,id=b", "both source and id can't be set"),
            ("type=bind,target=/x,sharing=locked", "invalid cache sharing set for bind mount"),
            ("type=ssh,source=x", "ssh does not support source"),
            ("type=cache,target=/x,mode=9", "invalid value 9 for mode"),
            ("type=bind,target=/x,ro=maybe", "invalid value for ro: maybe"),
            ("type=cache,target=/x,env=A", "unexpected key 'env' for mount type 'cache'"),
            ("type=secret,id=a,rw", "secret mounts are read-only"),
            ("type=tmpfs,target=/t,from=x", "unexpected key 'from' for mount type 'tmpfs'"),
        ] {
            let e = parse(val).unwrap_err();
            assert!(e.contains(want), "{val}: {e}");
        }
    }

    #[test]
    fn from_before_expansion() {
        assert_eq!(raw_from("type=bind,from=build,target=/b").unwrap().as_deref(), Some("build"));
        assert_eq!(raw_from("type=cache,target=/c").unwrap(), None);
        assert!(raw_from("from=$STAGE,target=/b").is_err());
        assert_eq!(raw_target("type=bind,from=build,dst=/b"), "/b");
    }

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("1024"), Some(1024));
        assert_eq!(ram_in_bytes("64k"), Some(64 << 10));
        assert_eq!(ram_in_bytes("1.5G"), Some(3 << 29));
        assert_eq!(ram_in_bytes("10mb"), Some(10 << 20));
        assert_eq!(ram_in_bytes("ten"), None);
    }
}
