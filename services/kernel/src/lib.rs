//! The shared kernel of Tributary's transactional services.
//!
//! It owns what every bounded context needs and none owns alone: the event envelope
//! (CloudEvents attributes), the event store on SQLite or PostgreSQL, idempotency records,
//! money and quantity parsing, and the HTTP error model (`application/problem+json`).
//! Contexts build on it and talk to each other only through the events it stores.

pub mod envelope;
pub mod http;
pub mod money;
pub mod store;

pub use envelope::{EventEnvelope, Metadata, NewEvent, from_envelope, to_new_event};
pub use store::{
    AppendBatch, Decision, EventStore, FeedBatch, RelayLease, RelayPosition, StoreError,
    StreamRead, StreamWrite,
};
