//! One function per subcommand: turn parsed arguments into calls on the library.

pub mod cluster;
pub mod link;
pub mod merge;
pub mod monitor;

pub mod report;
pub mod run;
mod verify;
