//! What a worker of a group does every second besides running tasks:
//! applies configs other workers wrote, publishes its share of the group
//! (`sluice-worker-<id>` on the status topic), republishes the statuses
//! of what it runs where the status topic says otherwise (a handover's
//! UNASSIGNED that landed after this worker's RUNNING), and rejoins when the group
//! left a partition some connector needs without a live owner
//! ([`OrphanWatch`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::membership::{RejoinRequest, SESSION_TIMEOUT};
use super::orphans::{OrphanWatch, Share};
use super::placement::GroupPlacement;
use crate::herder::Herder;
use crate::store::kafka::KafkaStatusStore;

/// How often configs are read and the share is published.
const TICK: Duration = Duration::from_secs(1);
/// How often the share is published.
const SHARE_EVERY: Duration = Duration::from_secs(2);
/// A worker whose share did not move for this long counts as gone: the
/// session timeout, after which a broker drops its member too.
const FRESHNESS: Duration = SESSION_TIMEOUT;
/// How often orphans are looked for.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// How long a needed partition may have no live owner before a rejoin:
/// longer than a rebalance after a member is dropped takes (a Kafka
/// broker hands a dead worker's partitions on at the session timeout,
/// which is when its share goes stale here, so there this never fires).
pub const ORPHAN_PATIENCE: Duration = SESSION_TIMEOUT;

const KEY_PREFIX: &str = "sluice-worker-";

/// The shares other workers published, by worker id.
fn others(status: &KafkaStatusStore, me: &str) -> BTreeMap<String, Share> {
    status
        .published_raw_with_prefix(KEY_PREFIX)
        .into_iter()
        .filter_map(|(key, value)| {
            let worker = key.strip_prefix(KEY_PREFIX)?.to_owned();
            let share = Share {
                seq: value.get("seq")?.as_u64()?,
                partitions: value
                    .get("partitions")?
                    .as_array()?
                    .iter()
                    .filter_map(|p| i32::try_from(p.as_i64()?).ok())
                    .collect(),
            };
            (worker != me).then_some((worker, share))
        })
        .collect()
}

/// Withdraws this worker's share (it leaves the group).
pub fn withdraw(status: &KafkaStatusStore, me: &str) {
    status.publish_raw(&format!("{KEY_PREFIX}{me}"), None);
}

/// Runs the upkeep until the task is aborted.
pub async fn run(
    herder: Arc<Herder>,
    status: Arc<KafkaStatusStore>,
    placement: Arc<GroupPlacement>,
    me: String,
    rejoin: RejoinRequest,
) {
    let mut every = tokio::time::interval(TICK);
    let mut watch = OrphanWatch::new(ORPHAN_PATIENCE, FRESHNESS);
    let (mut seq, mut shared, mut checked) = (0u64, Instant::now(), Instant::now());
    loop {
        every.tick().await;
        if let Err(e) = herder.sync_configs().await {
            tracing::warn!(error = %e, "could not read the config topic; retrying");
        }
        status.reassert_own();
        if shared.elapsed() >= SHARE_EVERY {
            shared = Instant::now();
            seq += 1;
            let share: Value = json!({"seq": seq, "partitions": placement.owned()});
            status.publish_raw(&format!("{KEY_PREFIX}{me}"), Some(share));
        }
        if checked.elapsed() < CHECK_EVERY {
            continue;
        }
        checked = Instant::now();
        let units = herder.units().await;
        let needed = placement.partitions_of(
            units
                .iter()
                .map(|(connector, task)| crate::herder::Unit::task(connector, *task)),
        );
        let published = {
            let status = Arc::clone(&status);
            let me = me.clone();
            tokio::task::spawn_blocking(move || others(&status, &me))
                .await
                .unwrap_or_default()
        };
        let overdue = watch.observe(Instant::now(), &placement.owned(), &published, &needed);
        if !overdue.is_empty() {
            tracing::warn!(
                partitions = ?overdue,
                "no live worker has held these partitions of the group for {}s (the broker's assignment left them to a member that is gone), so their connectors run nowhere: rejoining the group so it assigns everything anew",
                ORPHAN_PATIENCE.as_secs()
            );
            rejoin.request();
        }
    }
}
