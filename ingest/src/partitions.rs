//! Kafka partitions shared among the processes of one consumer group, assigned through
//! PostgreSQL instead of the broker's group protocol.
//!
//! ```text
//!  every second, between batches:
//!    members = live processes of the group (their advisory locks in pg_locks)
//!    share   = ceil(partitions / members)
//!    holding more than share? ─► stop reading the extras, then release their locks
//!    holding fewer?           ─► claim free partitions (a lock each) up to share, each read
//!                                from the offset after the one its progress records
//! ```
//!
//! Why not the broker: tansu 0.6.0's group coordinator (the broker CI and the embedded tests
//! run) does not move a killed member's partitions: with dynamic membership they stay assigned
//! to nobody after its session expires, with static membership the group rebalances every
//! session timeout without end (three members, six partitions, one killed). The event store's
//! PostgreSQL is there for every process that reads Kafka, and a lock held by a killed process
//! is released by the database as its connection closes.
//!
//! Nothing is lost or doubled by a move: a process gives a partition up only between batches,
//! after its last batch's progress was committed (Delta `txn` markers for pipelines, follower
//! positions for reactors), and the next owner starts after that progress. If a process
//! loses its connection to PostgreSQL it stops reading every partition at once and joins
//! again; should it still commit a batch meanwhile, the progress markers (compare-and-set in
//! Delta, idempotency keys for reactions) keep the events from counting twice.

use crate::Throttle;
use crate::bronze::{AssignFromDelta, StartOffset};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tributary_kernel::store::{EventStore, Membership, StoreError};

/// How often a member looks at the group and its share.
pub const REBALANCE_INTERVAL: Duration = Duration::from_secs(1);

/// How long a topic's metadata (its partitions) may take to arrive.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// One process's part of a group's partitions.
pub struct SharedPartitions {
    store: EventStore,
    group: String,
    topics: Vec<String>,
    membership: Option<Membership>,
    /// The partitions this process reads.
    held: BTreeSet<(String, i32)>,
    due: Throttle,
}

impl SharedPartitions {
    pub fn new(store: EventStore, group: &str, topics: &[String]) -> SharedPartitions {
        SharedPartitions {
            store,
            group: group.to_owned(),
            topics: topics.to_vec(),
            membership: None,
            held: BTreeSet::new(),
            due: Throttle::new(REBALANCE_INTERVAL),
        }
    }

    /// Whether [`SharedPartitions::rebalance`] would look at the group now.
    pub fn is_due(&self) -> bool {
        self.due.is_due()
    }

    /// At most every [`REBALANCE_INTERVAL`]: brings the partitions read to this process's
    /// share; bumps `generation` when they changed. Call it only between batches.
    pub async fn rebalance(
        &mut self,
        consumer: &StreamConsumer<AssignFromDelta>,
        start: &StartOffset,
        generation: &Arc<AtomicU64>,
    ) {
        if !self.due.due() {
            return;
        }
        let before = self.held.clone();
        if let Err(error) = self.share(consumer, start).await {
            tracing::warn!(group = %self.group, %error, "partition assignment through PostgreSQL failed; reading none until it works again");
            if let Err(error) = consumer.unassign() {
                tracing::error!(group = %self.group, %error, "unassigning the partitions failed");
            }
            self.held.clear();
            if let Some(membership) = self.membership.take() {
                membership.leave().await;
            }
        }
        if self.held != before {
            tracing::info!(group = %self.group, partitions = ?self.held, "partitions reassigned");
            generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    async fn share(
        &mut self,
        consumer: &StreamConsumer<AssignFromDelta>,
        start: &StartOffset,
    ) -> Result<(), AssignError> {
        if self.membership.is_none() {
            self.membership = self.store.join_group(&self.group).await?;
        }
        let Some(membership) = self.membership.as_mut() else {
            return Err(AssignError::NoDatabase);
        };
        let partitions = partitions_of(consumer, &self.topics)?;
        let members = membership.members().await?.max(1);
        let share = partitions.len().div_ceil(members);
        // Extras first out of the consumer, then their locks: never two readers at once.
        let extras: Vec<(String, i32)> = self.held.iter().skip(share).cloned().collect();
        if !extras.is_empty() {
            consumer.incremental_unassign(&list(&extras, |_| Offset::Invalid)?)?;
            for (topic, partition) in &extras {
                self.held.remove(&(topic.clone(), *partition));
                membership.release(&part(topic, *partition)).await?;
            }
        }
        if self.held.len() >= share || partitions.is_empty() {
            return Ok(());
        }
        // Members start looking at different partitions, so they rarely try the same lock.
        let first = membership.member().unsigned_abs() as usize % partitions.len();
        let mut claimed = Vec::new();
        for (topic, partition) in partitions.iter().cycle().skip(first).take(partitions.len()) {
            if self.held.len() + claimed.len() >= share {
                break;
            }
            let key = (topic.clone(), *partition);
            if self.held.contains(&key) || !membership.try_claim(&part(topic, *partition)).await? {
                continue;
            }
            let recorded = start(topic.clone(), *partition)
                .await
                .map_err(|error| AssignError::Start(error.to_string()))?;
            claimed.push((key, recorded));
        }
        if claimed.is_empty() {
            return Ok(());
        }
        let keys: Vec<(String, i32)> = claimed.iter().map(|(key, _)| key.clone()).collect();
        let offsets: Vec<Option<i64>> = claimed.iter().map(|(_, recorded)| *recorded).collect();
        let assigned = list(&keys, |index| match offsets[index] {
            Some(last) => Offset::Offset(last + 1),
            None => Offset::Beginning,
        })?;
        consumer.incremental_assign(&assigned)?;
        self.held.extend(keys);
        Ok(())
    }
}

/// A partition's lock name in its group.
fn part(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

/// Every partition of `topics`, in order.
fn partitions_of(
    consumer: &StreamConsumer<AssignFromDelta>,
    topics: &[String],
) -> Result<Vec<(String, i32)>, AssignError> {
    let mut partitions = Vec::new();
    for topic in topics {
        // A blocking request to the broker; the runtime's other tasks go on meanwhile.
        let metadata =
            tokio::task::block_in_place(|| consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT))?;
        for found in metadata.topics() {
            partitions.extend(
                found
                    .partitions()
                    .iter()
                    .map(|p| (found.name().to_owned(), p.id())),
            );
        }
    }
    partitions.sort();
    Ok(partitions)
}

fn list(
    partitions: &[(String, i32)],
    offset: impl Fn(usize) -> Offset,
) -> Result<TopicPartitionList, rdkafka::error::KafkaError> {
    let mut list = TopicPartitionList::new();
    for (index, (topic, partition)) in partitions.iter().enumerate() {
        list.add_partition_offset(topic, *partition, offset(index))?;
    }
    Ok(list)
}

#[derive(Debug, thiserror::Error)]
enum AssignError {
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("reading a partition's recorded progress: {0}")]
    Start(String),
    #[error("partitions are shared through PostgreSQL; this event store is not")]
    NoDatabase,
}
