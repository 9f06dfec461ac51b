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
