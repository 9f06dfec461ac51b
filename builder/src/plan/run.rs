//! RUN as a plan: the argv (shell form through SHELL, heredocs), the environment (ENV, then
//! build args the config does not set, then a default PATH), user, working dir, network, and
//! the mounts the container gets besides its rootfs.

use super::meta::with_shell;
use super::state::{At, State};
use super::{BuildError, Mount, Run};
use crate::instructions::RunCmd;
use crate::spec::Network;
use crate::store::image::DEFAULT_PATH;

/// A RUN step and its history text; `default` is `build --network`.
pub(super) fn plan_run(
    at: &At,
    st: &State,
    cmd: &RunCmd,
    network: Option<&str>,
    default: Network,
) -> Result<(Run, String), BuildError> {
    let network = match network.unwrap_or(match default {
        Network::None => "none",
        Network::Host => "host",
    }) {
        "none" => Network::None,
        "host" => Network::Host,
        "default" => default,
        other => return Err(at.err(format!("RUN --network={other}: unsupported (none or host)"))),
    };
    let mut mounts = Vec::new();
    let args = match cmd {
        RunCmd::Exec(v) => v.clone(),
        RunCmd::Shell(s) => with_shell(st, s),
        RunCmd::Heredoc(doc) if doc.content.starts_with("#!") => {
            let target = format!("/dev/pipes/{}", doc.name);
            mounts.push(Mount::Script { target: target.clone(), content: doc.content.clone() });
            vec![target]
        }
        RunCmd::Heredoc(doc) => with_shell(st, &doc.content),
    };
    let argv = st.arg_values();
    let mut env = st.config.config.env.clone();
    for (k, v) in &argv {
        if st.config.env_get(k).is_none() {
            env.push(format!("{k}={v}"));
        }
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    let prefix = if argv.is_empty() {
        String::new()
    } else {
        format!("|{} {} ", argv.len(), argv.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "))
    };
    let created_by = format!("RUN {prefix}{} # buildkit", args.join(" "));
    let cwd =
        if st.config.config.working_dir.is_empty() { "/".to_string() } else { st.config.config.working_dir.clone() };
    let run = Run { args, env, user: st.config.config.user.clone(), cwd, network, mounts };
    Ok((run, created_by))
}
