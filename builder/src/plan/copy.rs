//! COPY and ADD as a plan: flags checked and expanded, sources typed once (context paths
//! resolved against `.dockerignore` and `--exclude`, `--from` patterns kept for when that
//! filesystem is mounted, heredoc bodies expanded, `--parents` split at their pivot, URLs and
//! git references told apart and asked what they hold now), the destination joined onto
//! WORKDIR, and the cache key's parts: file fingerprints, a URL's content digest, a git
//! commit.

use super::planner::Remotes;
use super::state::{At, State};
use super::{BuildError, Copy, Dest, GitSource, Origin, Source, UrlSource};
use crate::cache::Inputs;
use crate::context::Context;
use crate::dockerignore::Matcher;
use crate::fetch;
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
    remotes: &dyn Remotes,
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
    // octal, or chmod's symbolic form; empty (an ARG that expands to nothing) is no --chmod,
    // as in BuildKit
    let chmod = match &a.chmod {
        Some(c) => {
            let c = at.expand(c, &env)?;
            match c.is_empty() {
                true => None,
                false => Some(crate::chmod::Chmod::parse(&c).map_err(|e| at.err(format!("{kw}: {e}")))?),
            }
        }
        None => None,
    };
    let checksum = match &a.checksum {
        Some(c) => Some(at.expand(c, &env)?),
        None => None,
    };
    if checksum.is_some() && a.sources.len() != 1 {
        return Err(at.err("ADD --checksum can't be specified for multiple sources"));
    }
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
    let mut context_reads = Vec::new();
    // the history's sources: BuildKit's dispatchCopy writes the paths, then each heredoc as
    // `<<NAME`
    let (mut shown_paths, mut shown_docs) = (Vec::new(), Vec::new());
    for s in &a.sources {
        let s = match s {
            CopySource::Heredoc { word, doc } => {
                let content = if doc.expand { at.expand_heredoc(&doc.content, &env)? } else { doc.content.clone() };
                inputs.files.insert(format!("<<{}", doc.name), crate::store::image::digest_of(content.as_bytes()));
                shown.push(word.clone());
                shown_docs.push(format!("<<{}", doc.name));
                sources.push(Source::Heredoc { name: doc.name.clone(), content });
                continue;
            }
            CopySource::Path(s) => s,
        };
        let src = at.expand(s, &env)?;
        shown.push(src.clone());
        shown_paths.push(src.clone());
        if from == Origin::Context && !src.starts_with("http://") && !src.starts_with("https://") {
            context_reads.push(src.clone());
        }
        let git = fetch::git::parse(&src).map_err(|e| at.err(format!("{kw} {src}: {e}")))?;
        if checksum.is_some() && git.is_none() && !fetch::is_http(&src) {
            return Err(at.err("ADD --checksum requires HTTP(S) or Git sources"));
        }
        if let Some(g) = git {
            if !is_add {
                return Err(at.err(format!("{kw} {src}: source can't be a git ref for COPY")));
            }
            let g = git_ref(at, a, g, checksum.as_deref())?;
            let (commit, full_ref) = remotes.git(&g).map_err(|e| at.err(format!("{kw} {src}: {e}")))?;
            let keep = g.keep_git_dir.unwrap_or(false);
            let mtime = if g.mtime_commit { "commit" } else { "checkout" };
            let key = format!(
                "git:{commit} ref={full_ref} subdir={} keep-git-dir={keep} submodules={} mtime={mtime}",
                g.subdir, g.submodules
            );
            inputs.files.insert(src.clone(), key);
            sources.push(Source::Git(GitSource {
                remote: g.remote,
                ref_name: full_ref,
                commit,
                subdir: g.subdir,
                keep_git_dir: keep,
                submodules: g.submodules,
                mtime_commit: g.mtime_commit,
            }));
            continue;
        }
        if fetch::is_http(&src) {
            if !is_add {
                return Err(at.err(format!("{kw} {src}: source can't be a URL for COPY")));
            }
            let name = fetch::url_file_name(&src);
            let (fetched, key) = match &checksum {
                Some(c) => {
                    fetch::http::parse_checksum(c).map_err(|e| at.err(format!("ADD --checksum: {e}")))?;
                    (None, format!("url:{c} name={name}"))
                }
                None => {
                    let (d, lm) = remotes.http(&src).map_err(|e| at.err(format!("{kw} {src}: {e}")))?;
                    let key = format!("url:{d} name={name} mtime={}", lm.map(|t| t.to_string()).unwrap_or_default());
                    (Some((d, lm)), key)
                }
            };
            inputs.files.insert(src.clone(), key);
            let unpack = a.unpack.unwrap_or(false);
            sources.push(Source::Url(UrlSource { url: src, name, checksum: checksum.clone(), fetched, unpack }));
            continue;
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
            // ADD unpacks local archives unless `--unpack=false`
            let extract = is_add && a.unpack.unwrap_or(true) && path.is_file() && crate::layer::is_archive(&path);
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
    if let Some(m) = &chmod {
        flags.push_str(&format!("--chmod={m} "));
    }
    let mut excludes = String::new();
    for (_, p) in &excl {
        excludes.push_str(&format!("--exclude={p} "));
    }
    // the history says what BuildKit's commit message says: `--parents`, `--chown`, `--chmod`
    // and the sources (no `--from`, `--exclude`, `--link`: convert_copy.go dispatchCopy)
    shown_paths.extend(shown_docs);
    let created_by = format!("{kw} {flags}{} {dest_raw} # buildkit", shown_paths.join(" "));
    // the key keeps the text it always had
    let keyed = format!("{kw} {from_text}{flags}{excludes}{} {dest_raw} # buildkit", shown.join(" "));
    inputs.text = format!("{keyed} dest={dest}{}", if link { " link" } else { "" });
    if let Some(u) = a.unpack {
        inputs.text.push_str(&format!(" unpack={u}"));
    }
    let dest = Dest { path: dest, dir: dest_dir };
    let copy = Copy { kw, from, sources, dest, chown, chmod, exclude, link, context_reads };
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

/// A git reference with the step's own flags joined in, as BuildKit's frontend does.
fn git_ref(
    at: &At,
    a: &CopyArgs,
    mut g: fetch::git::GitRef,
    checksum: Option<&str>,
) -> Result<fetch::git::GitRef, BuildError> {
    if let (Some(flag), Some(url)) = (a.keep_git_dir, g.keep_git_dir) {
        if flag != url {
            return Err(at.err("ADD: inconsistent keep-git-dir configuration"));
        }
    }
    g.keep_git_dir = g.keep_git_dir.or(a.keep_git_dir);
    if let (Some(flag), Some(url)) = (checksum, g.checksum.as_deref()) {
        if flag != url {
            return Err(at.err(format!("ADD: checksum mismatch {flag:?} != {url:?}")));
        }
    }
    if g.checksum.is_none() {
        g.checksum = checksum.map(str::to_string);
    }
    Ok(g)
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
