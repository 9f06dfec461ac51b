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
        self.lexer.expand_heredoc(body, env).map_err(|e| self.err(e.0))
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
}

impl State {
    /// Variables for word expansion: ARG values, overridden by ENV (ENV wins).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> =
            self.args.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect();
        v.extend(self.config.env_pairs());
        v
    }

    /// Build args with values (what RUN sees in its environment).
    pub fn arg_values(&self) -> BTreeMap<String, String> {
        self.args.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect()
    }
}
