//! The shared kernel of Tributary's transactional services. It knows no context.
//!
//! It owns what every bounded context needs and none owns alone:
//! - [`aggregate`]: the aggregate abstraction (pure `decide`/`apply`) and its repository;
//! - [`event`]: event types with a version each, upcasters applied on read, golden fixtures;
//! - [`envelope`]: the stored event (CloudEvents attributes, causation and correlation ids);
//! - [`store`]: the event store on SQLite or PostgreSQL, idempotency records;
//! - [`command`]: the HTTP command prologue (JSON body, validation, idempotency, commit);
//! - [`auth`]: callers, permissions per route, roles and grants per company;
//! - [`http`]: the HTTP error model (`application/problem+json`);
//! - [`master`], [`money`]: company, period, currency, money, quantity and unit of measure;
//! - [`lake`]: lake tables and source relations as contexts declare them (no Arrow here);
//! - [`reactor`]: reactions to other contexts' events, exactly once in effect, with suspense;
//! - [`module`]: the module description each context exposes.
//!
//! Contexts build on it and talk to each other only through the events it stores.

pub mod aggregate;
pub mod audit;
pub mod auth;
pub mod availability;
pub mod command;
pub mod envelope;
pub mod event;
pub mod feed_index;
pub mod http;
pub mod lake;
pub mod master;
pub mod module;
pub mod money;
pub mod openapi;
pub mod ratelimit;
pub mod reactor;
pub mod sealed;
pub mod store;
pub mod telemetry;

pub use aggregate::{Aggregate, Loaded, RepositoryError};
pub use envelope::{EventEnvelope, Metadata, NewEvent, from_envelope, to_new_event};
pub use event::{DomainEvent, EventError, Upcaster};
pub use module::{Module, Platform};
pub use store::{
    AppendBatch, Decision, EventStore, FeedBatch, RelayLease, RelayPosition, SharedFeedBatch,
    StoreError, StreamRead, StreamWrite,
};
