//! How a build reports what it does (`--progress`). `plain` is docker's classic log
//! (`Step N/M : ...`, ` ---> Using cache`, ` ---> ID`); `tty` is a compact view for a terminal
//! in BuildKit's words: one line per step, drawn while the step works and redrawn with
//! `CACHED` or its duration when it ends. RUN output streams in both. It only formats and
//! writes; the build decides what happened.

use crate::store::image::short_id;
use std::io::Write;
use std::sync::{Arc, Mutex};
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

/// The log of one build, which all its handles write.
struct Shared<'a> {
    mode: Mode,
    out: Box<dyn Write + Send + 'a>,
    /// The steps being drawn (tty): the handle, its label and when it started.
    open: Vec<(usize, String, Instant)>,
    /// The open steps' line is on screen and not ended by a newline (tty).
    drawn: bool,
    /// Stages run at once: every line says its stage and step, RUN output comes through
    /// [`Progress::line`], and the tty line shows every step that runs.
    parallel: bool,
    handles: usize,
}

impl Shared<'_> {
    fn write(&mut self, s: &str) {
        let _ = self.out.write_all(s.as_bytes());
        let _ = self.out.flush();
    }

    /// Draws the open steps on the last line (tty).
    fn redraw(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let labels: Vec<&str> = self.open.iter().map(|(_, l, _)| l.as_str()).collect();
        let line = format!("{CLEAR_LINE} => {}", labels.join("  |  "));
        self.write(&line);
        self.drawn = true;
    }

    /// Takes the open step of handle `me` off the drawn line.
    fn close(&mut self, me: usize) -> Option<(String, Instant)> {
        let i = self.open.iter().position(|(h, _, _)| *h == me)?;
        let (_, l, t) = self.open.remove(i);
        Some((l, t))
    }

    /// Ends a drawn step line so that other output starts on a line of its own (tty): in
    /// parallel the drawn line is erased (it is drawn again below), else it stays.
    fn end_line(&mut self) {
        if self.drawn {
            self.write(if self.parallel { CLEAR_LINE } else { "\n" });
            self.drawn = false;
        }
    }
}

/// A handle on the build's log. Stages that run at once each write through a handle of their
/// own ([`Progress::stage`]), which labels their lines.
pub struct Progress<'a> {
    shared: Arc<Mutex<Shared<'a>>>,
    me: usize,
    /// The stage's name, shown in parallel.
    stage: String,
    /// `[stage N/M] ` in parallel (the open step's), else "".
    prefix: String,
}

impl<'a> Progress<'a> {
    pub fn new(mode: Mode, out: Box<dyn Write + Send + 'a>) -> Progress<'a> {
        let shared = Shared { mode, out, open: Vec::new(), drawn: false, parallel: false, handles: 1 };
        Progress { shared: Arc::new(Mutex::new(shared)), me: 0, stage: String::new(), prefix: String::new() }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Shared<'a>) -> R) -> R {
        let mut g = match self.shared.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// From now on stages run at once: lines are labelled with their stage and step.
    pub fn set_parallel(&self) {
        self.with(|s| s.parallel = true);
    }

    /// A handle for stage `name` of the same log.
    pub fn stage(&self, name: &str) -> Progress<'a> {
        let me = self.with(|s| {
            s.handles += 1;
            s.handles
        });
        Progress { shared: self.shared.clone(), me, stage: name.to_string(), prefix: String::new() }
    }

    /// A step starts: `n` of `total`, as written in the Dockerfile.
    pub fn step(&mut self, n: usize, total: usize, text: &str) {
        let w = total.to_string().len();
        let (mode, parallel) = self.with(|s| (s.mode, s.parallel));
        if parallel {
            self.prefix = format!("[{} {n}/{total}] ", self.stage);
        }
        let prefix = &self.prefix;
        let me = self.me;
        self.with(|s| match mode {
            Mode::Plain => s.write(&format!("{prefix}Step {n}/{total} : {text}\n")),
            Mode::Tty => {
                let label = if parallel {
                    format!("[{} {n:>w$}/{total}] {text}", self.stage)
                } else {
                    format!("[{n:>w$}/{total}] {text}")
                };
                s.close(me);
                s.open.push((me, label, Instant::now()));
                s.redraw();
            }
        })
    }

    /// The step was found in the cache; `id` is the resulting image config.
    pub fn cached(&mut self, id: &str) {
        let (prefix, me) = (&self.prefix, self.me);
        self.with(|s| match s.mode {
            Mode::Plain => s.write(&format!("{prefix} ---> Using cache\n{prefix} ---> {}\n", short_id(id))),
            Mode::Tty => {
                if let Some((label, _)) = s.close(me) {
                    s.write(&format!("{CLEAR_LINE} => CACHED {label}\n"));
                }
                s.drawn = false;
                s.redraw();
            }
        })
    }

    /// The step ran; `id` is the resulting image (None where there is none: `FROM scratch`).
    pub fn done(&mut self, id: Option<&str>) {
        self.end_step(id, "");
    }

    fn end_step(&mut self, id: Option<&str>, word: &str) {
        let (prefix, me) = (&self.prefix, self.me);
        self.with(|s| match s.mode {
            Mode::Plain => {
                if let Some(id) = id {
                    s.write(&format!("{prefix} ---> {}\n", short_id(id)))
                }
            }
            Mode::Tty => {
                if let Some((label, t)) = s.close(me) {
                    let secs = t.elapsed().as_secs_f64();
                    let start = if s.drawn { CLEAR_LINE } else { "" };
                    s.write(&format!("{start} => {word}{label}  {secs:.1}s\n"));
                    s.drawn = false;
                }
                s.redraw();
            }
        })
    }

    /// The build failed in the open steps: tty marks their lines `ERROR` (lines of their own,
    /// so the error message that follows is not glued to them); the plain log already says
    /// where it was.
    pub fn fail(&mut self) {
        let open: Vec<usize> = self.with(|s| s.open.iter().map(|(h, _, _)| *h).collect());
        for h in open {
            let mut p = Progress { shared: self.shared.clone(), me: h, stage: String::new(), prefix: String::new() };
            p.end_step(None, "ERROR ");
        }
        self.with(|s| s.end_line());
    }

    /// The open step of this handle stopped because another failed (tty: `CANCELED`).
    pub fn canceled(&mut self) {
        let prefix = &self.prefix;
        if self.with(|s| s.mode == Mode::Plain) {
            self.with(|s| s.write(&format!("{prefix}CANCELED\n")));
        } else {
            self.end_step(None, "CANCELED ");
        }
    }

    /// A remark about the open step (cache explanations, build triggers).
    pub fn note(&mut self, text: &str) {
        let prefix = &self.prefix;
        self.with(|s| match s.mode {
            Mode::Plain => s.write(&format!("{prefix}{text}\n")),
            Mode::Tty => {
                s.end_line();
                s.write(&format!(" => => {prefix}{}\n", text.trim_start_matches(" ---> ")));
                if s.parallel {
                    s.redraw();
                }
            }
        })
    }

    /// A line of RUN output (stages that run at once: labelled with the step).
    pub fn line(&self, text: &str) {
        let prefix = &self.prefix;
        self.with(|s| {
            s.end_line();
            s.write(&format!("{prefix}{text}\n"));
            if s.mode == Mode::Tty {
                s.redraw();
            }
        })
    }

    /// RUN output goes through [`Progress::line`] (stages run at once).
    pub fn labels_output(&self) -> bool {
        self.with(|s| s.parallel)
    }

    /// A RUN container starts: its output follows on lines of its own.
    pub fn run_start(&mut self, container: &str) {
        let prefix = &self.prefix;
        self.with(|s| match s.mode {
            Mode::Plain => s.write(&format!("{prefix} ---> Running in {container}\n")),
            Mode::Tty => {
                if !s.parallel {
                    s.end_line()
                }
            }
        })
    }

    /// The RUN container is gone.
    pub fn run_end(&mut self, container: &str) {
        let prefix = &self.prefix;
        self.with(|s| {
            if s.mode == Mode::Plain {
                s.write(&format!("{prefix}Removing intermediate container {container}\n"));
            }
        })
    }

    /// The image is written and named.
    pub fn finish(&mut self, id: &str, tags: &[String]) {
        self.with(|s| match s.mode {
            Mode::Plain => {
                s.write(&format!("Successfully built {}\n", short_id(id)));
                for t in tags {
                    s.write(&format!("Successfully tagged {t}\n"));
                }
            }
            Mode::Tty => {
                s.end_line();
                s.write(&format!(" => writing image {id} done\n"));
                for t in tags {
                    s.write(&format!(" => naming to {t} done\n"));
                }
            }
        })
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

    #[test]
    fn stages_at_once_label_their_lines() {
        // plain: every line of a stage says its stage and step, RUN output included
        let b = Buf::default();
        let main = Progress::new(Mode::Plain, Box::new(b.clone()));
        main.set_parallel();
        let (mut a, mut c) = (main.stage("a"), main.stage("stage-1"));
        a.step(1, 4, "RUN x");
        c.step(3, 4, "RUN y");
        a.run_start("c1");
        a.line("out of a");
        c.note("a note");
        c.cached("sha256:cccccccccccccccc");
        a.done(Some("sha256:aaaaaaaaaaaaaaaa"));
        assert_eq!(
            b.text(),
            "[a 1/4] Step 1/4 : RUN x\n[stage-1 3/4] Step 3/4 : RUN y\n[a 1/4]  ---> Running in c1\n[a 1/4] out of a\n\
             [stage-1 3/4] a note\n[stage-1 3/4]  ---> Using cache\n[stage-1 3/4]  ---> cccccccccccc\n[a 1/4]  ---> aaaaaaaaaaaa\n"
        );
        // tty: the last line shows every step that runs; output goes above it
        let b = Buf::default();
        let main = Progress::new(Mode::Tty, Box::new(b.clone()));
        main.set_parallel();
        let (mut a, mut c) = (main.stage("a"), main.stage("b"));
        a.step(1, 4, "RUN x");
        c.step(3, 4, "RUN y");
        a.line("out");
        a.done(None);
        let t = b.text();
        assert!(t.ends_with("\r\x1b[K => [b 3/4] RUN y"), "{t:?}");
        assert!(t.contains("\r\x1b[K => [a 1/4] RUN x  |  [b 3/4] RUN y\r\x1b[K[a 1/4] out\n"), "{t:?}");
        assert!(t.contains(" => [a 1/4] RUN x  0.0s\n"), "{t:?}");
        // a failure marks the open steps
        c.fail();
        assert!(b.text().ends_with(" => ERROR [b 3/4] RUN y  0.0s\n"), "{:?}", b.text());
    }
}
