//! `process.terminal: true` with `--console-socket`: the runtime sends the pty master over the
//! socket (SCM_RIGHTS) and the container's stdio is the slave.

use integration::console::{read_pty_to_end, write_pty, ConsoleSocket};
use integration::{Bundle, Runtime};
use serde_json::json;

fn terminal_bundle(script: &str) -> Bundle {
    let mut b = Bundle::new();
    b.edit(|c| c["process"]["terminal"] = json!(true)).sh(script);
    b
}

#[test]
fn console_socket_receives_a_pty_master_wired_to_the_container() {
    let rt = Runtime::new();
    let b = terminal_bundle("tty; [ -t 0 ] && echo stdin-is-a-tty; [ -t 1 ] && echo stdout-is-a-tty; echo done");
    let sock = ConsoleSocket::bind(&rt.scratch().join("console.sock"));
    let id = rt.new_id();
    rt.exec(&["create", "--bundle", b.path_str(), "--console-socket", sock.path().to_str().expect("utf-8"), &id])
        .assert_success();
    let master = sock.receive_pty();
    rt.start(&id).assert_success();
    let text = read_pty_to_end(master);
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines, ["/dev/pts/0", "stdin-is-a-tty", "stdout-is-a-tty", "done"], "{text:?}");
    rt.wait_for_status(&id, "stopped");
    rt.delete(&id).assert_success();
}

#[test]
fn input_written_to_the_pty_master_reaches_the_container() {
    let rt = Runtime::new();
    let b = terminal_bundle("stty -echo; echo ready; read line; echo \"got:$line\"");
    let sock = ConsoleSocket::bind(&rt.scratch().join("console.sock"));
    let id = rt.new_id();
    rt.exec(&["create", "--bundle", b.path_str(), "--console-socket", sock.path().to_str().expect("utf-8"), &id])
        .assert_success();
    let master = sock.receive_pty();
    rt.start(&id).assert_success();
    // The line sits in the tty's input queue until `read` takes it, so no need to wait.
    write_pty(&master, b"hello over the pty\n");
    let text = read_pty_to_end(master);
    assert!(text.contains("got:hello over the pty"), "{text:?}");
    rt.wait_for_status(&id, "stopped");
    rt.delete(&id).assert_success();
}

#[test]
fn a_terminal_without_a_console_socket_fails_create() {
    // runc: "cannot allocate tty if runc will detach without setting console socket"
    let rt = Runtime::new();
    let b = terminal_bundle("true");
    let id = rt.new_id();
    rt.create(&id, &b).assert_failure();
    assert_eq!(rt.root_entries_for(&id), Vec::<String>::new());
}

#[test]
fn a_console_socket_without_a_terminal_fails_create() {
    // runc: "cannot use console socket if runc will not detach or allocate tty"
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["true"]);
    let sock = ConsoleSocket::bind(&rt.scratch().join("console.sock"));
    let id = rt.new_id();
    rt.exec(&["create", "--bundle", b.path_str(), "--console-socket", sock.path().to_str().expect("utf-8"), &id])
        .assert_failure();
    assert_eq!(rt.root_entries_for(&id), Vec::<String>::new());
}

/// runc's quick start: `spec` writes `terminal: true` and `run ID` in a terminal gives the
/// container that terminal. The runtime allocates the pty, puts the caller's terminal in raw mode
/// (so ^C reaches the container's foreground job, not the runtime), gives the pty the caller's
/// size and follows resizes, relays both ways, exits with the container's status and restores
/// the caller's terminal.
#[test]
fn foreground_run_with_a_terminal_relays_the_callers_terminal() {
    use integration::console::PtySession;
    use nix::sys::termios::LocalFlags;
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["args"] = json!(["sh"]);
    });
    let id = rt.new_id();
    let root = rt.root();
    let args = ["--root", root.to_str().expect("utf-8"), "run", "--bundle", b.path_str(), &id];
    let mut term = PtySession::spawn(rt.binary(), &args, 24, 80);
    let before = term.initial.clone();
    assert!(before.local_flags.contains(LocalFlags::ECHO | LocalFlags::ICANON), "a fresh pty is cooked");

    // A command typed (Enter sends CR, as a terminal does) runs and its output comes back.
    term.type_text("echo $((6*7))x\r");
    term.expect("42x");
    // While the container runs, the caller's terminal is raw: no echo, no line editing.
    let during = term.termios();
    assert!(!during.local_flags.intersects(LocalFlags::ECHO | LocalFlags::ICANON), "{:?}", during.local_flags);

    // The container's terminal has the caller's size, and follows a resize.
    term.type_text("stty size | sed 's/ /x/'\r");
    term.expect("24x80");
    term.resize(30, 100);
    term.type_text("stty size | sed 's/ /x/'\r");
    term.expect("30x100");

    // ^C goes to the container's foreground job: the shell is back and the runtime lives on.
    // (the job prints once it is the terminal's foreground process group, with SIGINT's default)
    term.type_text("sh -c 'echo st''arted; exec sleep 100'\r");
    term.expect("started");
    term.type_text("\x03");
    term.type_text("echo al''ive\r");
    term.expect("alive");

    term.type_text("exit 7\r");
    assert_eq!(term.wait(), Some(7), "exit status of `run`; the terminal showed {:?}", term.seen);
    let after = term.termios();
    assert_eq!(after.local_flags, before.local_flags, "the caller's terminal is restored");
    assert_eq!(after.input_flags, before.input_flags, "the caller's terminal is restored");
    assert_eq!(after.output_flags, before.output_flags, "the caller's terminal is restored");
    assert_eq!(rt.list_ids(), Vec::<String>::new(), "run deletes the container after it exits");
}

/// A caller without a terminal (stdin a file, as in a script) still gets the container's pty
/// relayed: what it feeds is typed in, what the container prints comes out. runc 1.1.5 refuses
/// (it wants /dev/tty); skiff relays without raw mode.
#[test]
fn foreground_run_with_a_terminal_and_no_caller_terminal_relays_stdio() {
    if integration::runtime_is_runc() {
        integration::skip("runc 1.1.5 needs a terminal on the caller's side for a foreground run with terminal: true");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["args"] = json!(["sh"]);
    });
    let id = rt.new_id();
    // setsid: no controlling terminal, so /dev/tty cannot be opened either
    let mut cmd = std::process::Command::new("setsid");
    cmd.arg(rt.binary()).arg("--root").arg(rt.root()).args(["run", "--bundle", b.path_str(), &id]);
    let out = rt.exec_cmd(cmd, Some(b"[ -t 0 ] && echo in-a-t''ty\necho $((40+2))x\nexit 3\n".to_vec()));
    assert_eq!(out.code, Some(3), "{out}");
    assert!(out.stdout.contains("in-a-tty"), "{out}");
    assert!(out.stdout.contains("42x"), "{out}");
    // runc's convention: the pty does not turn "\n" into "\r\n"
    assert!(out.stdout.contains("42x\n") && !out.stdout.contains("42x\r"), "{out}");
}

/// `exec -t` in the foreground without `--console-socket` gets the same relay as `run`.
#[test]
fn foreground_exec_with_a_tty_relays_the_callers_terminal() {
    use integration::console::PtySession;
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = rt.create_and_start(&b);
    let root = rt.root();
    let args = ["--root", root.to_str().expect("utf-8"), "exec", "-t", &id, "sh"];
    let mut term = PtySession::spawn(rt.binary(), &args, 33, 99);
    term.expect("# ");
    term.type_text("[ -t 0 ] && stty size | sed 's/ /x/'\r");
    term.expect("33x99");
    term.type_text("exit 5\r");
    assert_eq!(term.wait(), Some(5), "exit status of `exec`; the terminal showed {:?}", term.seen);
    rt.kill(&id, "KILL").assert_success();
    rt.wait_for_status(&id, "stopped");
    rt.delete(&id).assert_success();
}

/// runc's quick start word for word, as the README gives it: a busybox rootfs, `spec`, then
/// `run ID` in a terminal. The shell is the container's, and `run` exits with its status.
#[test]
fn the_quick_start_spec_then_run_in_a_terminal_gives_a_shell() {
    use integration::console::PtySession;
    let rt = Runtime::new();
    let dir = tempfile::Builder::new().prefix("skiff-it-quickstart-").tempdir_in("/tmp").expect("tempdir");
    let bin = dir.path().join("rootfs/bin");
    std::fs::create_dir_all(&bin).expect("mkdir rootfs/bin");
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox (busybox-static)");
    std::os::unix::fs::symlink("busybox", bin.join("sh")).expect("symlink sh");
    std::os::unix::fs::symlink("busybox", bin.join("hostname")).expect("symlink hostname");
    let spec = std::process::Command::new(rt.binary()).arg("spec").current_dir(dir.path()).status().expect("spec");
    assert!(spec.success());
    let id = rt.new_id();
    let root = rt.root();
    // run from the bundle directory, as the quick start does (the bundle defaults to ".")
    let script =
        format!("cd {} && exec {} --root {} run {id}", dir.path().display(), rt.binary().display(), root.display());
    let mut term = PtySession::spawn(std::path::Path::new("sh"), &["-c", &script], 24, 80);
    term.type_text("echo in-$(hostname)-sh''ell\r");
    term.expect("in-");
    term.expect("-shell");
    term.type_text("exit 4\r");
    assert_eq!(term.wait(), Some(4), "{:?}", term.seen);
    assert_eq!(rt.list_ids(), Vec::<String>::new());
}
