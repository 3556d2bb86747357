//! A group of workers sharing connectors through Kafka's group
//! membership: [`Membership`] joins the group, [`GroupPlacement`] says
//! which connectors this worker runs, [`Lease`] fences a worker that lost
//! touch with the group. Why it is built this way: `docs/distributed.md`.

mod lease;
mod membership;
mod placement;

pub use lease::Lease;
pub use membership::{Membership, OnChange, LEASE, SESSION_TIMEOUT, TAKEOVER_DELAY};
pub use placement::{murmur2, partition_of, GroupPlacement};
