//! Domain events: one enum per aggregate, a version per event type, upcasters on read.
//!
//! ```text
//!  stored {type, version v, payload} ──► upcasters v→v+1→…→current ──► enum variant
//!  enum variant ──► {type = variant name, version = current, payload = content}
//! ```
//! An event type's current version is 1 plus the number of upcasters registered for it, so
//! adding an upcaster is what bumps a version (STYLE.md, "Events"): nothing else to keep in
//! step. The event types of an enum are its serde variant names, read from serde itself, so a
//! new variant is a new event type that the fixture check ([`check_fixtures`]) then asks for.

use crate::envelope::{EventEnvelope, NewEvent};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Lifts one stored event type from `from_version` to `from_version + 1`.
#[derive(Debug, Clone, Copy)]
pub struct Upcaster {
    pub event_type: &'static str,
    pub from_version: i32,
    pub upcast: fn(serde_json::Value) -> Result<serde_json::Value, String>,
}

/// An aggregate's event enum: externally tagged (`{"AccountCreated": {…}}`), every variant
/// with content.
pub trait DomainEvent:
    Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static
{
    /// Upcasters of older stored versions; none while every type is at version 1.
    fn upcasters() -> &'static [Upcaster] {
        &[]
    }

    /// The event types this enum has (its variant names).
    fn event_types() -> &'static [&'static str] {
        variant_names::<Self>()
    }

    /// The version an event of `event_type` is written with now.
    fn current_version(event_type: &str) -> i32 {
        1 + Self::upcasters()
            .iter()
            .filter(|u| u.event_type == event_type)
            .count() as i32
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(
        "event {event_id} at position {position} ({event_type} v{version}) cannot be read: {reason}"
    )]
    Unreadable {
        event_id: uuid::Uuid,
        position: i64,
        event_type: String,
        version: i32,
        reason: String,
    },
}

/// The stored form of an event: its type, current version and payload.
pub fn encode<E: DomainEvent>(event: &E) -> NewEvent {
    let mut new = crate::envelope::to_new_event(event, 1);
    new.event_version = E::current_version(&new.event_type);
    new
}

/// Reads a stored event into its enum, upcasting older versions first.
pub fn decode<E: DomainEvent>(event: &EventEnvelope) -> Result<E, EventError> {
    let unreadable = |reason: String| EventError::Unreadable {
        event_id: event.id,
        position: event.position,
        event_type: event.event_type.clone(),
        version: event.event_version,
        reason,
    };
    let current = E::current_version(&event.event_type);
    if event.event_version == current {
        return crate::envelope::from_envelope(event).map_err(|e| unreadable(e.to_string()));
    }
    let payload = upcast::<E>(
        &event.event_type,
        event.event_version,
        event.payload.clone(),
    )
    .map_err(unreadable)?;
    decode_payload(&event.event_type, payload).map_err(unreadable)
}

/// A payload of `event_type` at `version` brought to the current version.
pub fn upcast<E: DomainEvent>(
    event_type: &str,
    version: i32,
    mut payload: serde_json::Value,
) -> Result<serde_json::Value, String> {
    let current = E::current_version(event_type);
    if version < 1 || version > current {
        return Err(format!(
            "version {version} is unknown: {event_type} is at version {current}"
        ));
    }
    for from in version..current {
        let upcaster = E::upcasters()
            .iter()
            .find(|u| u.event_type == event_type && u.from_version == from)
            .ok_or_else(|| format!("no upcaster of {event_type} from version {from}"))?;
        payload = (upcaster.upcast)(payload)?;
    }
    Ok(payload)
}

/// `{event_type: payload}` read as the enum.
pub fn decode_payload<E: DomainEvent>(
    event_type: &str,
    payload: serde_json::Value,
) -> Result<E, String> {
    let mut tagged = serde_json::Map::new();
    tagged.insert(event_type.to_owned(), payload);
    serde_json::from_value(serde_json::Value::Object(tagged)).map_err(|e| e.to_string())
}

/// The variant names serde knows for an enum: it hands them to `deserialize_enum`.
fn variant_names<E: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Deserializer, Visitor};
    struct Names(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("variant names read")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for &mut Names {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _: &'static str,
            variants: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(variants);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
            ignored_any
        }
    }
    let mut names = Names(None);
    let _ = E::deserialize(&mut names);
    names.0.unwrap_or(&[])
}

/// Checks the golden fixtures of one event enum in `dir`: for every event type and every
/// version from 1 to the current one, `<dir>/<EventType>.v<N>.json` must exist and read back,
/// through the upcasters, as that very event type. Returns every problem found.
pub fn check_fixtures<E: DomainEvent>(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for &event_type in E::event_types() {
        for version in 1..=E::current_version(event_type) {
            let path = dir.join(format!("{event_type}.v{version}.json"));
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(error) => {
                    problems.push(format!(
                        "{}: no golden fixture for {event_type} v{version} ({error})",
                        path.display()
                    ));
                    continue;
                }
            };
            let result = serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| e.to_string())
                .and_then(|payload| upcast::<E>(event_type, version, payload))
                .and_then(|payload| decode_payload::<E>(event_type, payload));
            match result {
                Ok(event) => {
                    let written = encode(&event);
                    if written.event_type != event_type {
                        problems.push(format!(
                            "{}: reads back as {}, not {event_type}",
                            path.display(),
                            written.event_type
                        ));
                    }
                }
                Err(error) => problems.push(format!("{}: {error}", path.display())),
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
    enum ThingEvent {
        ThingMade { name: String, colour: String },
        ThingBroken { name: String },
    }

    fn default_colour(mut payload: serde_json::Value) -> Result<serde_json::Value, String> {
        let object = payload.as_object_mut().ok_or("payload is not an object")?;
        object.insert("colour".into(), "grey".into());
        Ok(payload)
    }

    impl DomainEvent for ThingEvent {
        fn upcasters() -> &'static [Upcaster] {
            &[Upcaster {
                event_type: "ThingMade",
                from_version: 1,
                upcast: default_colour,
            }]
        }
    }

    fn envelope(event_type: &str, version: i32, payload: serde_json::Value) -> EventEnvelope {
        EventEnvelope {
            id: uuid::Uuid::nil(),
            context: "test".into(),
            aggregate_type: "test.thing".into(),
            aggregate_id: "a".into(),
            sequence: 1,
            event_type: event_type.into(),
            event_version: version,
            source: "/tributary/test".into(),
            time: chrono::Utc::now(),
            position: 1,
            cursor: 1,
            payload,
            metadata: Default::default(),
        }
    }

    #[test]
    fn versions_follow_the_upcasters_and_old_events_are_upcast_on_read() {
        assert_eq!(ThingEvent::event_types(), &["ThingMade", "ThingBroken"]);
        assert_eq!(ThingEvent::current_version("ThingMade"), 2);
        assert_eq!(ThingEvent::current_version("ThingBroken"), 1);
        let written = encode(&ThingEvent::ThingMade {
            name: "a".into(),
            colour: "red".into(),
        });
        assert_eq!(written.event_version, 2);
        let old = envelope("ThingMade", 1, serde_json::json!({"name": "a"}));
        assert_eq!(
            decode::<ThingEvent>(&old).unwrap(),
            ThingEvent::ThingMade {
                name: "a".into(),
                colour: "grey".into()
            }
        );
        let future = envelope("ThingMade", 3, serde_json::json!({"name": "a"}));
        assert!(decode::<ThingEvent>(&future).is_err());
    }

    #[test]
    fn a_missing_or_wrong_fixture_is_reported() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("ThingMade.v1.json"), r#"{"name":"a"}"#).unwrap();
        std::fs::write(
            dir.join("ThingMade.v2.json"),
            r#"{"name":"a","colour":"red"}"#,
        )
        .unwrap();
        let problems = check_fixtures::<ThingEvent>(&dir);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("ThingBroken v1"), "{problems:?}");
        std::fs::write(dir.join("ThingBroken.v1.json"), r#"{"nom":"a"}"#).unwrap();
        let problems = check_fixtures::<ThingEvent>(&dir);
        assert!(problems[0].contains("missing field `name`"), "{problems:?}");
        std::fs::write(dir.join("ThingBroken.v1.json"), r#"{"name":"a"}"#).unwrap();
        assert!(check_fixtures::<ThingEvent>(&dir).is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tributary-fixtures-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
