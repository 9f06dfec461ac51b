//! How a build reports what it does (`--progress`). `plain` is docker's classic log
//! (`Step N/M : ...`, ` ---> Using cache`, ` ---> ID`); `tty` is a compact view for a terminal
//! in BuildKit's words: one line per step, drawn while the step works and redrawn with
//! `CACHED` or its duration when it ends. RUN output streams in both. It only formats and
//! writes; the build decides what happened.

use crate::store::image::short_id;
use std::io::Write;
use std::time::Instant;

/// What `--progress` resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Tty,
}

impl Mode {
    /// docker's values: `auto` is `tty` on a terminal, else `plain`. `tty` on something that is
    /// not a terminal prints the plain log (escape codes in a file or pipe help no one).
    pub fn choose(flag: &str, stdout_is_terminal: bool) -> Option<Mode> {
        match (flag, stdout_is_terminal) {
            ("plain", _) => Some(Mode::Plain),
            ("auto" | "tty", true) => Some(Mode::Tty),
            ("auto" | "tty", false) => Some(Mode::Plain),
            _ => None,
        }
    }
}

/// Erase the current terminal line and go to its start.
const CLEAR_LINE: &str = "\r\x1b[K";

pub struct Progress<'a> {
    mode: Mode,
    out: Box<dyn Write + 'a>,
    /// The step being drawn (tty): its label and when it started.
    open: Option<(String, Instant)>,
    /// The open step's line is on screen and not ended by a newline (tty).
    drawn: bool,
}

impl<'a> Progress<'a> {
    pub fn new(mode: Mode, out: Box<dyn Write + 'a>) -> Progress<'a> {
        Progress { mode, out, open: None, drawn: false }
    }

    fn write(&mut self, s: &str) {
        let _ = self.out.write_all(s.as_bytes());
        let _ = self.out.flush();
    }

    /// A step starts: `n` of `total`, as written in the Dockerfile.
    pub fn step(&mut self, n: usize, total: usize, text: &str) {
        match self.mode {
            Mode::Plain => self.write(&format!("Step {n}/{total} : {text}\n")),
            Mode::Tty => {
                let label = format!("[{n:>w$}/{total}] {text}", w = total.to_string().len());
                self.write(&format!("{CLEAR_LINE} => {label}"));
                self.open = Some((label, Instant::now()));
                self.drawn = true;
            }
        }
    }

    /// The step was found in the cache; `id` is the resulting image config.
    pub fn cached(&mut self, id: &str) {
        match self.mode {
            Mode::Plain => self.write(&format!(" ---> Using cache\n ---> {}\n", short_id(id))),
            Mode::Tty => {
                if let Some((label, _)) = self.open.take() {
                    self.write(&format!("{CLEAR_LINE} => CACHED {label}\n"));
                }
                self.drawn = false;
            }
        }
    }

    /// The step ran; `id` is the resulting image (None where there is none: `FROM scratch`).
    pub fn done(&mut self, id: Option<&str>) {
        match self.mode {
            Mode::Plain => {
                if let Some(id) = id {
                    self.write(&format!(" ---> {}\n", short_id(id)))
                }
            }
            Mode::Tty => {
                if let Some((label, t)) = self.open.take() {
                    let secs = t.elapsed().as_secs_f64();
                    let start = if self.drawn { CLEAR_LINE } else { "" };
                    self.write(&format!("{start} => {label}  {secs:.1}s\n"));
                }
                self.drawn = false;
            }
        }
    }

    /// The build failed in the open step: tty marks its line `ERROR` (a line of its own, so the
    /// error message that follows is not glued to it); the plain log already says where it was.
    pub fn fail(&mut self) {
        if self.mode != Mode::Tty {
            return;
        }
        if let Some((label, t)) = self.open.take() {
            let secs = t.elapsed().as_secs_f64();
            let start = if self.drawn { CLEAR_LINE } else { "" };
            self.write(&format!("{start} => ERROR {label}  {secs:.1}s\n"));
        }
        self.drawn = false;
    }

    /// A remark about the open step (cache explanations, build triggers).
    pub fn note(&mut self, s: &str) {
        match self.mode {
            Mode::Plain => self.write(&format!("{s}\n")),
            Mode::Tty => {
                self.end_line();
                self.write(&format!(" => => {}\n", s.trim_start_matches(" ---> ")));
            }
        }
    }

    /// A RUN container starts: its output follows on lines of its own.
    pub fn run_start(&mut self, container: &str) {
        match self.mode {
            Mode::Plain => self.write(&format!(" ---> Running in {container}\n")),
            Mode::Tty => self.end_line(),
        }
    }

    /// The RUN container is gone.
    pub fn run_end(&mut self, container: &str) {
        if self.mode == Mode::Plain {
            self.write(&format!("Removing intermediate container {container}\n"));
        }
    }

    /// The image is written and named.
    pub fn finish(&mut self, id: &str, tags: &[String]) {
        match self.mode {
            Mode::Plain => {
                self.write(&format!("Successfully built {}\n", short_id(id)));
                for t in tags {
                    self.write(&format!("Successfully tagged {t}\n"));
                }
            }
            Mode::Tty => {
                self.write(&format!(" => writing image {id} done\n"));
                for t in tags {
                    self.write(&format!(" => naming to {t} done\n"));
                }
            }
        }
    }

    /// Ends a drawn step line so that other output starts on a line of its own (tty).
    fn end_line(&mut self) {
        if self.drawn {
            self.write("\n");
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    #[test]
    fn choose_like_docker() {
        // auto follows the terminal; plain is always the log; tty off a terminal is the log
        assert_eq!(Mode::choose("auto", true), Some(Mode::Tty));
        assert_eq!(Mode::choose("auto", false), Some(Mode::Plain));
        assert_eq!(Mode::choose("plain", true), Some(Mode::Plain));
        assert_eq!(Mode::choose("tty", true), Some(Mode::Tty));
        assert_eq!(Mode::choose("tty", false), Some(Mode::Plain));
        assert_eq!(Mode::choose("fancy", true), None);
    }

    fn script(mode: Mode) -> String {
        let b = Buf::default();
        let mut p = Progress::new(mode, Box::new(b.clone()));
        p.step(1, 10, "FROM scratch");
        p.done(Some("sha256:0123456789abcdef"));
        p.step(2, 10, "COPY a /a");
        p.cached("sha256:aaaaaaaaaaaaaaaa");
        p.step(3, 10, "RUN true");
        p.run_start("c1");
        p.run_end("c1");
        p.done(Some("sha256:bbbbbbbbbbbbbbbb"));
        p.finish("sha256:bbbbbbbbbbbbbbbb", &["x:latest".into()]);
        b.text()
    }

    #[test]
    fn plain_is_dockers_classic_log() {
        assert_eq!(
            script(Mode::Plain),
            "Step 1/10 : FROM scratch\n ---> 0123456789ab\nStep 2/10 : COPY a /a\n ---> Using cache\n ---> aaaaaaaaaaaa\n\
             Step 3/10 : RUN true\n ---> Running in c1\nRemoving intermediate container c1\n ---> bbbbbbbbbbbb\n\
             Successfully built bbbbbbbbbbbb\nSuccessfully tagged x:latest\n"
        );
    }

    #[test]
    fn tty_draws_one_line_per_step() {
        let t = script(Mode::Tty);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("\r\x1b[K => [ 1/10] FROM scratch\r\x1b[K => [ 1/10] FROM scratch  "), "{t:?}");
        assert_eq!(lines[1], "\r\x1b[K => [ 2/10] COPY a /a\r\x1b[K => CACHED [ 2/10] COPY a /a");
        // RUN output gets its own lines: the step line ends before it and is drawn again after
        assert_eq!(lines[2], "\r\x1b[K => [ 3/10] RUN true");
        assert!(lines[3].starts_with(" => [ 3/10] RUN true  ") && lines[3].ends_with('s'), "{t:?}");
        assert_eq!(lines[4], " => writing image sha256:bbbbbbbbbbbbbbbb done");
        assert_eq!(lines[5], " => naming to x:latest done");
        assert!(!t.contains("Step "));
    }
}
