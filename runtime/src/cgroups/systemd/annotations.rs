//! `org.systemd.property.NAME` annotations as extra properties of the container's unit, as runc
//! reads them (libcontainer/specconv initSystemdProps): the value is in GVariant text format
//! (`uint64 123`, `'inactive-or-failed'`, `true`, `@as ['a.service']`), a `...Sec` name becomes
//! `...USec` with its number of seconds in microseconds, and the properties go into the unit's
//! start after skiff's own (so they can replace them) and before the resources (which win, as
//! runc's later Set wins). A name or value skiff cannot read is refused with the annotation's
//! key, never dropped. Only the scalar types, strings and string arrays are read: the types
//! systemd's unit properties use that make sense for a container's scope; anything else is
//! refused by name.

use std::collections::HashMap;

use super::properties::{Property, Value};
use crate::error::{Error, Result};

const PREFIX: &str = "org.systemd.property.";

/// The unit properties of the `org.systemd.property.*` annotations, sorted by key (the map has no
/// order; runc's Go map has none either).
pub fn plan(annotations: &HashMap<String, String>) -> Result<Vec<Property>> {
    let mut keys: Vec<&String> = annotations.keys().filter(|k| k.starts_with(PREFIX)).collect();
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let raw = &annotations[key];
        let source = format!("annotations[{key:?}]");
        let bad = |why: String| Error::config(source.clone(), why);
        let mut name = key[PREFIX.len()..].to_string();
        if name.len() < 3 || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(bad(format!("{name:?} is not a systemd property name (3 or more ASCII letters)")));
        }
        let mut value = parse_gvariant(raw).map_err(|why| bad(format!("{raw:?}: {why}")))?;
        // runc: systemd documents TimeoutStopSec but takes TimeoutStopUSec over D-Bus.
        if let Some(base) = name.strip_suffix("Sec") {
            if base.ends_with(|c: char| c.is_ascii_lowercase()) {
                value = sec_to_usec(&value).ok_or_else(|| bad(format!("{raw:?}: {name} takes a number of seconds")))?;
                name = format!("{base}USec");
            }
        }
        out.push(Property { name: name.into(), value, source });
    }
    Ok(out)
}

/// A number of seconds as microseconds (`t`), as runc's convertSecToUSec (negative numbers wrap
/// there; refused here).
fn sec_to_usec(v: &Value) -> Option<Value> {
    const M: u64 = 1_000_000;
    let secs = match v {
        Value::U8(n) => *n as u64 * M,
        Value::I16(n) => u64::try_from(*n).ok()? * M,
        Value::U16(n) => *n as u64 * M,
        Value::I32(n) => u64::try_from(*n).ok()? * M,
        Value::U32(n) => *n as u64 * M,
        Value::I64(n) => u64::try_from(*n).ok()?.checked_mul(M)?,
        Value::U64(n) => n.checked_mul(M)?,
        Value::Double(bits) => {
            let d = f64::from_bits(*bits);
            if !(0.0..=u64::MAX as f64 / M as f64).contains(&d) {
                return None;
            }
            (d * M as f64) as u64
        }
        _ => return None,
    };
    Some(Value::U64(secs))
}

/// One value in GVariant text format (docs.gtk.org/glib/gvariant-text-format.html): `true`,
/// `false`, numbers (int32 unless typed, double with a `.` or exponent), a type keyword or `@T`
/// before a number (`uint64 5`, `@t 5`), quoted strings, and arrays of strings (`['a', "b"]`,
/// `@as []`).
pub fn parse_gvariant(text: &str) -> std::result::Result<Value, String> {
    let t = text.trim();
    let (ty, rest) = if let Some(r) = t.strip_prefix('@') {
        let (ty, rest) = r.split_once(char::is_whitespace).ok_or("a type annotation without a value")?;
        (Some(ty.to_string()), rest.trim())
    } else {
        const KEYWORDS: [(&str, &str); 8] = [
            ("byte", "y"),
            ("int16", "n"),
            ("uint16", "q"),
            ("int32", "i"),
            ("uint32", "u"),
            ("int64", "x"),
            ("uint64", "t"),
            ("double", "d"),
        ];
        match KEYWORDS.iter().find_map(|(k, ty)| Some((ty, t.strip_prefix(k)?))) {
            Some((ty, rest)) if rest.starts_with(char::is_whitespace) => (Some(ty.to_string()), rest.trim()),
            _ => (None, t),
        }
    };
    if rest.starts_with('[') {
        if !matches!(ty.as_deref(), None | Some("as")) {
            return Err(format!("an array typed {:?}: only arrays of strings (as) are read", ty.unwrap_or_default()));
        }
        return parse_string_array(rest).map(Value::StrList);
    }
    if rest.starts_with(['\'', '"']) {
        if !matches!(ty.as_deref(), None | Some("s")) {
            return Err(format!("a string typed {:?}", ty.unwrap_or_default()));
        }
        let (s, after) = parse_string(rest)?;
        if !after.trim().is_empty() {
            return Err(format!("{:?} after the string", after.trim()));
        }
        return Ok(Value::Str(s));
    }
    if rest == "true" || rest == "false" {
        if !matches!(ty.as_deref(), None | Some("b")) {
            return Err(format!("a boolean typed {:?}", ty.unwrap_or_default()));
        }
        return Ok(Value::Bool(rest == "true"));
    }
    if ty.is_none() && !rest.starts_with(|c: char| c.is_ascii_digit() || "+-.".contains(c)) {
        return Err("not a GVariant value (strings are quoted: 'text'; see runc's docs/systemd.md)".to_string());
    }
    let is_float = rest.contains(['.', 'e', 'E']);
    let ty = ty.unwrap_or_else(|| if is_float { "d" } else { "i" }.to_string());
    let not = |what: &str| format!("{rest:?} is not {what}");
    if ty == "d" {
        let d: f64 = rest.parse().map_err(|_| not("a number"))?;
        if !d.is_finite() {
            return Err(not("a finite number"));
        }
        return Ok(Value::Double(d.to_bits()));
    }
    let n: i128 = rest.parse().map_err(|_| not("an integer"))?;
    let range =
        |v: std::result::Result<Value, std::num::TryFromIntError>| v.map_err(|_| not(&format!("in {ty}'s range")));
    match ty.as_str() {
        "y" => range(u8::try_from(n).map(Value::U8)),
        "n" => range(i16::try_from(n).map(Value::I16)),
        "q" => range(u16::try_from(n).map(Value::U16)),
        "i" => range(i32::try_from(n).map(Value::I32)),
        "u" => range(u32::try_from(n).map(Value::U32)),
        "x" => range(i64::try_from(n).map(Value::I64)),
        "t" => range(u64::try_from(n).map(Value::U64)),
        other => Err(format!("type {other:?} is not read (only y n q i u x t d b s as)")),
    }
}

/// A quoted string with GVariant's escapes (\\, \', \", \n, \t, \uXXXX); returns it and the rest.
fn parse_string(s: &str) -> std::result::Result<(String, &str), String> {
    let mut chars = s.char_indices();
    let quote = chars.next().map(|(_, c)| c).ok_or("an empty string")?;
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == quote => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('u') => {
                    let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                    let c = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                    out.push(c.ok_or_else(|| format!("\\u{hex} is not a character"))?);
                }
                Some(c) => out.push(c),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("the string's closing quote is missing".to_string())
}

fn parse_string_array(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut rest = s.strip_prefix('[').unwrap_or(s).trim_start();
    let mut out = Vec::new();
    if let Some(after) = rest.strip_prefix(']') {
        return if after.trim().is_empty() { Ok(out) } else { Err(format!("{:?} after the array", after.trim())) };
    }
    loop {
        if !rest.starts_with(['\'', '"']) {
            return Err("only arrays of quoted strings are read".to_string());
        }
        let (item, after) = parse_string(rest)?;
        out.push(item);
        let after = after.trim_start();
        if let Some(r) = after.strip_prefix(',') {
            rest = r.trim_start();
        } else if let Some(r) = after.strip_prefix(']') {
            return if r.trim().is_empty() { Ok(out) } else { Err(format!("{:?} after the array", r.trim())) };
        } else {
            return Err("expected ',' or ']' in the array".to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Result<Vec<Property>> {
        plan(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn gvariant_values_parse_like_godbus() {
        for (text, want) in [
            ("uint64 123456789", Value::U64(123456789)),
            ("@t 5", Value::U64(5)),
            ("'inactive-or-failed'", Value::Str("inactive-or-failed".into())),
            ("\"it's\"", Value::Str("it's".into())),
            ("'a\\'b\\n'", Value::Str("a'b\n".into())),
            ("true", Value::Bool(true)),
            ("@b false", Value::Bool(false)),
            // untyped integers are int32 (GVariant's and godbus's default), decimals double
            ("10", Value::I32(10)),
            ("-3", Value::I32(-3)),
            ("1.5", Value::Double(1.5f64.to_bits())),
            ("int64 -7", Value::I64(-7)),
            ("byte 255", Value::U8(255)),
            ("uint32 7", Value::U32(7)),
            ("['a.service', \"b.service\"]", Value::StrList(vec!["a.service".into(), "b.service".into()])),
            ("@as []", Value::StrList(vec![])),
        ] {
            assert_eq!(parse_gvariant(text), Ok(want), "{text}");
        }
        for bad in [
            "byte 256",
            "5000000000",
            "uint64 -1",
            "'open",
            "[1, 2]",
            "@ai [1]",
            "{'a': 1}",
            "nope",
            "@t",
            "'a' 'b'",
            "uint64 'x'",
            "double nan",
        ] {
            assert!(parse_gvariant(bad).is_err(), "{bad:?} parsed: {:?}", parse_gvariant(bad));
        }
    }

    #[test]
    fn annotations_become_properties_like_runc() {
        let p = props(&[
            ("org.systemd.property.TimeoutStopUSec", "uint64 123456789"),
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            // runc's Sec -> USec: seconds in microseconds
            ("org.systemd.property.RuntimeMaxSec", "90"),
            ("org.systemd.property.TimeoutStopSec", "1.5"),
            ("com.example.other", "not read"),
        ])
        .unwrap();
        let got: Vec<(&str, &Value)> = p.iter().map(|p| (p.name.as_ref(), &p.value)).collect();
        assert_eq!(
            got,
            vec![
                ("CollectMode", &Value::Str("inactive-or-failed".into())),
                ("RuntimeMaxUSec", &Value::U64(90_000_000)),
                ("TimeoutStopUSec", &Value::U64(1_500_000)),
                ("TimeoutStopUSec", &Value::U64(123456789)),
            ]
        );
        assert_eq!(p[0].source, "annotations[\"org.systemd.property.CollectMode\"]");
        // "USec" itself is left alone: 'U' before "Sec" is not lowercase.
        let p = props(&[("org.systemd.property.FooUSec", "@t 1")]).unwrap();
        assert_eq!(p[0].name, "FooUSec");
    }

    #[test]
    fn unreadable_annotations_are_refused_by_key() {
        for (key, value, why) in [
            ("org.systemd.property.Ab", "1", "property name"),
            ("org.systemd.property.Memory-Max", "1", "property name"),
            ("org.systemd.property.CollectMode", "inactive", "strings are quoted"),
            ("org.systemd.property.CPUWeight", "uint64 lots", "is not an integer"),
            ("org.systemd.property.TimeoutStopSec", "'ten'", "takes a number of seconds"),
            ("org.systemd.property.TimeoutStopSec", "-1", "takes a number of seconds"),
        ] {
            let err = props(&[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(&format!("annotations[{key:?}]")) && err.contains(why), "{key}={value}: {err}");
        }
    }
}
