//! How events travel on Kafka: one topic per bounded context (`<context>.events`), keyed by
//! aggregate id (one aggregate's events stay in one partition, in order), the payload as the
//! JSON value, and CloudEvents binary-mode headers (`ce_id`, `ce_type`, `ce_source`, `ce_time`,
//! `ce_specversion`, `ce_subject`) plus Tributary's own (`tributary_*`) to rebuild the envelope.

use chrono::{DateTime, Utc};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::types::RDKafkaErrorCode;
use tributary_kernel::envelope::SPEC_VERSION;
use tributary_kernel::{EventEnvelope, Metadata};

pub const HEADER_EVENT_VERSION: &str = "tributary_event_version";
pub const HEADER_AGGREGATE_TYPE: &str = "tributary_aggregate_type";
pub const HEADER_SEQUENCE: &str = "tributary_sequence";
pub const HEADER_POSITION: &str = "tributary_position";
pub const HEADER_CURSOR: &str = "tributary_cursor";
pub const HEADER_RELAY_SEQUENCE: &str = "tributary_relay_sequence";
pub const HEADER_METADATA: &str = "tributary_metadata";
/// Broker request timeout for admin operations.
pub const ADMIN_TIMEOUT_MS: u64 = 10_000;

pub fn topic_for(context: &str) -> String {
    format!("{context}.events")
}

/// An event as read from Kafka, with the relay's sequence number for deduplication.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayedEvent {
    pub envelope: EventEnvelope,
    pub relay_sequence: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("header {header} is missing")]
    MissingHeader { header: &'static str },
    #[error("header {header} is not valid: {reason}")]
    BadHeader {
        header: &'static str,
        reason: String,
    },
    #[error("the message has no value")]
    NoValue,
    #[error("the value is not JSON: {0}")]
    Value(serde_json::Error),
}

/// Key, value and headers of one event on its topic.
pub fn encode(event: &EventEnvelope, relay_sequence: i64) -> (String, String, OwnedHeaders) {
    let time = event
        .time
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let metadata = serde_json::to_string(&event.metadata).unwrap_or_else(|_| "{}".into());
    let subject = format!("{}/{}", event.aggregate_type, event.aggregate_id);
    let pairs: [(&str, String); 13] = [
        ("ce_specversion", SPEC_VERSION.to_owned()),
        ("ce_id", event.id.to_string()),
        ("ce_type", event.cloudevents_type()),
        ("ce_source", event.source.clone()),
        ("ce_time", time),
        ("ce_subject", subject),
        ("content-type", "application/json".to_owned()),
        (HEADER_EVENT_VERSION, event.event_version.to_string()),
        (HEADER_AGGREGATE_TYPE, event.aggregate_type.clone()),
        (HEADER_SEQUENCE, event.sequence.to_string()),
        (HEADER_POSITION, event.position.to_string()),
        (HEADER_CURSOR, event.cursor.to_string()),
        (HEADER_RELAY_SEQUENCE, relay_sequence.to_string()),
    ];
    let mut headers = OwnedHeaders::new_with_capacity(pairs.len() + 1);
    for (key, value) in &pairs {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    headers = headers.insert(Header {
        key: HEADER_METADATA,
        value: Some(metadata.as_bytes()),
    });
    // The W3C trace context as its own header too, where Kafka tooling looks for it.
    if let Some(traceparent) = &event.metadata.traceparent {
        headers = headers.insert(Header {
            key: tributary_kernel::telemetry::TRACEPARENT,
            value: Some(traceparent.as_bytes()),
        });
    }
    (
        event.aggregate_id.clone(),
        event.payload.to_string(),
        headers,
    )
}

fn header<'a, M: Message>(message: &'a M, name: &'static str) -> Result<&'a str, MessageError> {
    let headers = message
        .headers()
        .ok_or(MessageError::MissingHeader { header: name })?;
    let value = headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .ok_or(MessageError::MissingHeader { header: name })?;
    std::str::from_utf8(value).map_err(|e| MessageError::BadHeader {
        header: name,
        reason: e.to_string(),
    })
}

fn parsed<T: std::str::FromStr, M: Message>(
    message: &M,
    name: &'static str,
) -> Result<T, MessageError>
where
    T::Err: std::fmt::Display,
{
    header(message, name)?
        .parse()
        .map_err(|e: T::Err| MessageError::BadHeader {
            header: name,
            reason: e.to_string(),
        })
}

/// Rebuilds the event from a message written by [`encode`].
pub fn decode<M: Message>(message: &M) -> Result<RelayedEvent, MessageError> {
    let value = message.payload().ok_or(MessageError::NoValue)?;
    let payload = serde_json::from_slice(value).map_err(MessageError::Value)?;
    let ce_type = header(message, "ce_type")?;
    let source = header(message, "ce_source")?.to_owned();
    let context = source.rsplit('/').next().unwrap_or_default().to_owned();
    let prefix = format!("tributary.{context}.");
    let event_type = ce_type
        .strip_prefix(&prefix)
        .ok_or_else(|| MessageError::BadHeader {
            header: "ce_type",
            reason: format!("does not start with {prefix}"),
        })?
        .to_owned();
    let time: DateTime<Utc> = DateTime::parse_from_rfc3339(header(message, "ce_time")?)
        .map_err(|e| MessageError::BadHeader {
            header: "ce_time",
            reason: e.to_string(),
        })?
        .with_timezone(&Utc);
    let subject = header(message, "ce_subject")?;
    let aggregate_type = header(message, HEADER_AGGREGATE_TYPE)?.to_owned();
    let aggregate_id = subject
        .strip_prefix(&format!("{aggregate_type}/"))
        .ok_or_else(|| MessageError::BadHeader {
            header: "ce_subject",
            reason: "does not name the aggregate".into(),
        })?
        .to_owned();
    let metadata: Metadata =
        serde_json::from_str(header(message, HEADER_METADATA)?).map_err(|e| {
            MessageError::BadHeader {
                header: HEADER_METADATA,
                reason: e.to_string(),
            }
        })?;
    // Messages relayed before aggregate types were qualified by context carry the bare name;
    // the event store renamed them (migration "qualified aggregate types"), so do the same here.
    let aggregate_type = if aggregate_type.contains('.') {
        aggregate_type
    } else {
        format!("{context}.{aggregate_type}")
    };
    Ok(RelayedEvent {
        envelope: EventEnvelope {
            id: parsed(message, "ce_id")?,
            context,
            aggregate_type,
            aggregate_id,
            sequence: parsed(message, HEADER_SEQUENCE)?,
            event_type,
            event_version: parsed(message, HEADER_EVENT_VERSION)?,
            source,
            time,
            position: parsed(message, HEADER_POSITION)?,
            cursor: parsed(message, HEADER_CURSOR)?,
            payload,
            metadata,
        },
        relay_sequence: parsed(message, HEADER_RELAY_SEQUENCE)?,
    })
}

/// Producer settings: idempotent, acks from all in-sync replicas, order kept per partition.
pub fn producer_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "5")
        .set("linger.ms", "5")
        // Record batches well below the consumers' per-partition fetch size: a batch near the
        // 1 MB defaults stalled produce and fetch against tansu (seen at ~1,300 events per
        // partition batch); smaller batches cost little.
        .set("batch.size", "262144")
        // Keep retrying through a broker outage; the events also wait safely in the event store.
        .set("message.timeout.ms", "600000");
    config
}

/// How often a consumer's statistics (its lag per partition) are taken.
pub const STATISTICS_INTERVAL_MS: u64 = 5_000;

/// Consumer settings: progress lives in Delta, so Kafka's committed offsets are never used.
///
/// `instance`: static group membership (KIP-345, `group.instance.id`), one stable id per
/// process (a StatefulSet pod name, say). A restarted process takes its partitions back at
/// once instead of waiting for the old session to expire and a rebalance. tansu 0.6.0 needs
/// it: when a killed member's session expires it keeps the member's partitions assigned to
/// nobody and never rebalances (seen in the kill -9 test: partitions idle for minutes).
pub fn consumer_config(brokers: &str, group: &str, instance: Option<&str>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // 1 MB per partition and Kafka's default 45 s session: tansu answers heartbeats on the
        // connection that serves fetches, and 4 MB fetches from a 50,000-message topic starved
        // them past a 10 s session (the bench's consumer was expelled and read nothing).
        .set("max.partition.fetch.bytes", "1048576")
        .set("fetch.max.bytes", "16777216")
        .set("session.timeout.ms", "45000")
        // Consumer lag per partition for the metrics (AssignFromDelta's statistics callback).
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
    if let Some(instance) = instance {
        config.set("group.instance.id", instance);
    }
    config
}

/// Creates the topics that do not exist yet.
pub async fn ensure_topics(
    brokers: &str,
    topics: &[String],
    partitions: i32,
) -> Result<(), rdkafka::error::KafkaError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(std::time::Duration::from_millis(ADMIN_TIMEOUT_MS)));
    for result in admin.create_topics(&new, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(rdkafka::error::KafkaError::AdminOp(code))
                    .inspect_err(|_| tracing::error!(topic, "topic creation failed"));
            }
        }
    }
    Ok(())
}
