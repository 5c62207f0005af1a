//! A reactor following the events: the store's feed (embedded) or Kafka (production), each
//! reactor on its own cursor.
//!
//! ```text
//!  read after the position reached ──► for each followed event: reactor::handle (stored once,
//!        ▲                             or into suspense) ──► save the position reached
//!        └──────────────────────────── repeat; a crash in between repeats reactions, which
//!                                      their idempotency keys make no-ops
//! ```
//! The position is saved after a batch that reacted, and at least every [`SAVE_INTERVAL`]
//! otherwise (and when a catch-up or the runner ends): a batch of events the reactor does not
//! follow is only read again after a crash, and saving its position each time cost a durable
//! commit per batch per reactor (while posting journal entries, more commits than the
//! postings' own). In process, [`ReactorRunner::progress`] tells the position reached at once.
//! On the feed, one process at a time follows for a reactor (a PostgreSQL advisory lock,
//! released when the process dies); on Kafka each reactor has its own consumer group, every
//! process running the reactor is a member and reacts for the partitions assigned to it, and
//! its positions (per partition) are the follower positions in the event store's database.
//! A position saved never moves back: a member that lost a partition in a rebalance may still
//! save what it reached there after the new owner saved more. Between a rebalance and the next
//! save two members may react to the same events; the reactions' idempotency keys make the
//! second a no-op.

use crate::bronze::{StartError, StartOffset};
use crate::{EventSource, FEED_STREAM, KafkaEvents, SourceError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tributary_kernel::module::Platform;
use tributary_kernel::reactor::{Follow, Reactor, ReactorError, handle};
use tributary_kernel::telemetry::names;

/// How long a follower may hold the position of events it only read (none it reacted to)
/// before saving it.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// On the feed, a follower woken by an append reads at most this often: every append of a
/// busy process wakes every reactor, which then read the feed at the head, found the events
/// (mostly ones they do not follow) and read again to find nothing new (a debug run's statement
/// log: 375 feed reads for 369 appends).
pub const READ_SPACING: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
pub struct FollowerOptions {
    pub batch_events_max: usize,
    pub poll_interval_ms: u64,
    pub retry_interval_ms: u64,
    /// Tests only: fail after this many reactions, before the batch's position is saved.
    pub fault_after_reactions: Option<usize>,
}

impl Default for FollowerOptions {
    fn default() -> Self {
        FollowerOptions {
            batch_events_max: 500,
            poll_interval_ms: 200,
            retry_interval_ms: 1_000,
            fault_after_reactions: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FollowerError {
    #[error("reading events: {0}")]
    Source(#[from] SourceError),
    #[error(transparent)]
    Reactor(#[from] ReactorError),
    #[error("stopped by the injected fault after {reactions} reactions (tests only)")]
    InjectedFault { reactions: usize },
}

/// The follower name of a reactor (its cursor, lease and consumer group).
pub fn follower_name(reactor: &dyn Reactor) -> String {
    format!("reactor/{}", reactor.name())
}

/// Where a reactor's Kafka partitions start: after the offsets it saved.
pub fn kafka_start(platform: &Platform, reactor: &dyn Reactor) -> StartOffset {
    let store = platform.store.clone();
    let name = follower_name(reactor);
    Arc::new(move |topic: String, partition: i32| {
        let (store, name) = (store.clone(), name.clone());
        Box::pin(async move {
            Follow { store: &store }
                .position(&name, &format!("{topic}-{partition}"))
                .await
                .map_err(StartError::from)
        })
    })
}

pub struct ReactorRunner {
    reactor: Arc<dyn Reactor>,
    platform: Platform,
    source: EventSource,
    options: FollowerOptions,
    name: String,
    reactions: usize,
    /// Position per stream up to which every event was handled (loaded, then as reached).
    positions: BTreeMap<String, Option<i64>>,
    /// Positions reached and not saved yet, and when positions were saved last.
    unsaved: BTreeMap<String, i64>,
    saved_at: Instant,
    /// When to count the lag and the suspense again.
    observed: crate::Throttle,
    /// The feed position up to which every event was handled, for waiters in this process.
    progress: watch::Sender<i64>,
}

impl ReactorRunner {
    pub fn new(
        reactor: Arc<dyn Reactor>,
        platform: Platform,
        source: EventSource,
        options: FollowerOptions,
    ) -> ReactorRunner {
        let name = follower_name(reactor.as_ref());
        ReactorRunner {
            reactor,
            platform,
            source,
            options,
            name,
            reactions: 0,
            positions: BTreeMap::new(),
            unsaved: BTreeMap::new(),
            saved_at: Instant::now(),
            observed: crate::Throttle::new(crate::LAG_INTERVAL),
            progress: watch::Sender::new(0),
        }
    }

    /// The feed position up to which every event was handled (reactions stored, the position
    /// maybe not saved yet); 0 until the runner has loaded its saved position.
    pub fn progress(&self) -> watch::Receiver<i64> {
        self.progress.subscribe()
    }

    /// Knows `position` of `stream` as handled.
    fn reached(&mut self, stream: &str, position: Option<i64>) {
        if stream == FEED_STREAM {
            self.progress.send_if_modified(|at| match position {
                Some(position) if position > *at => {
                    *at = position;
                    true
                }
                _ => false,
            });
        }
        self.positions.insert(stream.to_owned(), position);
    }

    /// A runner on Kafka: the reactor's own consumer group over the followed contexts' topics.
    pub fn on_kafka(
        reactor: Arc<dyn Reactor>,
        platform: Platform,
        brokers: &str,
        topic_prefix: &str,
        instance: Option<&str>,
        wait: Duration,
        options: FollowerOptions,
    ) -> Result<ReactorRunner, SourceError> {
        let mut contexts: Vec<&str> = reactor
            .follows()
            .iter()
            .map(|t| tributary_kernel::aggregate::context_of(t))
            .collect();
        contexts.sort();
        contexts.dedup();
        let topics: Vec<String> = contexts
            .iter()
            .map(|c| format!("{topic_prefix}{}", crate::kafka::topic_for(c)))
            .collect();
        let group = format!(
            "{topic_prefix}tributary-{}",
            follower_name(reactor.as_ref()).replace('/', "-")
        );
        let start = kafka_start(&platform, reactor.as_ref());
        let kafka = KafkaEvents::new(
            brokers,
            &group,
            instance,
            &topics,
            start,
            wait,
            Some(&platform.store),
        )?;
        Ok(ReactorRunner::new(
            reactor,
            platform,
            EventSource::Kafka(kafka),
            options,
        ))
    }

    async fn position(&mut self, stream: &str) -> Result<Option<i64>, FollowerError> {
        if let Some(known) = self.positions.get(stream) {
            return Ok(*known);
        }
        let saved = Follow {
            store: &self.platform.store,
        }
        .position(&self.name, stream)
        .await
        .map_err(ReactorError::from)?;
        self.reached(stream, saved);
        Ok(saved)
    }

    /// Handles one batch; returns how many events it read (0 when caught up).
    pub async fn step(&mut self) -> Result<usize, FollowerError> {
        if self.source.rebalance_due() {
            // What was reached on a partition about to be given up is saved first: its next
            // owner starts there instead of reacting again.
            self.save().await?;
            let generation = self.source.generation();
            self.source.rebalance().await;
            if self.source.generation() != generation {
                // Positions of partitions (re)gained since are loaded afresh.
                self.positions.clear();
            }
        }
        let from = match self.source {
            EventSource::Store(_) => self.position(FEED_STREAM).await?.unwrap_or(0),
            EventSource::Kafka(_) => 0,
        };
        let events = self
            .source
            .read(from, self.options.batch_events_max)
            .await?;
        // Messages that are not events: nothing to react to (bronze keeps them).
        let _ = self.source.take_undecodable();
        let reactions_before = self.reactions;
        let mut reached: BTreeMap<String, i64> = BTreeMap::new();
        for event in &events {
            let done = self.position(&event.stream).await?;
            if done.is_some_and(|done| event.position <= done) {
                continue;
            }
            if self
                .reactor
                .follows()
                .contains(&event.envelope.aggregate_type.as_str())
            {
                if let Some(limit) = self.options.fault_after_reactions
                    && self.reactions >= limit
                {
                    return Err(FollowerError::InjectedFault {
                        reactions: self.reactions,
                    });
                }
                handle(&self.platform, self.reactor.as_ref(), &event.envelope).await?;
                self.reactions += 1;
            }
            let at = reached
                .entry(event.stream.clone())
                .or_insert(event.position);
            *at = (*at).max(event.position);
        }
        // Only after the whole batch: on the feed every event of a transaction has the same
        // position (the writer's transaction id), so a position taken mid-batch would skip the
        // transaction's later events as done.
        for (stream, position) in reached {
            self.reached(&stream, Some(position));
            self.unsaved.insert(stream, position);
        }
        if self.reactions > reactions_before || self.saved_at.elapsed() >= SAVE_INTERVAL {
            self.save().await?;
        }
        Ok(events.len())
    }

    /// Saves the positions reached since the last save.
    async fn save(&mut self) -> Result<(), FollowerError> {
        let follow = Follow {
            store: &self.platform.store,
        };
        for (stream, position) in &self.unsaved {
            follow
                .save_position(&self.name, stream, *position)
                .await
                .map_err(ReactorError::from)?;
        }
        self.unsaved.clear();
        self.saved_at = Instant::now();
        Ok(())
    }

    /// Sets the reactor's lag and suspense gauges (0 lag at once when `caught_up`, otherwise
    /// and for the suspense count at most every [`crate::LAG_INTERVAL`]).
    async fn observe(&mut self, caught_up: bool) {
        let reactor = self.reactor.name().to_owned();
        if !self.observed.due() {
            if caught_up {
                metrics::gauge!(names::REACTOR_LAG, "reactor" => reactor).set(0.0);
            }
            return;
        }
        let cursor = self
            .positions
            .get(FEED_STREAM)
            .copied()
            .flatten()
            .unwrap_or(0);
        let lag = if caught_up {
            Ok(Some(0))
        } else {
            self.source.lag(cursor).await
        };
        match lag {
            Ok(Some(lag)) => {
                metrics::gauge!(names::REACTOR_LAG, "reactor" => reactor.clone()).set(lag as f64)
            }
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(follower = %self.name, error = %error, "counting the lag failed")
            }
        }
        let follow = Follow {
            store: &self.platform.store,
        };
        match follow.open_suspense(&reactor).await {
            Ok(open) => {
                metrics::gauge!(names::REACTOR_SUSPENSE, "reactor" => reactor).set(open as f64)
            }
            Err(error) => {
                tracing::debug!(follower = %self.name, error = %error, "counting the suspense failed")
            }
        }
    }

    /// Runs until caught up with the source, and saves the positions reached.
    pub async fn catch_up(&mut self) -> Result<(), FollowerError> {
        while self.step().await? > 0 {}
        self.save().await
    }

    /// Follows until `shutdown` turns true; errors are logged and retried from the saved
    /// positions. On the feed, waits for the lease first (one active follower per reactor); on
    /// Kafka every process follows, each for the partitions the group assigned it.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let _lease = match self.source {
            EventSource::Kafka(_) => None,
            EventSource::Store(_) => loop {
                if *shutdown.borrow() {
                    return;
                }
                match self.platform.store.try_lease_relay(&self.name).await {
                    Ok(Some(lease)) => break Some(lease),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(follower = %self.name, error = %error, "lease unavailable")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(self.options.retry_interval_ms)) => {}
                    _ = shutdown.changed() => {}
                }
            },
        };
        let mut wake = self.source.wake();
        let paced = matches!(self.source, EventSource::Store(_));
        loop {
            if *shutdown.borrow() {
                if let Err(error) = self.save().await {
                    tracing::debug!(follower = %self.name, error = %error, "saving the position at the end failed");
                }
                return;
            }
            let read_at = tokio::time::Instant::now();
            let stepped = self.step().await;
            self.observe(matches!(stepped, Ok(0))).await;
            let wait_ms = match stepped {
                Ok(0) => self.options.poll_interval_ms,
                Ok(_) => continue,
                Err(FollowerError::InjectedFault { .. }) => return,
                Err(error) => {
                    tracing::warn!(follower = %self.name, error = %error, "reacting failed; retrying from the saved position");
                    self.positions.clear();
                    self.unsaved.clear();
                    self.source.rewind().await;
                    self.options.retry_interval_ms
                }
            };
            tokio::select! {
                _ = wake.changed() => {
                    if paced {
                        tokio::time::sleep_until(read_at + READ_SPACING).await;
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
