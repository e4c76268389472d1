//! Scale-out (DESIGN section 13): a run split into N shards that meet in the database, start
//! together, and whose results `merge` adds up.

pub mod rendezvous;
mod spec;
mod split;

pub use rendezvous::Rendezvous;
pub use spec::ShardSpec;
pub use split::{share, split_plan};
