//! skiff's error type. Every message names the operation and the object it failed on; the texts
//! that engines match (`does not exist`, `container not running`) are runc's, verbatim.

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config.json value is wrong; `path` is its JSON path.
    #[error("config.json: {path}: {msg}")]
    Config { path: String, msg: String },
    #[error("{op}: {source}")]
    Io { op: String, source: std::io::Error },
    #[error("{op}: {errno}")]
    Sys { op: String, errno: Errno },
    #[error("container \"{0}\" does not exist")]
    NotExist(String),
    #[error("container not running")]
    NotRunning,
    #[error("{0}")]
    Msg(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn config(path: impl Into<String>, msg: impl ToString) -> Error {
        let path = path.into();
        let msg = msg.to_string();
        // A syntax error has no JSON path; keep the message readable.
        if path == "config.json" {
            return Error::Msg(format!("config.json: {msg}"));
        }
        Error::Config { path, msg }
    }
    pub fn io(op: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { op: op.into(), source }
    }
    pub fn sys(op: impl Into<String>, errno: Errno) -> Error {
        Error::Sys { op: op.into(), errno }
    }
    pub fn msg(m: impl Into<String>) -> Error {
        Error::Msg(m.into())
    }
}

/// Adds the operation to a raw errno: `mount("proc", "/proc").ctx(...)`.
pub trait SysContext<T> {
    fn ctx(self, op: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SysContext<T> for std::result::Result<T, Errno> {
    fn ctx(self, op: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(op(), e))
    }
}

impl<T> SysContext<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, op: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(op(), e))
    }
}
