//! The lifecycle operations, one file each. They know nothing of the CLI: `cli/` parses
//! arguments and calls these.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod kill;
pub mod notify;
pub mod pause;
pub mod run;
pub mod start;
pub mod tty;
pub mod update;

pub use create::{create, CreateOpts};
pub use delete::{delete, destroy};
pub use exec::{exec, ExecOpts};
pub use kill::{kill, parse_signal};
pub use pause::{pause, pids, resume};
pub use run::run;
pub use start::start;
pub use update::{update, UpdateOpts};
