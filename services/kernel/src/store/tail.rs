//! The head of the feed as this process last read it, shared by its readers.
//!
//! Every in-process follower (each context's pipelines, reactors, the relay, the planning
//! indexes) wakes at every append and reads the feed after its cursor. At the head they all ask
//! for the same events: the first reads them from the database, the others are served from
//! here, so an append costs one feed read instead of one per follower.
//!
//! ```text
//!  read_feed(cursor)
//!   ├─ start <= cursor < end ──► the window's events after cursor, then (room left) the head
//!   ├─ at the head ─► one reader at a time: the window when a query began after it asked,
//!   │                 else a query, whose events extend the window (or start a new one)
//!   └─ cursor < start (behind) ─► a query of its own; the window stays
//! ```
//! So a read sees every event committed before it began (up to `events_max`), as a query does.
//! A read's answer is final for its range: on PostgreSQL only transactions below every open
//! one's id are read (see `read_feed_postgres`), on SQLite the one writer commits in position
//! order. So a range once read never changes, and the window serves it as the database would.
//! A query of the head that found nothing answers the readers that were waiting when it began:
//! every answer comes from a query that began after the reader asked, or from a final range.

use super::{FeedBatch, SharedFeedBatch};
use crate::EventEnvelope;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The most events the window keeps: readers behind it query the database themselves.
const WINDOW_EVENTS_MAX: usize = 20_000;

/// Events of feed cursors `(start, end]`, complete, in feed order.
#[derive(Debug, Default)]
struct Window {
    start: i64,
    end: i64,
    events: VecDeque<Arc<EventEnvelope>>,
    /// When the last query at `end` began.
    checked: Option<Instant>,
}

impl Window {
    /// The window's events after `cursor`: whole transactions (one feed cursor each), at most
    /// `events_max` unless the first transaction alone is larger.
    fn serve(&self, cursor: i64, events_max: usize) -> Option<SharedFeedBatch> {
        if cursor < self.start || cursor >= self.end {
            return None;
        }
        let first = self.events.partition_point(|event| event.cursor <= cursor);
        let mut events: Vec<Arc<EventEnvelope>> = Vec::new();
        for event in self.events.range(first..) {
            let next_transaction = events.last().is_none_or(|last| last.cursor != event.cursor);
            if next_transaction && events.len() >= events_max {
                break;
            }
            events.push(event.clone());
        }
        // Whole transactions only: past `events_max`, the last one is dropped unless alone.
        if events.len() > events_max {
            let last = events.last().map_or(cursor, |event| event.cursor);
            if events.first().is_some_and(|event| event.cursor != last) {
                events.retain(|event| event.cursor != last);
            }
        }
        let cursor = events.last().map_or(cursor, |event| event.cursor);
        Some(SharedFeedBatch { events, cursor })
    }

    /// Takes in a query's answer for `(cursor, read.cursor]`: extends the window when it ends
    /// where the query began, replaces it when the query began past it.
    fn take(&mut self, cursor: i64, read: &SharedFeedBatch, began: Instant) {
        if cursor < self.end {
            return;
        }
        if cursor > self.end {
            *self = Window {
                start: cursor,
                end: cursor,
                ..Window::default()
            };
        }
        self.events.extend(read.events.iter().cloned());
        self.end = read.cursor;
        self.checked = Some(began);
        while self.events.len() > WINDOW_EVENTS_MAX {
            let Some(oldest) = self.events.front().map(|event| event.cursor) else {
                break;
            };
            while self
                .events
                .front()
                .is_some_and(|event| event.cursor == oldest)
            {
                self.events.pop_front();
            }
            self.start = oldest;
        }
    }

    /// Whether a reader that asked at `arrived` may be answered from the window: its cursor
    /// is in it and the last query at its end began after the reader asked.
    fn checked_for(&self, cursor: i64, arrived: Instant) -> bool {
        (self.start..=self.end).contains(&cursor)
            && self.checked.is_some_and(|began| began >= arrived)
    }
}

fn answered_by(source: &'static str) {
    metrics::counter!(crate::telemetry::names::STORE_FEED_READS, "answered_by" => source)
        .increment(1);
}

/// The shared window and the lock that lets one reader at a time query the head.
#[derive(Debug, Default)]
pub(crate) struct FeedTail {
    window: Mutex<Window>,
    querying: tokio::sync::Mutex<()>,
}

/// What [`FeedTail::read`] needs from the store.
pub(crate) trait FeedQuery {
    /// Reads the feed from the database.
    async fn query(&self, cursor: i64, events_max: usize) -> Result<FeedBatch, super::StoreError>;
}

impl FeedTail {
    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) async fn read(
        &self,
        store: &impl FeedQuery,
        cursor: i64,
        events_max: usize,
    ) -> Result<SharedFeedBatch, super::StoreError> {
        // The window's part, then the head: a read sees every event committed before it began
        // (up to `events_max`), as a query would.
        let (served, behind, end) = {
            let window = self.window();
            (
                window.serve(cursor, events_max),
                cursor < window.start,
                window.end,
            )
        };
        if behind {
            answered_by("database");
            return Ok(store.query(cursor, events_max).await?.into());
        }
        let Some(mut served) = served else {
            return self.read_head(store, cursor, events_max).await;
        };
        answered_by("window");
        if served.cursor < end || served.events.len() >= events_max {
            return Ok(served);
        }
        let rest = self
            .read_head(store, served.cursor, events_max - served.events.len())
            .await?;
        served.events.extend(rest.events);
        served.cursor = rest.cursor;
        Ok(served)
    }

    /// Reads after `cursor` at or past the window's end: one reader at a time.
    async fn read_head(
        &self,
        store: &impl FeedQuery,
        cursor: i64,
        events_max: usize,
    ) -> Result<SharedFeedBatch, super::StoreError> {
        let arrived = Instant::now();
        let _querying = self.querying.lock().await;
        {
            // Served only from a query that began after this reader asked.
            let window = self.window();
            if window.checked_for(cursor, arrived) {
                answered_by("window");
                return Ok(window.serve(cursor, events_max).unwrap_or(SharedFeedBatch {
                    events: Vec::new(),
                    cursor,
                }));
            }
        }
        let began = Instant::now();
        answered_by("database");
        let read = SharedFeedBatch::from(store.query(cursor, events_max).await?);
        self.window().take(cursor, &read, began);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: i64, cursor: i64) -> EventEnvelope {
        EventEnvelope {
            id: uuid::Uuid::now_v7(),
            context: "finance".into(),
            aggregate_type: "finance.Ledger".into(),
            aggregate_id: "MAIN".into(),
            sequence: position,
            event_type: "Posted".into(),
            event_version: 1,
            source: "/tributary/finance".into(),
            time: chrono::Utc::now(),
            position,
            cursor,
            payload: serde_json::json!({}),
            metadata: Default::default(),
        }
    }

    fn positions(batch: &SharedFeedBatch) -> Vec<i64> {
        batch.events.iter().map(|event| event.position).collect()
    }

    /// Transactions at cursors 10 (events 1, 2), 20 (3) and 30 (4, 5, 6), read after 5.
    fn window() -> Window {
        let read = SharedFeedBatch::from(FeedBatch {
            events: vec![
                event(1, 10),
                event(2, 10),
                event(3, 20),
                event(4, 30),
                event(5, 30),
                event(6, 30),
            ],
            cursor: 30,
        });
        let mut window = Window {
            start: 5,
            end: 5,
            ..Window::default()
        };
        window.take(5, &read, Instant::now());
        window
    }

    #[test]
    fn serves_whole_transactions_after_the_cursor_within_the_window_only() {
        let window = window();
        let all = window.serve(5, 100).unwrap();
        assert_eq!((positions(&all), all.cursor), (vec![1, 2, 3, 4, 5, 6], 30));
        let after = window.serve(10, 100).unwrap();
        assert_eq!((positions(&after), after.cursor), (vec![3, 4, 5, 6], 30));
        // Three events asked: the third transaction would pass the bound, so it waits.
        let bounded = window.serve(5, 3).unwrap();
        assert_eq!((positions(&bounded), bounded.cursor), (vec![1, 2, 3], 20));
        // A transaction larger than the bound comes whole when it is the first.
        let large = window.serve(20, 1).unwrap();
        assert_eq!((positions(&large), large.cursor), (vec![4, 5, 6], 30));
        // Behind the window, and at or past its end, the database answers.
        assert!(window.serve(4, 100).is_none());
        assert!(window.serve(30, 100).is_none());
    }

    #[test]
    fn readers_served_from_the_window_share_its_events() {
        let window = window();
        let (first, second) = (
            window.serve(5, 100).unwrap(),
            window.serve(10, 100).unwrap(),
        );
        assert_eq!(first.events.len(), 6);
        assert!(
            first.events[2..]
                .iter()
                .zip(&second.events)
                .all(|(a, b)| Arc::ptr_eq(a, b)),
            "each reader got a copy"
        );
        assert!(Arc::ptr_eq(&first.events[0], &window.events[0]));
    }

    #[test]
    fn extends_at_its_end_restarts_past_it_and_ignores_older_reads() {
        let mut window = window();
        let next = SharedFeedBatch::from(FeedBatch {
            events: vec![event(7, 40)],
            cursor: 40,
        });
        window.take(20, &next, Instant::now());
        assert_eq!(
            window.end, 30,
            "a read from inside the window changes nothing"
        );
        window.take(30, &next, Instant::now());
        assert_eq!(positions(&window.serve(20, 100).unwrap()), vec![4, 5, 6, 7]);
        let later = SharedFeedBatch::from(FeedBatch {
            events: vec![event(9, 60)],
            cursor: 60,
        });
        window.take(50, &later, Instant::now());
        assert_eq!((window.start, window.end), (50, 60));
        assert!(
            window.serve(40, 100).is_none(),
            "the gap 40..50 was never read"
        );
    }

    #[test]
    fn keeps_at_most_its_bound_dropping_whole_transactions() {
        let mut window = Window::default();
        let events: Vec<EventEnvelope> = (1..=WINDOW_EVENTS_MAX as i64 + 3)
            .map(|position| event(position, (position + 1) / 2))
            .collect();
        let cursor = events.last().unwrap().cursor;
        window.take(0, &FeedBatch { events, cursor }.into(), Instant::now());
        assert!(window.events.len() <= WINDOW_EVENTS_MAX);
        let first = window.events.front().unwrap();
        assert_eq!(first.cursor, window.start + 1, "{first:?}");
        assert_eq!(
            first.position % 2,
            1,
            "the oldest transaction kept is whole"
        );
    }

    #[test]
    fn an_empty_answer_serves_only_readers_that_asked_before_its_query_began() {
        let mut window = window();
        let asked = Instant::now();
        let began = asked + std::time::Duration::from_millis(1);
        window.take(
            30,
            &SharedFeedBatch {
                events: Vec::new(),
                cursor: 30,
            },
            began,
        );
        assert!(window.checked_for(30, asked));
        assert!(window.checked_for(30, began));
        let later = began + std::time::Duration::from_millis(1);
        assert!(!window.checked_for(30, later), "asked after it began");
        assert!(window.checked_for(20, asked), "inside the window");
        assert!(!window.checked_for(4, asked), "behind the window");
    }
}
