//! Sensitive fields sealed with AES-256-GCM (ring's AEAD): what the event store, Kafka and the
//! lake hold is ciphertext naming the key it was sealed with, so keys can be rotated.
//!
//! ```text
//!  "DE89370400440532013000" ─seal(field "materials.vendor.iban")─► "enc:v1:k2:<base64url(nonce ‖ ciphertext ‖ tag)>"
//!  keys: TRIBUTARY_FIELD_KEYS="k2=<base64 of 32 bytes>,k1=<…>"   the first seals, every one opens
//!        unset: one generated key kept in the database's field_keys table (embedded default)
//! ```
//! The field's name is the associated data: a ciphertext copied into another field does not
//! open. A value without the `enc:` prefix is clear text written before the field was sealed,
//! and is returned as it is.

use crate::on_database as on;
use crate::store::Database;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::sync::Arc;

/// The prefix of a sealed value and its format version.
const PREFIX: &str = "enc:v1:";
/// Bytes of an AES-256 key.
pub const KEY_BYTES: usize = 32;
/// The id of the key generated when none is configured.
const STORED_KEY_ID: &str = "s-default";
/// The longest key id accepted.
const KEY_ID_LENGTH_MAX: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "TRIBUTARY_FIELD_KEYS: {0}; expected `id=<base64 of 32 bytes>[,id=…]`, the first key sealing"
    )]
    Config(String),
    #[error("the value was sealed with key {0}, which is not configured")]
    UnknownKey(String),
    #[error("the sealed value is damaged or was sealed for another field")]
    Damaged,
    #[error("cannot keep the field key: {0}")]
    Store(String),
}

struct Key {
    id: String,
    key: LessSafeKey,
}

/// The installation's field keys: the current one seals, every one opens.
#[derive(Clone)]
pub struct FieldKeys {
    current: Arc<Key>,
    keys: Arc<HashMap<String, Arc<Key>>>,
}

impl std::fmt::Debug for FieldKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldKeys")
            .field("current", &self.current.id)
            .field("count", &self.keys.len())
            .finish()
    }
}

fn key(id: &str, bytes: &[u8]) -> Result<Key, SealError> {
    if id.is_empty()
        || id.len() > KEY_ID_LENGTH_MAX
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(SealError::Config(format!(
            "key id {id:?} must be 1 to {KEY_ID_LENGTH_MAX} letters, digits, '-' or '_'"
        )));
    }
    if bytes.len() != KEY_BYTES {
        return Err(SealError::Config(format!(
            "key {id} has {} bytes, AES-256 needs {KEY_BYTES}",
            bytes.len()
        )));
    }
    let unbound = UnboundKey::new(&AES_256_GCM, bytes)
        .map_err(|_| SealError::Config(format!("key {id} is not an AES-256 key")))?;
    Ok(Key {
        id: id.to_owned(),
        key: LessSafeKey::new(unbound),
    })
}

/// Keys from their configuration text (`id=base64,…`), in their order.
fn parse_keys(text: &str) -> Result<Vec<Key>, SealError> {
    let mut ordered = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, encoded) = entry
            .split_once('=')
            .ok_or_else(|| SealError::Config(format!("{entry:?} has no `=`")))?;
        let bytes = STANDARD
            .decode(encoded.trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(encoded.trim()))
            .map_err(|_| SealError::Config(format!("key {id} is not base64")))?;
        ordered.push(key(id.trim(), &bytes)?);
    }
    Ok(ordered)
}

impl FieldKeys {
    /// Keys from their configuration text (`TRIBUTARY_FIELD_KEYS`): `id=base64,…`, the first
    /// sealing.
    pub fn parse(text: &str) -> Result<FieldKeys, SealError> {
        Self::from_keys(parse_keys(text)?)
    }

    fn from_keys(ordered: Vec<Key>) -> Result<FieldKeys, SealError> {
        let mut keys = HashMap::new();
        let mut current = None;
        for key in ordered {
            let key = Arc::new(key);
            if keys.insert(key.id.clone(), key.clone()).is_some() {
                return Err(SealError::Config(format!(
                    "key id {} appears twice",
                    key.id
                )));
            }
            current.get_or_insert(key);
        }
        let current = current.ok_or_else(|| SealError::Config("no key".into()))?;
        Ok(FieldKeys {
            current,
            keys: Arc::new(keys),
        })
    }

    /// The configured keys (the first seals), else the installation's stored key, created on
    /// first start (the embedded default: the ciphertext leaves the database, the key does
    /// not). A stored key always opens what it sealed, also once keys are configured.
    pub async fn load(db: &Database, configured: Option<&str>) -> Result<FieldKeys, SealError> {
        let store = |e: sqlx::Error| SealError::Store(e.to_string());
        let configured = configured.filter(|t| !t.trim().is_empty());
        let mut rows = stored_keys(db).await.map_err(store)?;
        if rows.is_empty() && configured.is_none() {
            let mut bytes = [0u8; KEY_BYTES];
            SystemRandom::new()
                .fill(&mut bytes)
                .map_err(|_| SealError::Store("no randomness".into()))?;
            // One id: processes starting at once insert the same row, the first one wins.
            on!(db, true, |pool| {
                sqlx::query(
                    "INSERT INTO field_keys (id, key, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(STORED_KEY_ID)
                .bind(STANDARD.encode(bytes))
                .bind(chrono::Utc::now().timestamp())
                .execute(pool)
                .await
                .map_err(store)?
                .rows_affected()
            });
            rows = stored_keys(db).await.map_err(store)?;
        }
        let mut ordered = match configured {
            Some(text) => parse_keys(text)?,
            None => Vec::new(),
        };
        for (id, encoded) in rows {
            if ordered.iter().any(|k: &Key| k.id == id) {
                continue;
            }
            let bytes = STANDARD
                .decode(&encoded)
                .map_err(|_| SealError::Store(format!("stored key {id} is not base64")))?;
            ordered.push(key(&id, &bytes)?);
        }
        Self::from_keys(ordered)
    }

    /// A fresh key's configuration text, for an operator to put in `TRIBUTARY_FIELD_KEYS`.
    pub fn generate_config(id: &str) -> Result<String, SealError> {
        let mut bytes = [0u8; KEY_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SealError::Config("no randomness".into()))?;
        key(id, &bytes)?;
        Ok(format!("{id}={}", STANDARD.encode(bytes)))
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// `clear` sealed for `field` with the current key, a fresh nonce each time.
    pub fn seal(&self, field: &str, clear: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // The operating system's generator does not fail on the platforms we build for.
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the operating system provides random bytes");
        let mut buffer = clear.as_bytes().to_vec();
        self.current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(field.as_bytes()),
                &mut buffer,
            )
            .expect("AES-GCM seals any input shorter than 64 GiB");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&buffer);
        format!(
            "{PREFIX}{}:{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(sealed)
        )
    }

    /// The clear text of a value of `field`: opened when sealed, as it is when written before
    /// the field was sealed.
    pub fn open(&self, field: &str, value: &str) -> Result<String, SealError> {
        let Some(rest) = value.strip_prefix(PREFIX) else {
            return Ok(value.to_owned());
        };
        let (id, encoded) = rest.split_once(':').ok_or(SealError::Damaged)?;
        let key = self
            .keys
            .get(id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let mut bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SealError::Damaged)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Damaged);
        }
        let mut body = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| SealError::Damaged)?;
        let clear = key
            .key
            .open_in_place(nonce, Aad::from(field.as_bytes()), &mut body)
            .map_err(|_| SealError::Damaged)?;
        String::from_utf8(clear.to_vec()).map_err(|_| SealError::Damaged)
    }
}

/// A sensitive value as events keep it: sealed, and masked for whoever may not see it (the
/// masked form is what the lake and most readers get).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sealed {
    pub sealed: String,
    pub masked: String,
}

impl FieldKeys {
    /// `clear` sealed for `field`, with its masked form.
    pub fn seal_masked(&self, field: &str, clear: &str) -> Sealed {
        Sealed {
            sealed: self.seal(field, clear),
            masked: mask(clear),
        }
    }
}

/// The masked form shown without the permission to see a value: its last four characters.
pub fn mask(clear: &str) -> String {
    let chars: Vec<char> = clear.chars().filter(|c| !c.is_whitespace()).collect();
    // A short value shows at most half of itself.
    let shown = 4.min(chars.len() / 2);
    let hidden = chars.len() - shown;
    let tail: String = chars[hidden..].iter().collect();
    format!("{}{tail}", "*".repeat(hidden))
}

async fn stored_keys(db: &Database) -> Result<Vec<(String, String)>, sqlx::Error> {
    Ok(on!(db, false, |pool| {
        sqlx::query_as("SELECT id, key FROM field_keys ORDER BY created_at, id")
            .fetch_all(pool)
            .await?
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> FieldKeys {
        FieldKeys::parse(text).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_field_and_with_its_key() {
        let k1 = FieldKeys::generate_config("k1").unwrap();
        let k2 = FieldKeys::generate_config("k2").unwrap();
        let old = keys(&k1);
        let sealed = old.seal("vendor.iban", "DE89370400440532013000");
        assert!(sealed.starts_with("enc:v1:k1:"), "{sealed}");
        assert!(!sealed.contains("DE89"));
        assert_ne!(sealed, old.seal("vendor.iban", "DE89370400440532013000"));
        assert_eq!(
            old.open("vendor.iban", &sealed).unwrap(),
            "DE89370400440532013000"
        );
        assert_eq!(old.open("other.field", &sealed), Err(SealError::Damaged));
        // Rotated: k2 seals, k1 still opens; without k1 the value names its key.
        let rotated = keys(&format!("{k2},{k1}"));
        assert_eq!(rotated.current_id(), "k2");
        assert_eq!(
            rotated.open("vendor.iban", &sealed).unwrap(),
            "DE89370400440532013000"
        );
        assert_eq!(
            keys(&k2).open("vendor.iban", &sealed),
            Err(SealError::UnknownKey("k1".into()))
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(old.open("vendor.iban", &tampered), Err(SealError::Damaged));
        assert_eq!(old.open("vendor.iban", "clear").unwrap(), "clear");
    }

    #[test]
    fn bad_key_configuration_is_named() {
        for (text, part) in [
            ("k1", "has no `=`"),
            ("k1=!!!", "not base64"),
            ("k1=AAAA", "has 3 bytes"),
            ("", "no key"),
            ("bad id=AAAA", "key id"),
        ] {
            let error = FieldKeys::parse(text).unwrap_err().to_string();
            assert!(error.contains(part), "{text}: {error}");
        }
        let k1 = FieldKeys::generate_config("k1").unwrap();
        assert!(
            FieldKeys::parse(&format!("{k1},{k1}"))
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }

    #[test]
    fn masks_show_the_last_four_characters_only() {
        assert_eq!(
            mask("DE89 3704 0044 0532 0130 00"),
            "******************3000"
        );
        assert_eq!(mask("1234"), "**34");
        assert_eq!(mask(""), "");
    }
}
