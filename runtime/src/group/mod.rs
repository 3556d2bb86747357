//! A group of workers sharing connectors through Kafka's group
//! membership: [`Membership`] joins the group, [`GroupPlacement`] says
//! which connectors this worker runs, [`Lease`] fences a worker that lost
//! touch with the group, [`OrphanWatch`] notices partitions the group
//! left without a live owner. Why it is built this way: `docs/distributed.md`.

mod lease;
mod membership;
mod orphans;
mod placement;
pub mod upkeep;

pub use lease::Lease;
pub use membership::{
    GroupTopics, Membership, OnChange, RejoinRequest, LEASE, SESSION_TIMEOUT, TAKEOVER_DELAY,
};
pub use orphans::{OrphanWatch, Share};
pub use placement::{partition_of, GroupPlacement};
