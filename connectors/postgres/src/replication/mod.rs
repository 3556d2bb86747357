//! The replication side: a walsender connection and the pgoutput protocol.

pub mod connection;
pub mod lsn;
pub mod pgoutput;
pub mod read_pacing;

pub use connection::{ConnectParams, ReplicationConnection, StreamMessage, WireError};
pub use lsn::Lsn;
