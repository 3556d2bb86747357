//! This worker's membership in the group: a Kafka consumer in the group
//! `group.id`, subscribed to the offset topic, whose partitions are the
//! units of work. The group coordinator decides who holds which partition
//! (librdkafka's round-robin assignor, computed by the group's leader);
//! [`GroupPlacement`] turns that into connectors; the lease is renewed each
//! time the group coordinator answers; each change of
//! assignment or lease calls back into the herder, which starts and stops
//! tasks before the callback returns — a revoked assignment is given up
//! only after its tasks have stopped.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::ClientContext;

use super::lease::Lease;
use super::placement::GroupPlacement;
use crate::kafka::KafkaSettings;

/// The group's session timeout: a member silent this long is dropped.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the member heartbeats.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How long a lease lasts after the coordinator answered: the session timeout
/// less a heartbeat and a safety margin, so this worker stops first.
pub const LEASE: Duration = Duration::from_secs(6);
/// How often the lease is renewed.
const RENEW_EVERY: Duration = Duration::from_secs(1);

/// How long after an assignment a worker waits before starting what
/// another worker held: a broker that completes a rebalance without
/// waiting for every member (Tansu 0.6 does) leaves the previous owner
/// running until its next heartbeat tells it.
pub const TAKEOVER_DELAY: Duration = Duration::from_secs(3);
/// How long a lease probe may wait for the coordinator.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the herder does when the placement changed; blocks until done.
pub type OnChange = Arc<dyn Fn() + Send + Sync>;

struct GroupContext {
    placement: Arc<GroupPlacement>,
    lease: Arc<Lease>,
    on_change: OnChange,
    /// Set when the lease was lost, cleared by the next assignment.
    rejoining: AtomicBool,
    /// The topic whose partitions are the units of work.
    units: String,
    /// A second topic of the group (its config topic), subscribed to every
    /// other rejoin so that the member's metadata changes: see [`rejoin`].
    anchor: String,
    /// Whether the anchor is in the subscription now.
    anchored: AtomicBool,
}

impl ClientContext for GroupContext {
    crate::kafka::answers_token_refresh!();
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let removed = partition_set(partitions, &self.units);
            tracing::info!(
                partitions = ?removed,
                "group rebalance: stopping the connectors of the partitions given up, before giving them up"
            );
            self.placement.revoke(&removed);
            (self.on_change)();
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                let added = partition_set(partitions, &self.units);
                tracing::info!(partitions = ?added, "group rebalance: partitions assigned");
                // The partitions only mark work; nothing is read from them.
                if let Err(e) = consumer.pause(partitions) {
                    tracing::warn!(error = %e, "could not pause the assignment's partitions");
                }
                self.placement.assign(added);
                // A generation that includes this worker: a lapsed lease may
                // be renewed again (a held one runs on, so what this worker
                // keeps keeps running).
                if !self.lease.holds() {
                    self.lease.reset();
                }
                self.rejoining.store(false, Ordering::Release);
                // Tasks start once the coordinator has answered since.
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "group rebalance failed"),
        }
    }
}

/// The partitions of the units topic in a list (the anchor's are not
/// units of work).
fn partition_set(partitions: &TopicPartitionList, units: &str) -> BTreeSet<i32> {
    partitions
        .elements()
        .iter()
        .filter(|e| e.topic() == units)
        .map(|e| e.partition())
        .collect()
}

/// The topics a membership subscribes to.
#[derive(Debug, Clone, Copy)]
pub struct GroupTopics<'a> {
    /// The topic whose partitions are the units of work (the offset topic).
    pub units: &'a str,
    /// Another topic of the group (the config topic), which a rejoin adds
    /// to or drops from the subscription: see `rejoin`.
    pub anchor: &'a str,
}

/// A running membership; leaves the group when dropped or [`left`](Membership::leave).
pub struct Membership {
    stop: Arc<AtomicBool>,
    rejoin: RejoinRequest,
    thread: Option<JoinHandle<()>>,
}

/// Asks a membership to leave the group and join it again, which makes the
/// group assign every partition anew (see [`super::OrphanWatch`]).
#[derive(Clone, Default)]
pub struct RejoinRequest(Arc<AtomicBool>);

impl RejoinRequest {
    /// Asks for a rejoin; the membership's thread carries it out.
    pub fn request(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

impl Membership {
    /// Joins `group_id`, subscribing to the units topic, and keeps the
    /// membership alive on a thread of its own.
    pub fn join(
        settings: &KafkaSettings,
        group_id: &str,
        topics: GroupTopics<'_>,
        worker_id: &str,
        placement: Arc<GroupPlacement>,
        lease: Arc<Lease>,
        on_change: OnChange,
    ) -> Result<Self, KafkaError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("group.id", group_id)
            .set("client.id", format!("sluice-worker-{worker_id}"))
            // Eager: every rebalance revokes everything first. The
            // cooperative-sticky assignor would keep unmoved connectors
            // running, but on Tansu 0.6 it let two workers run one connector
            // (rows lost in the replication test) and doubled handover times.
            .set("partition.assignment.strategy", "roundrobin")
            .set(
                "session.timeout.ms",
                SESSION_TIMEOUT.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                HEARTBEAT_INTERVAL.as_millis().to_string(),
            )
            // Stopping tasks in a rebalance may take the tasks' shutdown
            // timeout; the member stays in the group meanwhile.
            .set("max.poll.interval.ms", "300000")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // Nothing is read: no prefetch buffers.
            .set("queued.max.messages.kbytes", "64");
        for (key, value) in &settings.client_properties {
            config.set(key, value);
        }
        let context = GroupContext {
            placement: Arc::clone(&placement),
            lease: Arc::clone(&lease),
            on_change: Arc::clone(&on_change),
            rejoining: AtomicBool::new(false),
            units: topics.units.to_owned(),
            anchor: topics.anchor.to_owned(),
            anchored: AtomicBool::new(false),
        };
        let consumer: BaseConsumer<GroupContext> = config.create_with_context(context)?;
        consumer.subscribe(&[topics.units])?;
        let stop = Arc::new(AtomicBool::new(false));
        let rejoin = RejoinRequest::default();
        let thread = std::thread::Builder::new()
            .name("sluice-group".into())
            .spawn({
                let stop = Arc::clone(&stop);
                let rejoin = rejoin.clone();
                let topic = topics.units.to_owned();
                move || {
                    keep_membership(
                        consumer, &topic, &placement, &lease, &on_change, &stop, &rejoin,
                    )
                }
            })
            .map_err(|e| {
                KafkaError::ClientCreation(format!("starting the group membership thread: {e}"))
            })?;
        Ok(Self {
            stop,
            rejoin,
            thread: Some(thread),
        })
    }

    /// A handle that asks this membership to rejoin the group.
    pub fn rejoin_request(&self) -> RejoinRequest {
        self.rejoin.clone()
    }

    /// Leaves the group (its partitions go to the other workers at once).
    pub fn leave(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// Asks the group coordinator for this group's committed offset of one
/// owned partition: an answer proves the coordinator (which also takes
/// this member's heartbeats) is reachable now. A member the coordinator
/// dropped learns it from its next heartbeat, and librdkafka revokes the
/// assignment then.
fn coordinator_answers(
    consumer: &BaseConsumer<GroupContext>,
    topic: &str,
    partition: i32,
) -> Result<(), KafkaError> {
    let mut probe = TopicPartitionList::new();
    probe.add_partition(topic, partition);
    consumer.committed_offsets(probe, PROBE_TIMEOUT).map(drop)
}

/// Asks the coordinator once a second while this worker holds partitions
/// and is not rejoining; an answer renews the lease.
fn renew(
    consumer: &BaseConsumer<GroupContext>,
    topic: &str,
    placement: &GroupPlacement,
    lease: &Lease,
    last_probe: &mut Instant,
) {
    let rejoining = consumer.context().rejoining.load(Ordering::Acquire);
    let owned = placement.owned();
    let (Some(first), false) = (owned.first(), rejoining) else {
        return;
    };
    if last_probe.elapsed() < RENEW_EVERY {
        return;
    }
    let asked = Instant::now();
    *last_probe = asked;
    match coordinator_answers(consumer, topic, *first) {
        Ok(()) => lease.renewed(asked),
        Err(e) => tracing::debug!(error = %e, "group lease not renewed"),
    }
}

/// Joins the group again as the same member with other metadata, which
/// makes the group form a new generation and assign every partition anew;
/// librdkafka revokes the assignment first (the rebalance callback stops
/// its tasks).
///
/// Why not leave and join as a new member: Tansu 0.6 keeps a departed
/// member as the group's leader for good, after which no generation ever
/// forms; and a rejoin with unchanged metadata just gets the old
/// assignment back. The subscription is the metadata a consumer can
/// change, so every other rejoin adds the anchor topic and the next one
/// drops it (its partitions are not units of work and are ignored).
fn rejoin(consumer: &BaseConsumer<GroupContext>) {
    let context = consumer.context();
    context.rejoining.store(true, Ordering::Release);
    let anchored = !context.anchored.fetch_xor(true, Ordering::AcqRel);
    let subscribed = if anchored {
        consumer.subscribe(&[context.units.as_str(), context.anchor.as_str()])
    } else {
        consumer.subscribe(&[context.units.as_str()])
    };
    if let Err(e) = subscribed {
        tracing::error!(error = %e, "could not rejoin the group");
    }
}

/// Polls the consumer (which runs the rebalance callbacks), renews the
/// lease, calls `on_change` when the lease is won or lost, and rejoins
/// when asked to.
fn keep_membership(
    consumer: BaseConsumer<GroupContext>,
    topic: &str,
    placement: &GroupPlacement,
    lease: &Lease,
    on_change: &OnChange,
    stop: &AtomicBool,
    rejoin_request: &RejoinRequest,
) {
    let mut running: BTreeSet<i32> = BTreeSet::new();
    let mut last_probe = Instant::now() - RENEW_EVERY;
    while !stop.load(Ordering::Acquire) {
        if let Some(Err(e)) = consumer.poll(Duration::from_millis(200)) {
            tracing::debug!(error = %e, "group consumer");
        }
        if rejoin_request.take() {
            rejoin(&consumer);
            continue;
        }
        let owned = placement.owned();
        // What may run now: the usable partitions while the lease holds.
        let usable = if lease.holds() {
            placement.usable()
        } else {
            BTreeSet::new()
        };
        if usable == running {
            // Renewing only after the check above: a worker that slept past
            // its lease must notice before any answer could renew it.
            renew(&consumer, topic, placement, lease, &mut last_probe);
            continue;
        }
        let lost = !running.is_empty() && usable.is_empty() && !owned.is_empty();
        running = usable;
        if lost {
            tracing::warn!(
                "group lease lost (no answer from the group coordinator for {}s): stopping this worker's connectors before the group gives them to another worker, then rejoining",
                lease.period().as_secs()
            );
        } else {
            tracing::info!(partitions = ?running, "group share changed: starting and stopping connectors to match");
        }
        on_change();
        if lost {
            // The group may have moved on without this worker: it works
            // again only after a fresh assignment.
            placement.clear();
            running.clear();
            rejoin(&consumer);
        }
    }
    // Leaving: the tasks are stopped already (the worker stops them first);
    // unsubscribing sends LeaveGroup so the rest rebalance at once.
    placement.clear();
    lease.reset();
    consumer.unsubscribe();
    drop(consumer);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use rdkafka::mocking::MockCluster;

    use super::*;
    use crate::herder::Placement;

    fn wait(what: &str, timeout: Duration, check: impl Fn() -> bool) {
        let deadline = Instant::now() + timeout;
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// librdkafka's in-process mock cluster has a real group coordinator
    /// (session timeouts, rebalances) and can be taken down, which the
    /// test broker cannot do to one client alone.
    /// A member of the group `workers` on `cluster` (topics `units`, four
    /// partitions, and `anchor`), counting its calls of `on_change` and
    /// those made with nothing owned (a share given up).
    fn join_mock(
        cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    ) -> (
        Membership,
        Arc<GroupPlacement>,
        Arc<AtomicUsize>,
        Arc<AtomicUsize>,
    ) {
        cluster.create_topic("units", 4, 1).expect("topic");
        cluster.create_topic("anchor", 1, 1).expect("topic");
        let settings = KafkaSettings::plain(cluster.bootstrap_servers());
        let lease = Arc::new(Lease::new(LEASE));
        let placement = Arc::new(GroupPlacement::new(4, Duration::ZERO, Arc::clone(&lease)));
        let (changes, gave_up) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let on_change: OnChange = {
            let (placement, changes, gave_up) = (
                Arc::clone(&placement),
                Arc::clone(&changes),
                Arc::clone(&gave_up),
            );
            Arc::new(move || {
                changes.fetch_add(1, Ordering::SeqCst);
                if placement.owned().is_empty() {
                    gave_up.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let membership = Membership::join(
            &settings,
            "workers",
            GroupTopics {
                units: "units",
                anchor: "anchor",
            },
            "w1",
            Arc::clone(&placement),
            lease,
            on_change,
        )
        .expect("joined");
        (membership, placement, changes, gave_up)
    }

    #[test]
    fn a_worker_cut_off_from_the_broker_stops_before_its_session_expires_and_comes_back() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        let (membership, placement, changes, _) = join_mock(&cluster);
        wait("the first assignment", Duration::from_secs(60), || {
            placement.owns(crate::herder::Unit::connector("orders"))
        });
        let started = changes.load(Ordering::SeqCst);

        let cut = Instant::now();
        cluster.broker_down(1).expect("broker down");
        wait("the lease to lapse", Duration::from_secs(30), || {
            !placement.owns(crate::herder::Unit::connector("orders"))
        });
        let fenced_after = cut.elapsed();
        assert!(
            fenced_after < SESSION_TIMEOUT,
            "fenced {fenced_after:?} after the cut: the coordinator could give the work away after {SESSION_TIMEOUT:?}"
        );
        wait("the herder told to stop", Duration::from_secs(5), || {
            changes.load(Ordering::SeqCst) > started
        });

        cluster.broker_up(1).expect("broker up");
        wait(
            "the share back after rejoining",
            Duration::from_secs(90),
            || placement.owns(crate::herder::Unit::connector("orders")),
        );
        membership.leave();
        assert!(
            !placement.owns(crate::herder::Unit::connector("orders")),
            "nothing held after leaving"
        );
    }

    /// What the orphan watch asks for: the member gives its share up (the
    /// herder told to stop first) and gets a fresh assignment.
    #[test]
    fn a_requested_rejoin_gives_the_share_up_and_takes_a_new_one() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        let (membership, placement, _, gave_up) = join_mock(&cluster);
        wait("the first assignment", Duration::from_secs(60), || {
            placement.owns(crate::herder::Unit::connector("orders"))
        });
        let before = gave_up.load(Ordering::SeqCst);
        membership.rejoin_request().request();
        wait("the share given up", Duration::from_secs(30), || {
            gave_up.load(Ordering::SeqCst) > before
        });
        wait("a new assignment", Duration::from_secs(60), || {
            placement.owns(crate::herder::Unit::connector("orders"))
        });
        membership.leave();
    }
}
