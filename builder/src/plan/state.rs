//! What planning carries from step to step: a stage's state as the instructions so far made
//! it (`State`), and word expansion with errors at a Dockerfile line (`At`). Shared by the
//! planner and the per-instruction planning of `meta.rs`, `run.rs` and `copy.rs`.

use super::BuildError;
use crate::dockerfile::shell::{Env, Lexer};
use crate::store::image::ImageConfig;
use std::collections::BTreeMap;

/// Word expansion and errors at one Dockerfile line.
pub(super) struct At<'a> {
    pub lexer: &'a Lexer,
    pub file: &'a str,
    pub line: usize,
}

impl At<'_> {
    pub fn err(&self, msg: impl Into<String>) -> BuildError {
        BuildError::At { file: self.file.to_string(), line: self.line, msg: msg.into(), excerpt: Box::default() }
    }

    pub fn expand(&self, word: &str, env: &dyn Env) -> Result<String, BuildError> {
        self.lexer.process_word(word, env).map_err(|e| self.err(e.0))
    }

    pub fn expand_heredoc(&self, body: &str, env: &dyn Env) -> Result<String, BuildError> {
        crate::dockerfile::shell::Lexer::expand_heredoc(body, env).map_err(|e| self.err(e.0))
    }
}

/// A stage between steps, as planning sees it.
#[derive(Debug, Clone)]
pub(super) struct State {
    /// The image config as the instructions so far set it (rootfs and history aside).
    pub config: ImageConfig,
    /// ARGs declared in this stage, in order, with their values.
    pub args: Vec<(String, Option<String>)>,
    /// A CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// The build's environment as BuildKit keeps it (the LLB state's env): the base image's
    /// ENV, then every ENV and every ARG with a value in Dockerfile order, a later one
    /// replacing an earlier one of the same name whichever kind either is. So an ARG after an
    /// ENV of the same name wins in expansion and in RUN's environment, while the image config
    /// keeps the ENV value.
    pub vars: Vec<(String, String)>,
    /// The SBOM scan ARGs with values (`BUILDKIT_SBOM_SCAN_*`), in order, a base stage's
    /// first: BuildKit's dispatchState.buildArgs as its scan extras read them.
    pub scan_args: Vec<(String, String)>,
}

impl State {
    pub fn new(config: ImageConfig) -> State {
        let vars = config.env_pairs();
        State { config, args: Vec::new(), cmd_set: false, vars, scan_args: Vec::new() }
    }

    /// Variables for word expansion (and RUN's environment): `vars`.
    pub fn env(&self) -> Vec<(String, String)> {
        self.vars.clone()
    }

    /// Sets a variable as BuildKit's `EnvList.AddOrReplace` does: the old entry goes and the
    /// new one comes last.
    pub fn set_var(&mut self, k: &str, v: &str) {
        self.vars.retain(|(n, _)| n != k);
        self.vars.push((k.to_string(), v.to_string()));
    }

    /// Build args with values (what RUN sees in its environment).
    pub fn arg_values(&self) -> BTreeMap<String, String> {
        self.args.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect()
    }
}
