//! Streams a command reads inside a scope, kept for a moment per process: the company, accounts
//! and period every posting reads are the same few streams, read thousands of times a second.
//!
//! A decision made from kept streams is as safe as one made from fresh ones, on three grounds:
//!
//! * every stream a decision relies on is pinned by its reads: if another process changed it
//!   meanwhile, the append fails with a conflict, the kept streams are dropped and the command is
//!   decided again from fresh ones ([`crate::command::CommandRequest::commit_retrying`]);
//! * a refusal from kept streams (an account missing or blocked, a period closed or undefined)
//!   is not answered: the caller decides again from fresh streams (see
//!   [`super::EventStore::load_scoped_cached`]);
//! * this process's own appends drop the streams they wrote at once, and a load that raced with
//!   such an append is not kept (a generation count).
//!
//! What no pin covers (a stream read only for a value that is not pinned) is at most
//! [`KEPT_FOR`] old.

use super::Streams;
use crate::envelope::EventEnvelope;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a stream read is kept.
pub const KEPT_FOR: Duration = Duration::from_secs(2);
/// Streams kept at most; beyond, the oldest reads are dropped.
const KEPT_MAX: usize = 4096;

type Key = (String, String);

/// The streams of a scoped load, and whether they came from what this process kept.
#[derive(Debug, Clone)]
pub struct Scoped {
    pub streams: Streams,
    pub cached: bool,
}

#[derive(Debug, Default)]
pub(super) struct ScopedCache {
    /// Each stream read (absent: no events), with when it was read.
    kept: Mutex<Kept>,
    /// Moves on every drop: a load that started before one is not kept.
    generation: AtomicU64,
}

#[derive(Debug, Default)]
struct Kept {
    streams: HashMap<Key, (Instant, Arc<[EventEnvelope]>)>,
    /// The aggregate types ever kept: appends of other types (journal entries) drop nothing.
    types: HashSet<String>,
}

impl ScopedCache {
    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        // The map holds no invariant a panic could break: a poisoned lock is used as is.
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The generation to hand to [`ScopedCache::keep`] after loading.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The streams of `wanted` (the scope's stream first) if every one was read within
    /// [`KEPT_FOR`]; streams without events are absent from the answer, and when the scope
    /// itself has none, so have its children.
    pub fn get(&self, wanted: &[Key]) -> Option<Streams> {
        let now = Instant::now();
        let kept = self.kept();
        let mut streams = Streams::with_capacity(wanted.len());
        for key in wanted {
            let (read, events) = kept.streams.get(key)?;
            if now.duration_since(*read) > KEPT_FOR {
                return None;
            }
            if !events.is_empty() {
                streams.insert(key.clone(), events.clone());
            }
        }
        if wanted
            .first()
            .is_some_and(|scope| !streams.contains_key(scope))
        {
            streams.clear();
        }
        Some(streams)
    }

    /// Keeps the streams of `wanted` as `streams` holds them (absent: no events), unless
    /// something was dropped since `generation` was read.
    pub fn keep(&self, generation: u64, wanted: &[Key], streams: &Streams) {
        let now = Instant::now();
        let mut kept = self.kept();
        if self.generation() != generation {
            return;
        }
        if kept.streams.len() + wanted.len() > KEPT_MAX {
            kept.streams
                .retain(|_, (read, _)| now.duration_since(*read) <= KEPT_FOR);
            if kept.streams.len() + wanted.len() > KEPT_MAX {
                kept.streams.clear();
            }
        }
        for key in wanted {
            if !kept.types.contains(&key.0) {
                kept.types.insert(key.0.clone());
            }
            let events = streams.get(key).cloned().unwrap_or_else(|| Arc::new([]));
            kept.streams.insert(key.clone(), (now, events));
        }
    }

    /// This process appended to these streams: drops them if they are of a kept type.
    pub fn written<'a>(&self, streams: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut kept = self.kept();
        let mut dropped = false;
        for (kind, id) in streams {
            if kept.types.contains(kind) {
                kept.streams.remove(&(kind.to_owned(), id.to_owned()));
                dropped = true;
            }
        }
        if dropped {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A decision found something changed by another process: drops everything.
    pub fn clear(&self) {
        let mut kept = self.kept();
        kept.streams.clear();
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}
