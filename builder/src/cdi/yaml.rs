//! YAML CDI spec files as JSON values, the way the CDI library reads them (sigs.k8s.io/yaml:
//! YAML to JSON, then the same strict JSON decoding), so that a spec means the same to slipway
//! as to BuildKit, podman or containerd. Plain scalars are resolved with go-yaml's YAML 1.1
//! rules, not YAML 1.2's: `fileMode: 0666` is octal 438 there, and `yes` a boolean. Reads
//! nothing but the text it is given.
//!
//! yaml-rust2 only tokenizes; the resolution is written here because no YAML crate resolves
//! scalars as Go's yaml does, and the difference changes device file modes.

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// The first document of `text` as a JSON value; a YAML error says its line and column.
pub fn to_json(text: &str) -> Result<Value, String> {
    let mut b = Builder::default();
    Parser::new_from_str(text).load(&mut b, false).map_err(|e| e.to_string())?;
    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(b.done.unwrap_or(Value::Null))
}

enum Open {
    Seq(Vec<Value>, usize),
    /// The mapping, its pending key and its anchor.
    Map(Map<String, Value>, Option<String>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: std::collections::HashMap<usize, Value>,
    done: Option<Value>,
    error: Option<String>,
}

impl Builder {
    fn fail(&mut self, mark: Marker, msg: String) {
        if self.error.is_none() {
            self.error = Some(format!("{msg} at line {} column {}", mark.line(), mark.col()));
        }
    }

    /// Places a finished value: a key or a value of the open mapping, an item of the open
    /// sequence, or the document.
    fn put(&mut self, v: Value, key_text: Option<String>, anchor: usize, mark: Marker) {
        if anchor > 0 {
            self.anchors.insert(anchor, v.clone());
        }
        let problem = match self.stack.last_mut() {
            None => {
                self.done = Some(v);
                None
            }
            Some(Open::Seq(items, _)) => {
                items.push(v);
                None
            }
            Some(Open::Map(m, pending, _)) => match pending.take() {
                None => match key_text {
                    // as sigs.k8s.io/yaml: a scalar key becomes its text
                    Some(k) => {
                        *pending = Some(k);
                        None
                    }
                    None => Some("a mapping key must be a scalar".to_string()),
                },
                Some(k) => {
                    let dup = m.contains_key(&k).then(|| format!("duplicate key {k:?}"));
                    m.insert(k, v);
                    dup
                }
            },
        };
        if let Some(msg) = problem {
            self.fail(mark, msg);
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let v = resolve(&text, style, tag.as_ref());
                self.put(v, Some(text), anchor, mark);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(v) => {
                    let text = v.as_str().map(str::to_string);
                    self.put(v, text, 0, mark)
                }
                None => self.fail(mark, "unknown anchor".into()),
            },
            Event::SequenceStart(anchor, _) => self.stack.push(Open::Seq(Vec::new(), anchor)),
            Event::MappingStart(anchor, _) => self.stack.push(Open::Map(Map::new(), None, anchor)),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Open::Seq(items, anchor)) => self.put(Value::Array(items), None, anchor, mark),
                Some(Open::Map(m, _, anchor)) => self.put(Value::Object(m), None, anchor, mark),
                None => self.fail(mark, "unbalanced collection".into()),
            },
            _ => {}
        }
    }
}

/// A scalar as go-yaml (v2, which sigs.k8s.io/yaml uses) resolves it: quoted and block
/// scalars and `!!str` are strings; a plain one is null, a YAML 1.1 boolean, an integer
/// (decimal, 0x hex, 0b binary, 0-prefixed octal, `_` allowed), a float, else a string.
fn resolve(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    let s = Value::String(text.to_string());
    if style != TScalarStyle::Plain || tag.is_some_and(|t| t.suffix == "str") {
        return s;
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => return Value::Bool(true),
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    if let Some(n) = integer(text) {
        return match (i64::try_from(n), u64::try_from(n)) {
            (Ok(i), _) => Value::Number(i.into()),
            (_, Ok(u)) => Value::Number(u.into()),
            _ => s,
        };
    }
    let plain = text.replace('_', "");
    let is_float = plain.chars().any(|c| c.is_ascii_digit())
        && plain.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        && plain.contains(['.', 'e', 'E']);
    if is_float {
        if let Some(n) = plain.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    s
}

fn integer(text: &str) -> Option<i128> {
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let body = body.replace('_', "");
    let (digits, radix) = if let Some(h) = body.strip_prefix("0x") {
        (h, 16)
    } else if let Some(b) = body.strip_prefix("0b") {
        (b, 2)
    } else if let Some(o) = body.strip_prefix("0o") {
        (o, 8)
    } else if body.len() > 1 && body.starts_with('0') {
        (&body[1..], 8)
    } else {
        (body.as_str(), 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let n = i128::from_str_radix(digits, radix).ok()?;
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_resolve_as_go_yaml_does() {
        let doc = "a: 0666\nb: 10\nc: \"0666\"\nd: yes\ne: ~\nf: 0x1F\ng: 1.5\nh: text\ni: -3\nj: '12'\nk:\nl: 1_000\n";
        let v = to_json(doc).unwrap();
        assert_eq!(
            v,
            json!({"a": 438, "b": 10, "c": "0666", "d": true, "e": null, "f": 31, "g": 1.5, "h": "text",
                   "i": -3, "j": "12", "k": null, "l": 1000})
        );
    }

    #[test]
    fn sequences_mappings_and_anchors() {
        let doc = "---\nenv: &e\n- A=1\n- B=2\nmore: *e\nnested:\n  - {x: 1, y: [a, b]}\n";
        let v = to_json(doc).unwrap();
        assert_eq!(v, json!({"env": ["A=1", "B=2"], "more": ["A=1", "B=2"], "nested": [{"x": 1, "y": ["a", "b"]}]}));
    }

    #[test]
    fn json_is_yaml() {
        let doc = r#"{"cdiVersion": "0.6.0", "devices": [{"name": "x", "n": 7}]}"#;
        assert_eq!(to_json(doc).unwrap(), json!({"cdiVersion": "0.6.0", "devices": [{"name": "x", "n": 7}]}));
    }

    #[test]
    fn errors_say_where() {
        let e = to_json("a: 1\na: 2\n").unwrap_err();
        assert!(e.contains("duplicate key \"a\"") && e.contains("line 2"), "{e}");
        let e = to_json("a: [1, 2\n").unwrap_err();
        assert!(e.contains("line"), "{e}");
        let e = to_json("? [1]\n: x\n").unwrap_err();
        assert!(e.contains("mapping key must be a scalar"), "{e}");
    }
}
