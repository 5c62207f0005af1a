//! The event envelope: what is stored with every domain event.
//!
//! Attributes follow CloudEvents 1.0 (`id`, `source`, `type`, `time`, `specversion`,
//! `subject`) so the same event can go onto Kafka unchanged, in binary mode as `ce_*` headers
//! with the payload as the message value.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The CloudEvents specification version every envelope declares.
pub const SPEC_VERSION: &str = "1.0";

/// An event a command decided on, before the store gives it a position.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    pub event_version: i32,
    pub payload: serde_json::Value,
}

/// Who and what caused an event. `user` is the user whose request stored it or, for a
/// reaction, the user of the request that started the chain; `reactor` names the reactor that
/// acted for them.
///
/// `causation_id` is the id of the event that caused the command (a reactor's source event;
/// none for a user's request); `correlation_id` is shared by every event of one chain: the
/// request id of the user's command that started it, carried on by every reaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reactor: Option<String>,
    /// The W3C trace context of the span that appended the event (when traces are exported):
    /// whoever handles the event continues that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// A stored event with its place in its aggregate and in the global order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// CloudEvents `id`: unique per event; consumers deduplicate on it.
    pub id: Uuid,
    /// Bounded context that owns the event, e.g. `finance`; also names its Kafka topic.
    pub context: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// 1-based position inside the aggregate; (aggregate_type, aggregate_id, sequence) is unique.
    pub sequence: i64,
    pub event_type: String,
    pub event_version: i32,
    /// CloudEvents `source`, e.g. `/tributary/finance`.
    pub source: String,
    pub time: DateTime<Utc>,
    /// Insertion position, unique across the store. Not alone a reading order on PostgreSQL:
    /// see [`crate::store`] for the feed cursor.
    pub position: i64,
    /// Feed cursor of the transaction that stored the event: readers resume after it.
    pub cursor: i64,
    pub payload: serde_json::Value,
    pub metadata: Metadata,
}

impl EventEnvelope {
    /// CloudEvents `type`: reverse-DNS style, stable across versions of the payload.
    pub fn cloudevents_type(&self) -> String {
        format!("tributary.{}.{}", self.context, self.event_type)
    }

    /// The event as a structured-mode CloudEvent (JSON).
    pub fn to_cloudevent(&self) -> serde_json::Value {
        serde_json::json!({
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": self.cloudevents_type(),
            "subject": format!("{}/{}", self.aggregate_type, self.aggregate_id),
            "time": self.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "datacontenttype": "application/json",
            "dataversion": self.event_version,
            "sequence": self.sequence,
            "data": self.payload,
        })
    }
}

/// Turns an externally tagged event enum value (`{"AccountCreated": {...}}`) into a stored
/// event: the tag becomes `event_type`, the content the payload.
pub fn to_new_event<E: Serialize>(event: &E, event_version: i32) -> NewEvent {
    // Domain event enums are plain data: serializing them cannot fail, and they are
    // externally tagged by construction, which the match below relies on.
    let value = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
    match value {
        serde_json::Value::Object(map) if map.len() == 1 => {
            let (event_type, payload) = map.into_iter().next().unwrap_or_default();
            NewEvent {
                event_type,
                event_version,
                payload,
            }
        }
        other => panic!("domain events are externally tagged enums with content, got {other}"),
    }
}

/// Reads a stored event back into its enum (the inverse of [`to_new_event`]).
pub fn from_envelope<E: serde::de::DeserializeOwned>(
    event: &EventEnvelope,
) -> Result<E, serde_json::Error> {
    // `{event_type: payload}` read in place: no copy of the payload (the pipelines decode
    // every event of a batch this way).
    use serde::de::value::{MapAccessDeserializer, MapDeserializer};
    let tagged = MapDeserializer::<_, serde_json::Error>::new(std::iter::once((
        event.event_type.as_str(),
        &event.payload,
    )));
    E::deserialize(MapAccessDeserializer::new(tagged))
}
