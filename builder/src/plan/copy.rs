//! COPY and ADD as a plan: flags checked and expanded, sources typed once (context paths
//! resolved against `.dockerignore` and `--exclude`, `--from` patterns kept for when that
//! filesystem is mounted, heredoc bodies expanded, `--parents` split at their pivot), the
//! destination joined onto WORKDIR, and the cache key's file fingerprints.

use super::state::{At, State};
use super::{BuildError, Copy, Dest, Origin, Source};
use crate::cache::Inputs;
use crate::context::Context;
use crate::dockerignore::Matcher;
use crate::glob;
use crate::instructions::{CopyArgs, CopySource};
use crate::rootfs;

/// Turns an expanded `--from` value into the origin and its identity for the cache key.
pub(super) type ResolveFrom<'a> = dyn Fn(&str) -> Result<(Origin, String), BuildError> + 'a;

/// A COPY/ADD step, its cache inputs and history text. `resolve_from` turns an expanded
/// `--from` value into the origin and its identity for the key (empty for a stage, whose state
/// exists only once it is built).
pub(super) fn plan_copy(
    at: &At,
    st: &State,
    a: &CopyArgs,
    is_add: bool,
    ctx: &mut Context,
    resolve_from: &ResolveFrom,
) -> Result<(Copy, Inputs, String), BuildError> {
    let kw: &'static str = if is_add { "ADD" } else { "COPY" };
    let env = st.env();
    let dest_raw = at.expand(&a.dest, &env)?;
    // BuildKit's pathRelativeToWorkingDir: "" and "." are the working directory, as a directory
    let dest_dir = dest_raw.ends_with('/') || dest_raw.ends_with("/.") || dest_raw == "." || dest_raw.is_empty();
    let dest = rootfs::join_container_path(&st.config.config.working_dir, &dest_raw);
    if a.sources.len() > 1 && !dest_dir {
        return Err(at.err(format!(
            "When using {kw} with more than one source file, the destination must be a directory and end with a /"
        )));
    }
    let chown = match &a.chown {
        Some(c) => Some(at.expand(c, &env)?),
        None => None,
    };
    let chmod = match &a.chmod {
        Some(c) => {
            let c = at.expand(c, &env)?;
            Some(
                u32::from_str_radix(&c, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| at.err(format!("{kw}: invalid chmod parameter: {c:?} (octal modes only)")))?,
            )
        }
        None => None,
    };
    // BuildKit's frontend makes `--link --chmod` a plain copy
    let link = a.link && chmod.is_none();
    let chown = match chown {
        Some(c) if link => Some(link_chown(at, kw, &c)?),
        c => c,
    };
    let mut excl = Vec::new();
    for (i, p) in a.exclude.iter().enumerate() {
        excl.push((i + 1, at.expand(p, &env)?));
    }
    let exclude = Matcher::new(&excl).map_err(|e| at.err(format!("{kw} --exclude: {e}")))?;
    let mut inputs = Inputs { keyword: kw.into(), ..Default::default() };
    let mut from = Origin::Context;
    let mut from_text = String::new();
    if let Some(f) = &a.from {
        let f = at.expand(f, &env)?;
        let (origin, id) = resolve_from(&f)?;
        from = origin;
        inputs.extra = id;
        from_text = format!("--from={f} ");
    }
    let mut sources = Vec::new();
    let mut shown = Vec::new();
    for s in &a.sources {
        let s = match s {
            CopySource::Heredoc { word, doc } => {
                let content = if doc.expand { at.expand_heredoc(&doc.content, &env)? } else { doc.content.clone() };
                inputs.files.insert(format!("<<{}", doc.name), crate::store::image::digest_of(content.as_bytes()));
                shown.push(word.clone());
                sources.push(Source::Heredoc { name: doc.name.clone(), content });
                continue;
            }
            CopySource::Path(s) => s,
        };
        let src = at.expand(s, &env)?;
        shown.push(src.clone());
        if is_add && (src.starts_with("http://") || src.starts_with("https://") || src.starts_with("git@")) {
            return Err(at.err(format!(
                "ADD {src}: remote URL sources are not supported (slipway builds without network access)"
            )));
        }
        if a.parents {
            parents_source(at, kw, &src, &from, ctx, &exclude, &mut sources, &mut inputs)?;
            continue;
        }
        if !matches!(from, Origin::Context) {
            sources.push(Source::Path { path: src, extract: false });
            continue;
        }
        let rels = ctx.resolve(&src).map_err(|e| at.err(format!("{kw}: {e}")))?;
        if rels.is_empty() {
            // BuildKit copies with AllowEmptyWildcard: a pattern that matches nothing adds
            // nothing (`COPY foo nomatch* /d/` copies foo; alone it makes an empty layer); a
            // path that is not there is an error
            if glob::has_wildcards(&src) {
                continue;
            }
            let msg = format!("{kw}: source {src:?} not found in build context or excluded by .dockerignore");
            return Err(at.err(msg));
        }
        let rels: Vec<String> = rels.into_iter().filter(|r| r.is_empty() || !exclude.excluded(r)).collect();
        if rels.is_empty() {
            return Err(at.err(format!("{kw}: every source matching {src:?} is excluded by --exclude")));
        }
        for rel in rels {
            let mut f = ctx.fingerprints(&rel).map_err(|e| at.err(format!("{kw}: {e}")))?;
            if !exclude.is_empty() {
                f.retain(|k, _| k == "." || !exclude.excluded(k));
            }
            if inputs.files.is_empty() {
                inputs.files = f; // a COPY of the whole context: 10,000 entries not inserted again
            } else {
                inputs.files.extend(f);
            }
            let path = ctx.path(&rel);
            let extract = is_add && path.is_file() && crate::layer::is_archive(&path);
            sources.push(Source::Path { path: rel, extract });
        }
    }
    let mut flags = String::new();
    if a.parents {
        flags.push_str("--parents ");
    }
    if let Some(c) = &chown {
        flags.push_str(&format!("--chown={c} "));
    }
    if let Some(m) = chmod {
        flags.push_str(&format!("--chmod={m:o} "));
    }
    for (_, p) in &excl {
        flags.push_str(&format!("--exclude={p} "));
    }
    let created_by = format!("{kw} {from_text}{flags}{} {dest_raw} # buildkit", shown.join(" "));
    inputs.text = format!("{created_by} dest={dest}{}", if link { " link" } else { "" });
    let copy = Copy { kw, from, sources, dest: Dest { path: dest, dir: dest_dir }, chown, chmod, exclude, link };
    Ok((copy, inputs, created_by))
}

/// `--chown` of a `--link` step: a linked layer is made without the image below it, so there
/// is no /etc/passwd or /etc/group to look names up in. BuildKit fails such a step ("invalid
/// user index"); this says why. `root` is 0 whatever the files say.
fn link_chown(at: &At, kw: &str, c: &str) -> Result<String, BuildError> {
    let part = |p: &str| -> Result<String, BuildError> {
        if p == "root" {
            return Ok("0".into());
        }
        if p.parse::<u32>().is_ok() {
            return Ok(p.to_string());
        }
        Err(at.err(format!(
            "{kw} --link --chown={c}: a linked layer is made without the image below it, so {p:?} cannot be \
             looked up in its /etc/passwd or /etc/group; use numeric ids"
        )))
    };
    Ok(match c.split_once(':') {
        Some((u, g)) => format!("{}:{}", part(u)?, part(g)?),
        None => part(c)?,
    })
}

/// One `COPY --parents` source: split at its `/./` pivot (none: the root), the part before it
/// resolved in the context (a `--from` filesystem keeps it as written), and the key's
/// fingerprints of what it selects. BuildKit requires the path to exist only when neither
/// part has a wildcard.
#[allow(clippy::too_many_arguments)]
fn parents_source(
    at: &At,
    kw: &str,
    src: &str,
    from: &Origin,
    ctx: &mut Context,
    exclude: &Matcher,
    sources: &mut Vec<Source>,
    inputs: &mut Inputs,
) -> Result<(), BuildError> {
    let (root, pattern) = match src.split_once("/./") {
        Some((r, p)) => (r.to_string(), p),
        None => ("/".to_string(), src),
    };
    let include = glob::clean(&format!("/{pattern}")).trim_start_matches('/').to_string();
    let required = !glob::has_wildcards(&root) && !glob::has_wildcards(&include);
    if !matches!(from, Origin::Context) {
        sources.push(Source::Parents { root, include, required });
        return Ok(());
    }
    if required {
        let whole = format!("{}/{include}", root.trim_end_matches('/'));
        if ctx.resolve(&whole).map_err(|e| at.err(format!("{kw}: {e}")))?.is_empty() {
            return Err(at.err(format!(
                "{kw} --parents: source {src:?} not found in build context or excluded by .dockerignore"
            )));
        }
    }
    let matcher = Matcher::new(&[(1, include.clone())]).map_err(|e| at.err(format!("{kw} --parents {src:?}: {e}")))?;
    for r in ctx.resolve(&root).map_err(|e| at.err(format!("{kw}: {e}")))? {
        if !ctx.path(&r).is_dir() {
            continue;
        }
        let tree: Vec<_> = ctx.parents_tree(&r, &matcher)?.into_iter().filter(|e| !exclude.excluded(&e.rel)).collect();
        let f = ctx.fingerprints_of(&tree).map_err(|e| at.err(format!("{kw}: {e}")))?;
        inputs.files.extend(f);
        // the pivot's own place in the key: the same files under another root are another copy
        inputs.files.insert(format!("--parents {src}"), format!("root={r:?}"));
        sources.push(Source::Parents { root: r, include: include.clone(), required });
    }
    Ok(())
}
