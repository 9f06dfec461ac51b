//! ADD's remote sources: files at http(s) URLs and git repositories, fetched by the builder
//! itself so RUN steps stay offline; and remote build contexts (`context`), made of the same. Which source words are URLs and which are git remotes is
//! decided here, by BuildKit's rules (pure functions, unit-tested); `http` talks to web servers
//! (revalidating by ETag, keeping the content as a blob of the store), `git` runs the system's
//! `git` (ls-remote to plan a step, fetch and checkout on a miss). Nothing here knows about
//! layers or Dockerfiles.

pub mod context;
pub mod git;
pub mod http;

/// A fetch that failed, with what was asked and what answered.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Whether an ADD source word is an http(s) URL of a file (BuildKit's `isHTTPSource`: a URL
/// whose path ends in `.git` is a git repository instead).
pub fn is_http(src: &str) -> bool {
    (src.starts_with("http://") || src.starts_with("https://")) && !matches!(git::parse(src), Ok(Some(_)) | Err(_))
}

/// Percent-decoding as Go's `url.PathUnescape` (an invalid escape stays as written).
pub fn unescape(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The name ADD gives the content of a URL, as BuildKit's frontend picks it: the last element
/// of the URL's (decoded) path, `__unnamed__` when there is none. The server's
/// Content-Disposition is not asked: the frontend names the file before fetching.
pub fn url_file_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['#', '?']).next().unwrap_or("");
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = unescape(path);
    // Go's path.Base: trailing slashes dropped, "" and "/" have no name
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(b) if !b.is_empty() && b != "." => b.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

/// Removes every directory in `dir` (prune's caches of fetched sources); returns the bytes of
/// the files that went.
pub(crate) fn remove_entries(dir: &std::path::Path) -> u64 {
    let mut freed = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let size: u64 = walkdir::WalkDir::new(e.path())
            .into_iter()
            .flatten()
            .filter_map(|f| f.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        if std::fs::remove_dir_all(e.path()).is_ok() {
            freed += size;
        }
    }
    freed
}

/// What `prune` drops of ADD's remote sources: the bare git repositories (`cache/git/`: a
/// later miss fetches its commit again; cached steps are keyed by commit and stay hits) and the
/// records of URLs none of whose contents is still a blob (`cache/http/`). Returns the bytes
/// freed. The caller holds the store's gc lock, so no build fetches meanwhile.
pub fn prune(store: &crate::store::Store) -> u64 {
    let freed = remove_entries(&store.root.join("cache/git"));
    if let Ok(rd) = std::fs::read_dir(store.root.join("cache/http")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let recs: Vec<http::Record> = store.read_record(&format!("cache/http/{name}")).unwrap_or_default();
            if !recs.iter().any(|r| store.has_blob(&r.digest)) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    freed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_their_file_names() {
        // (source, an http file?, the name BuildKit's frontend gives it)
        let rows = [
            ("https://example.com/dl/tool-1.2.tar.gz", true, "tool-1.2.tar.gz"),
            ("http://127.0.0.1:8080/a%20b.txt?x=1#frag", true, "a b.txt"),
            ("https://example.com/dir/", true, "dir"),
            ("https://example.com", true, "__unnamed__"),
            ("https://example.com/", true, "__unnamed__"),
            // a path ending in .git is a repository, not a file
            ("https://example.com/repo.git", false, "repo.git"),
            ("https://example.com/repo.git#main:sub", false, "repo.git"),
        ];
        for (src, http, name) in rows {
            assert_eq!(is_http(src), http, "{src}");
            assert_eq!(url_file_name(src), name, "{src}");
        }
        assert!(!is_http("ftp://example.com/x"));
        assert!(!is_http("local/file"));
    }
}
