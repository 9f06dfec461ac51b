//! `linux.seccomp` as a libseccomp filter. `build` turns the config into a filter context (pure
//! apart from libseccomp's own name lookups); `load` installs it. Unknown syscall names are skipped,
//! as runc does, so one profile works across kernels and architectures.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use crate::error::{Error, Result};

/// EPERM: what SCMP_ACT_ERRNO returns when no errnoRet is given.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> ScmpAction {
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno.unwrap_or(DEFAULT_ERRNO) as i32),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        // runtime-spec: SCMP_ACT_TRACE returns errnoRet to the tracer (EPERM by default).
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno.unwrap_or(DEFAULT_ERRNO) as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    }
}

fn compare(op: LinuxSeccompOperator, index: usize, value: u64, two: Option<u64>) -> ScmpArgCompare {
    let op_value = match op {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // MASKED_EQ: (arg & value) == valueTwo.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (ScmpCompareOp::MaskedEqual(value), two.unwrap_or(0)),
    };
    ScmpArgCompare::new(index as u32, op_value.0, op_value.1)
}

/// Serde's (spec) name of an enum value, for messages.
fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Builds the filter the config describes.
pub fn build(s: &LinuxSeccomp) -> Result<ScmpFilterContext> {
    let path = "linux.seccomp";
    let err = |what: String, e: libseccomp::error::SeccompError| Error::msg(format!("{path}.{what}: {e}"));
    let default = action(s.default_action(), s.default_errno_ret());
    let mut ctx = ScmpFilterContext::new_filter(default).map_err(|e| err("defaultAction".into(), e))?;
    // The filter's own NNP handling is off: skiff sets no_new_privs itself when asked to.
    ctx.set_ctl_nnp(false).map_err(|e| err("flags".into(), e))?;
    for (i, arch) in s.architectures().iter().flatten().enumerate() {
        let arch_name = name(arch);
        let a: ScmpArch = arch_name
            .parse()
            .map_err(|_| Error::msg(format!("{path}.architectures[{i}]: unknown architecture {arch_name:?}")))?;
        ctx.add_arch(a).map_err(|e| err(format!("architectures[{i}]"), e))?;
    }
    for (i, flag) in s.flags().iter().flatten().enumerate() {
        let flag_name = name(flag);
        match flag_name.as_str() {
            "SECCOMP_FILTER_FLAG_LOG" => ctx.set_ctl_log(true).map_err(|e| err(format!("flags[{i}]"), e))?,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => ctx.set_ctl_ssb(true).map_err(|e| err(format!("flags[{i}]"), e))?,
            // TSYNC syncs the filter to every thread; skiff's init has only one, so it holds
            // without the flag (runc ignores it too).
            "SECCOMP_FILTER_FLAG_TSYNC" => {}
            other => {
                return Err(Error::msg(format!("{path}.flags[{i}]: {other} is not supported by skiff")));
            }
        }
    }
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        let act = action(call.action(), call.errno_ret());
        // A rule with the default action is rejected by libseccomp and means nothing anyway.
        if act == default {
            continue;
        }
        let args = call.args().clone().unwrap_or_default();
        let conds: Vec<ScmpArgCompare> =
            args.iter().map(|a| compare(a.op(), a.index(), a.value(), a.value_two())).collect();
        // Several conditions on one argument cannot be ANDed in one libseccomp rule; runc adds one
        // rule per condition then (so they OR). Conditions on distinct arguments AND in one rule.
        let mut indexes: Vec<usize> = args.iter().map(|a| a.index()).collect();
        indexes.sort_unstable();
        let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
        for name in call.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                crate::log::debug(&format!("{path}.syscalls[{i}]: unknown syscall {name:?} (skipped, as runc)"));
                continue;
            };
            let res = if conds.is_empty() {
                ctx.add_rule(act, sc)
            } else if repeated {
                conds.iter().try_for_each(|c| ctx.add_rule_conditional(act, sc, &[*c]))
            } else {
                ctx.add_rule_conditional(act, sc, &conds)
            };
            res.map_err(|e| err(format!("syscalls[{i}] ({name})"), e))?;
        }
    }
    Ok(ctx)
}

/// True if the profile sends any call to a user-space listener (SCMP_ACT_NOTIFY).
pub fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls().iter().flatten().any(|c| c.action() == LinuxSeccompAction::ScmpActNotify)
}

/// Loads the filter into this process; returns the notify fd when the filter has NOTIFY rules.
pub fn load(s: &LinuxSeccomp, ctx: &ScmpFilterContext) -> Result<Option<OwnedFd>> {
    ctx.load().map_err(|e| Error::msg(format!("linux.seccomp: load the filter: {e}")))?;
    if !uses_notify(s) {
        return Ok(None);
    }
    let fd = ctx.get_notify_fd().map_err(|e| Error::msg(format!("linux.seccomp: notify fd: {e}")))?;
    Ok(Some(crate::sys::owned_fd(fd)))
}

/// Hands the notify fd of process `pid` to `linux.seccomp.listenerPath`: one connection, one
/// message carrying the runtime-spec's container process state JSON and the fd (SCM_RIGHTS).
pub fn send_to_listener(s: &LinuxSeccomp, pid: i32, state: &serde_json::Value, fd: BorrowedFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let path = s
        .listener_path()
        .as_ref()
        .ok_or_else(|| Error::config("linux.seccomp.listenerPath", "is required when an action is SCMP_ACT_NOTIFY"))?;
    let msg = serde_json::json!({
        "ociVersion": state["ociVersion"],
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": s.listener_metadata().clone().unwrap_or_default(),
        "state": state,
    });
    let bytes = msg.to_string();
    let sock = UnixStream::connect(path)
        .map_err(|e| Error::msg(format!("linux.seccomp.listenerPath: connect to {}: {e}", path.display())))?;
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(bytes.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| {
        Error::msg(format!("linux.seccomp.listenerPath: send the seccomp state to {}: {e}", path.display()))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_profile_with_unknown_names_and_repeated_args() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat", "not_a_syscall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
            ]
        }))
        .unwrap();
        build(&s).unwrap();
    }
}
