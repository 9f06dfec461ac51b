//! Sources a build fetches, served on loopback by the test itself: a tiny HTTP server
//! ([`web::Server`]) and `git daemon` over a repository made on the spot ([`GitServer`]). Both
//! are stopped when dropped (the server's thread joined, git-daemon killed by pid).

/// A tiny HTTP/1.1 server on loopback for ADD's URL sources: each path serves a body with an
/// ETag and a Last-Modified, answers `If-None-Match` naming its ETag with a 304, and logs
/// `METHOD PATH STATUS` of each request. Stopped (its thread joined) when dropped.
pub mod web {
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;

    #[derive(Clone)]
    pub struct File {
        pub body: Vec<u8>,
        pub etag: Option<String>,
        pub last_modified: Option<String>,
    }

    pub struct Server {
        pub addr: SocketAddr,
        pub files: Arc<Mutex<HashMap<String, File>>>,
        pub log: Arc<Mutex<Vec<String>>>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    fn serve(mut c: TcpStream, files: &Mutex<HashMap<String, File>>, log: &Mutex<Vec<String>>) {
        let mut r = BufReader::new(match c.try_clone() {
            Ok(c) => c,
            Err(_) => return,
        });
        let mut first = String::new();
        if r.read_line(&mut first).is_err() {
            return;
        }
        let mut inm = None;
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("if-none-match") {
                    inm = Some(v.trim().to_string());
                }
            }
        }
        let mut parts = first.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let f = files.lock().unwrap().get(path.split('?').next().unwrap_or("")).cloned();
        let (status, head, body) = match f {
            None => (404, String::new(), b"not found\n".to_vec()),
            Some(f) => {
                let mut h = String::new();
                if let Some(e) = &f.etag {
                    h.push_str(&format!("ETag: {e}\r\n"));
                }
                if let Some(lm) = &f.last_modified {
                    h.push_str(&format!("Last-Modified: {lm}\r\n"));
                }
                let hit = matches!((&inm, &f.etag), (Some(i), Some(e)) if i.split(',').any(|t| t.trim() == e));
                if hit {
                    (304, h, Vec::new())
                } else {
                    (200, h, f.body)
                }
            }
        };
        log.lock().unwrap().push(format!("{method} {path} {status}"));
        let reason = match status {
            200 => "OK",
            304 => "Not Modified",
            _ => "Not Found",
        };
        let mut out = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n{head}");
        if status != 304 {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if method != "HEAD" {
            bytes.extend_from_slice(&body);
        }
        let _ = c.write_all(&bytes);
    }

    impl Server {
        pub fn start() -> Server {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            let addr = l.local_addr().expect("local addr");
            let files: Arc<Mutex<HashMap<String, File>>> = Arc::default();
            let log: Arc<Mutex<Vec<String>>> = Arc::default();
            let stop = Arc::new(AtomicBool::new(false));
            let (f, lg, st) = (files.clone(), log.clone(), stop.clone());
            let thread = std::thread::spawn(move || {
                for c in l.incoming() {
                    if st.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(c) = c {
                        serve(c, &f, &lg);
                    }
                }
            });
            Server { addr, files, log, stop, thread: Some(thread) }
        }

        pub fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }

        pub fn put(&self, path: &str, body: &[u8], etag: Option<&str>, last_modified: Option<&str>) {
            let f = File {
                body: body.to_vec(),
                etag: etag.map(str::to_string),
                last_modified: last_modified.map(str::to_string),
            };
            self.files.lock().unwrap().insert(path.to_string(), f);
        }

        /// The requests logged so far, and the log emptied.
        pub fn take_log(&self) -> Vec<String> {
            std::mem::take(&mut *self.log.lock().unwrap())
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(self.addr);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// A git repository served by `git daemon` on loopback (stopped by pid when dropped): `repo`
/// has a tag v1 (annotated) on its first commit and `main` one commit later.
pub struct GitServer {
    dir: tempfile::TempDir,
    port: u16,
    child: std::process::Child,
}

pub fn git(dir: &std::path::Path, args: &[&str], date: &str) {
    let o = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
        .args(args)
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .expect("run git");
    assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

impl GitServer {
    pub fn start() -> Option<GitServer> {
        if std::process::Command::new("git").arg("--version").output().is_err() {
            crate::skip("no git (the git package): ADD of a git repository is not tested");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join("sub")).unwrap();
        git(&repo, &["init", "-q"], "@1600000000 +0000");
        std::fs::write(repo.join("foo"), "foo v1\n").unwrap();
        std::fs::write(repo.join("sub/b.txt"), "b v1\n").unwrap();
        std::fs::write(repo.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(repo.join("run.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        git(&repo, &["add", "-A"], "@1600000000 +0000");
        git(&repo, &["commit", "-q", "-m", "one"], "@1600000000 +0000");
        git(&repo, &["tag", "-a", "v1", "-m", "v1"], "@1600000000 +0000");
        std::fs::write(repo.join("foo"), "foo v2\n").unwrap();
        std::fs::write(repo.join("sub/b.txt"), "b v2\n").unwrap();
        git(&repo, &["commit", "-q", "-am", "two"], "@1600000100 +0000");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // git-daemon itself, so that its pid is the one to stop (`git daemon` runs it as a child)
        let exec_path = std::process::Command::new("git").arg("--exec-path").output().expect("git --exec-path");
        let daemon = std::path::Path::new(String::from_utf8_lossy(&exec_path.stdout).trim()).join("git-daemon");
        let child = std::process::Command::new(daemon)
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--informative-errors")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", dir.path().display()))
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start git daemon");
        let g = GitServer { dir, port, child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(g);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("git daemon did not listen on 127.0.0.1:{port}");
    }

    pub fn url(&self) -> String {
        format!("git://127.0.0.1:{}/repo", self.port)
    }

    /// A new commit on main.
    pub fn commit(&self, file: &str, content: &str) {
        let repo = self.dir.path().join("repo");
        std::fs::write(repo.join(file), content).unwrap();
        git(&repo, &["commit", "-q", "-am", "more"], "@1600000200 +0000");
    }
}

impl GitServer {
    /// The repository's work tree (to read or change it between builds).
    pub fn repo(&self) -> std::path::PathBuf {
        self.dir.path().join("repo")
    }

    /// A new commit on main adding (or changing) `files`, made at `date` (`@SECONDS +0000`).
    pub fn commit_files(&self, files: &[(&str, &str)], date: &str) {
        let repo = self.repo();
        for (p, content) in files {
            let p = repo.join(p);
            std::fs::create_dir_all(p.parent().expect("a file in the repository")).unwrap();
            std::fs::write(p, content).unwrap();
        }
        git(&repo, &["add", "-A"], date);
        git(&repo, &["commit", "-q", "-m", "files"], date);
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
