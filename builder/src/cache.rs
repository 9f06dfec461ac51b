//! Build cache keys and entries. A step's key hashes the parent state, the expanded
//! instruction text, the build args it sees and, for COPY/ADD, the fingerprints of its
//! sources. Entries record enough of those inputs to explain a later miss. Never a file's mtime
//! (whether layers keep them, `rewrite-timestamp`, is an input).

use crate::store::image::Layer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The inputs of one step.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Inputs {
    /// The instruction keyword (`RUN`, `COPY`, ...), for matching steps when explaining.
    pub keyword: String,
    /// The expanded instruction text.
    pub text: String,
    /// Build args visible to the step.
    pub args: BTreeMap<String, String>,
    /// COPY/ADD source fingerprints by name.
    pub files: BTreeMap<String, String>,
    /// Identity of other inputs (a `--from` stage's state).
    pub extra: String,
    /// The times the step writes (`rewrite-timestamp`, the mtimes, `created`), as a miss names
    /// them. Keyed through the parent (see `exec`); empty in entries made before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub times: String,
}

/// What a cache hit restores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The key's parent: the state below as far as a step can read it (`exec::fs_id`).
    pub parent: String,
    /// The config digest of the state the step ran on: a hit on exactly that state restores
    /// `config` as it was; on another one with the same layers, the step's change is made again.
    #[serde(default)]
    pub config_parent: String,
    pub inputs: Inputs,
    /// Config digest of the resulting state.
    pub config: String,
    pub layers: Vec<Layer>,
}

/// The part of an [`Entry`] a cache hit needs. Reading only this skips building the maps of
/// `inputs` (a COPY of a large context records a fingerprint per file; only explanations use them).
#[derive(Debug, Clone, Deserialize)]
pub struct Hit {
    #[serde(default)]
    pub config_parent: String,
    pub config: String,
    pub layers: Vec<Layer>,
}

/// The cache key of a step on `parent`.
pub fn key(parent: &str, i: &Inputs) -> String {
    let mut h = Sha256::new();
    h.update(b"slipway-cache-v1\0");
    h.update(parent.as_bytes());
    h.update([0]);
    h.update(i.text.as_bytes());
    h.update([0]);
    for (k, v) in &i.args {
        h.update(format!("{k}={v}\0").as_bytes());
    }
    h.update([1]);
    // no string made per file: a COPY of a large context has one entry per file
    for (k, v) in &i.files {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    h.update([1]);
    h.update(i.extra.as_bytes());
    hex::encode(h.finalize())
}

/// Why `now` misses where `before` (a step cached on the same parent) would have hit.
pub fn explain(before: &Inputs, now: &Inputs) -> Vec<String> {
    let mut out = Vec::new();
    if before.text != now.text {
        out.push(format!("instruction text changed: {:?} -> {:?}", before.text, now.text));
    }
    for (k, v) in &now.args {
        match before.args.get(k) {
            None => out.push(format!("build arg {k} added ({k}={v})")),
            Some(b) if b != v => out.push(format!("build arg {k} changed: {b:?} -> {v:?}")),
            _ => {}
        }
    }
    for k in before.args.keys() {
        if !now.args.contains_key(k) {
            out.push(format!("build arg {k} removed"));
        }
    }
    for (k, v) in &now.files {
        match before.files.get(k) {
            None => out.push(format!("file added: {k}")),
            Some(b) if b != v => out.push(format!("file changed: {k}")),
            _ => {}
        }
    }
    for k in before.files.keys() {
        if !now.files.contains_key(k) {
            out.push(format!("file removed: {k}"));
        }
    }
    if !before.times.is_empty() && before.times != now.times {
        out.push(format!("timestamps changed: {} -> {}", before.times, now.times));
    }
    if before.extra != now.extra && out.is_empty() {
        out.push("the --from source changed".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(text: &str, args: &[(&str, &str)], files: &[(&str, &str)]) -> Inputs {
        Inputs {
            keyword: "COPY".into(),
            text: text.into(),
            args: args.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            files: files.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            extra: String::new(),
            times: String::new(),
        }
    }

    #[test]
    fn keys_change_with_each_input() {
        let base = inputs("COPY a /", &[("A", "1")], &[("a", "x")]);
        let k = key("p", &base);
        // Pinned: keys of existing caches stay valid across slipway versions; a change of the
        // derivation must change the "slipway-cache-v1" tag instead (computed apart, in Python).
        assert_eq!(k, "2b354e06828385fae0f0dcc561d9e23163656579bd8c540a8fef173747eafb17");
        // Equal inputs made apart, maps filled in another order, give the same key.
        let two = inputs("COPY a /", &[("A", "1"), ("B", "2")], &[("a", "x"), ("b", "y")]);
        let owt = inputs("COPY a /", &[("B", "2"), ("A", "1")], &[("b", "y"), ("a", "x")]);
        assert_eq!(key("p", &two), key("p", &owt));
        // The key is only the inputs': the keyword is for explanations (the text names it).
        assert_eq!(k, key("p", &Inputs { keyword: "ADD".into(), ..base.clone() }));
        assert_ne!(k, key("q", &base));
        assert_ne!(k, key("p", &Inputs { extra: "stage-state".into(), ..base.clone() }));
        // Field boundaries are kept: text moved into the parent is another key.
        assert_ne!(key("pC", &inputs("OPY a /", &[("A", "1")], &[("a", "x")])), k);
        assert_ne!(k, key("p", &inputs("COPY a /b", &[("A", "1")], &[("a", "x")])));
        assert_ne!(k, key("p", &inputs("COPY a /", &[("A", "2")], &[("a", "x")])));
        assert_ne!(k, key("p", &inputs("COPY a /", &[("A", "1")], &[("a", "y")])));
    }

    #[test]
    fn explains_what_changed() {
        let before = inputs("COPY . /", &[("A", "1")], &[("a", "x"), ("b", "y")]);
        let now = inputs("COPY . /", &[("A", "2")], &[("a", "z"), ("c", "w")]);
        let e = explain(&before, &now);
        assert!(e.contains(&"build arg A changed: \"1\" -> \"2\"".to_string()), "{e:?}");
        assert!(e.contains(&"file changed: a".to_string()));
        assert!(e.contains(&"file added: c".to_string()));
        assert!(e.contains(&"file removed: b".to_string()));
        // the times the step writes (`rewrite-timestamp`) are named; an entry from before they
        // were recorded says nothing of them
        let t = |times: &str| Inputs { times: times.into(), ..before.clone() };
        let e = explain(&t("rewrite-timestamp=true (file mtimes 0)"), &t("rewrite-timestamp=false"));
        assert_eq!(e, ["timestamps changed: rewrite-timestamp=true (file mtimes 0) -> rewrite-timestamp=false"]);
        assert!(explain(&before, &t("rewrite-timestamp=false")).is_empty());
    }
}
