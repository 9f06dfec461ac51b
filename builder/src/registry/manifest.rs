//! Manifests as registries serve them: Docker v2 schema 2 and OCI image manifests, manifest
//! lists and OCI indexes; choosing a platform's entry. Pure data; no I/O.

use crate::store::image::{self, Descriptor, Index, Manifest};

pub const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MT_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MT_DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const MT_DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// What `GET /manifests` asks for.
pub fn accept_header() -> String {
    [image::MT_MANIFEST, image::MT_INDEX, image::MT_DOCKER_MANIFEST, MT_DOCKER_LIST].join(", ")
}

/// The layer media types slipway can unpack.
pub fn layer_supported(mt: &str) -> bool {
    matches!(
        mt,
        image::MT_LAYER_GZIP
            | image::MT_LAYER_TAR
            | MT_LAYER_ZSTD
            | image::MT_DOCKER_LAYER_GZIP
            | MT_DOCKER_LAYER_TAR
            | "application/vnd.docker.image.rootfs.diff.tar.zstd"
    )
}

/// A manifest as fetched.
#[derive(Debug, Clone)]
pub enum Fetched {
    Image(Manifest),
    Index(Index),
}

/// Classifies manifest bytes by their `mediaType` (or the Content-Type, or their shape).
pub fn classify(bytes: &[u8], content_type: &str) -> Result<(String, Fetched), String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let mt = v
        .get("mediaType")
        .and_then(|m| m.as_str())
        .filter(|m| !m.is_empty())
        .unwrap_or(content_type.split(';').next().unwrap_or("").trim())
        .to_string();
    if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) || mt == MT_DOCKER_SCHEMA1 {
        return Err("Docker schema 1 manifests are not supported (deprecated by docker in 2019)".into());
    }
    let is_index =
        mt == image::MT_INDEX || mt == MT_DOCKER_LIST || (v.get("manifests").is_some() && v.get("config").is_none());
    if is_index {
        let idx: Index = serde_json::from_value(v).map_err(|e| format!("index: {e}"))?;
        let mt = if mt.is_empty() { image::MT_INDEX.to_string() } else { mt };
        return Ok((mt, Fetched::Index(idx)));
    }
    let m: Manifest = serde_json::from_value(v).map_err(|e| format!("manifest: {e}"))?;
    let mt = if mt.is_empty() { image::MT_MANIFEST.to_string() } else { mt };
    if m.config.media_type.contains("cnab") || m.config.media_type.contains("helm") {
        return Err(format!("an artifact ({}), not a container image", m.config.media_type));
    }
    Ok((mt, Fetched::Image(m)))
}

/// A platform: `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// This machine (linux, Go's name for our architecture).
    pub fn host() -> Platform {
        Platform { os: "linux".into(), architecture: image::go_arch().into(), variant: None }
    }

    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || format!("platform {s:?}: expected OS/ARCH[/VARIANT]");
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform { os: os.to_string(), architecture: normalize_arch(arch), variant: None })
            }
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                Ok(Platform { os: os.to_string(), architecture: normalize_arch(arch), variant: Some(v.to_string()) })
            }
            _ => Err(bad()),
        }
    }

    /// containerd's `platforms.Normalize`: the OS lowercased, the architecture's other names
    /// (`x86_64`, `aarch64`, `armhf`...) and the variants a name implies or makes redundant
    /// (`linux/arm` is `linux/arm/v7`, `linux/arm64/v8` is `linux/arm64`) as containerd
    /// writes them (database.go normalizeArch). BuildKit formats it to look a per-platform
    /// named context up (dockerui config.go NamedContext).
    pub fn normalized(&self) -> Platform {
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self.variant.as_deref().unwrap_or("").to_ascii_lowercase();
        let (arch, variant) = match arch.as_str() {
            "i386" => ("386".to_string(), String::new()),
            "x86_64" | "x86-64" | "amd64" => ("amd64".into(), if variant == "v1" { String::new() } else { variant }),
            "aarch64" | "arm64" => (
                "arm64".into(),
                match variant.as_str() {
                    "8" | "v8" | "v8.0" => String::new(),
                    "9" | "9.0" | "v9.0" => "v9".into(),
                    _ => variant,
                },
            ),
            "armhf" => ("arm".into(), "v7".into()),
            "armel" => ("arm".into(), "v6".into()),
            "arm" => (
                "arm".into(),
                match variant.as_str() {
                    "" | "7" => "v7".into(),
                    "5" | "6" | "8" => format!("v{variant}"),
                    _ => variant,
                },
            ),
            _ => (arch, variant),
        };
        Platform {
            os: if self.os.eq_ignore_ascii_case("macos") { "darwin".into() } else { self.os.to_ascii_lowercase() },
            architecture: arch,
            variant: Some(variant).filter(|v| !v.is_empty()),
        }
    }

    /// containerd's matching: same os and architecture; a requested variant must match (an
    /// arm64 entry without a variant is v8).
    pub fn matches(&self, p: &serde_json::Value) -> bool {
        let os = p.get("os").and_then(|v| v.as_str()).unwrap_or("");
        let arch = p.get("architecture").and_then(|v| v.as_str()).unwrap_or("");
        if os != self.os || normalize_arch(arch) != self.architecture {
            return false;
        }
        let variant = p.get("variant").and_then(|v| v.as_str()).filter(|v| !v.is_empty());
        match (&self.variant, variant) {
            (None, _) => true,
            (Some(want), Some(got)) => want == got,
            (Some(want), None) => self.architecture == "arm64" && want == "v8",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(a: &str) -> String {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" => "386",
        a => a,
    }
    .to_string()
}

/// The index entry for `platform`: the first match, preferring an entry with no variant
/// when none was asked for (as containerd's default matcher ranks them).
pub fn pick<'a>(idx: &'a Index, platform: &Platform) -> Option<&'a Descriptor> {
    let cands: Vec<&Descriptor> =
        idx.manifests.iter().filter(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p))).collect();
    cands.first().copied()
}

/// The platforms an index offers (for the error when none fits).
pub fn platforms(idx: &Index) -> Vec<String> {
    idx.manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| {
            let mut s = format!(
                "{}/{}",
                p.get("os").and_then(|v| v.as_str()).unwrap_or("?"),
                p.get("architecture").and_then(|v| v.as_str()).unwrap_or("?")
            );
            if let Some(v) = p.get("variant").and_then(|v| v.as_str()) {
                s.push('/');
                s.push_str(v);
            }
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(entries: &[(&str, &str, Option<&str>)]) -> Index {
        Index {
            schema_version: 2,
            media_type: MT_DOCKER_LIST.into(),
            manifests: entries
                .iter()
                .enumerate()
                .map(|(i, (os, arch, v))| Descriptor {
                    media_type: image::MT_DOCKER_MANIFEST.into(),
                    digest: format!("sha256:{i:064}"),
                    size: 1,
                    annotations: Default::default(),
                    platform: Some(match v {
                        Some(v) => serde_json::json!({"os": os, "architecture": arch, "variant": v}),
                        None => serde_json::json!({"os": os, "architecture": arch}),
                    }),
                })
                .collect(),
            annotations: Default::default(),
        }
    }

    #[test]
    fn platform_choice() {
        let i = idx(&[
            ("linux", "amd64", None),
            ("linux", "arm", Some("v7")),
            ("linux", "arm64", None),
            ("windows", "amd64", None),
        ]);
        let p = |s: &str| Platform::parse(s).unwrap();
        assert_eq!(pick(&i, &p("linux/amd64")).unwrap().digest, format!("sha256:{:064}", 0));
        assert_eq!(pick(&i, &p("linux/arm/v7")).unwrap().digest, format!("sha256:{:064}", 1));
        assert!(pick(&i, &p("linux/arm/v6")).is_none());
        // arm64 without a variant is v8, as containerd reads it
        assert_eq!(pick(&i, &p("linux/arm64/v8")).unwrap().digest, format!("sha256:{:064}", 2));
        assert_eq!(pick(&i, &p("linux/aarch64")).unwrap().digest, format!("sha256:{:064}", 2));
        assert!(pick(&i, &p("linux/s390x")).is_none());
        assert_eq!(platforms(&i), ["linux/amd64", "linux/arm/v7", "linux/arm64", "windows/amd64"]);
        // containerd's Normalize, as BuildKit formats the platform of a per-platform context
        for (given, normal) in [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("Linux/AMD64/v1", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm64/9", "linux/arm64/v9"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/6", "linux/arm/v6"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/i386", "linux/386"),
            ("macos/arm64", "darwin/arm64"),
            ("linux/riscv64", "linux/riscv64"),
        ] {
            assert_eq!(p(given).normalized().to_string(), normal, "{given}");
        }
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64/v8");
    }

    #[test]
    fn classify_manifests() {
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:00","size":1},"layers":[]}"#;
        let (mt, f) = classify(m, "").unwrap();
        assert_eq!(mt, image::MT_DOCKER_MANIFEST);
        assert!(matches!(f, Fetched::Image(_)));
        // an OCI index without mediaType is known by its shape
        let (mt, f) =
            classify(br#"{"schemaVersion":2,"manifests":[]}"#, "application/vnd.oci.image.index.v1+json").unwrap();
        assert_eq!(mt, image::MT_INDEX);
        assert!(matches!(f, Fetched::Index(_)));
        let e = classify(br#"{"schemaVersion":1,"name":"x"}"#, MT_DOCKER_SCHEMA1).unwrap_err();
        assert!(e.contains("schema 1"), "{e}");
        assert!(classify(b"nope", "").is_err());
    }
}
