//! Base images for a build (`FROM`, `COPY --from=IMAGE`): the store's image if it has one,
//! else (or always, with `--pull`) the registry's, pulled into the store first.

use super::client::Options;
use super::error::RegistryError;
use super::manifest::Platform;
use super::reference::Reference;
use crate::store::{Image, Store};

/// How a build reaches registries.
#[derive(Debug, Clone, Default)]
pub struct Remote {
    pub options: Options,
    /// `--pull`: ask the registry even when the store has the image.
    pub always: bool,
}

/// The image `name` for a build: from the store (unless the store's is of another platform
/// than `platform`), or pulled (for `platform`, else this machine's). A `name@sha256:` is
/// verified against its digest when pulled.
pub fn resolve(
    store: &Store,
    name: &str,
    remote: &Remote,
    platform: Option<&Platform>,
    log: &mut Vec<String>,
) -> Result<Image, RegistryError> {
    let parsed = Reference::parse(name);
    if !remote.always {
        let mut found = store.find_image(name)?;
        if found.is_none() {
            if let Ok(r) = &parsed {
                found = store.find_image(&r.store_name())?;
            }
        }
        if let Some(img) = found {
            // an image of another platform than the one asked for is not that one: pull it
            let c = &img.config;
            let its = serde_json::json!({"os": c.os, "architecture": c.architecture, "variant": c.variant});
            match platform {
                Some(p) if !p.matches(&its) => log.push(format!(
                    "the store's {name} is {}/{}, not {p}: pulling {p}",
                    c.os,
                    [c.architecture.as_str(), c.variant.as_str()]
                        .iter()
                        .filter(|s| !s.is_empty())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("/")
                )),
                _ => return Ok(img),
            }
        }
    }
    let r = parsed?;
    let lines = std::sync::Mutex::new(Vec::new());
    let push = |s: &str| {
        if let Ok(mut l) = lines.lock() {
            l.push(s.to_string());
        }
    };
    let host = Platform::host();
    let pulled = super::pull::pull(store, &remote.options, &r, platform.unwrap_or(&host), platform.is_some(), &push);
    log.extend(lines.into_inner().unwrap_or_default());
    let pulled = pulled?;
    Ok(store.image_by_manifest(&pulled.manifest.digest)?)
}
