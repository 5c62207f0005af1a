//! Access tokens (HS256 JWTs with a key id), refresh tokens and revocations, in the identity
//! tables beside the event store (one SQL text for SQLite and PostgreSQL).
//!
//! ```text
//!  login ─► session id S ─► access token {sub, jti, sid: S, exp} + refresh token R1 (hash kept)
//!  refresh R1 ─► R1 revoked, R2 issued in S ─► new access token
//!  refresh R1 again (stolen and replayed) ─► session S revoked: R2 and S's access tokens too
//!  logout ─► the access token's jti and its session S revoked
//! ```

use crate::passwords::random_hex;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use tributary_kernel::on_database as on;
use tributary_kernel::store::Database;

/// The `iss` and `aud` of our own tokens.
pub const ISSUER: &str = "tributary";
/// Tolerated difference between the clocks of the machines that sign and verify.
pub const CLOCK_SKEW_SECONDS: u64 = 60;
/// Bytes of a generated signing secret and of a refresh token.
const SECRET_BYTES: usize = 32;
/// Shortest configured signing secret accepted.
pub const SIGNING_SECRET_LENGTH_MIN: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// The session (login) the token belongs to.
    pub sid: String,
}

/// The HMAC keys by id: the newest signs, every one verifies.
#[derive(Clone)]
pub struct SigningKeys {
    current: String,
    keys: HashMap<String, Vec<u8>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("current", &self.current)
            .field("count", &self.keys.len())
            .finish()
    }
}

impl SigningKeys {
    /// A configured secret (its id is derived from it), else the stored keys, creating one on
    /// first start.
    pub async fn load(db: &Database, configured: Option<&str>) -> Result<SigningKeys, String> {
        if let Some(secret) = configured {
            if secret.len() < SIGNING_SECRET_LENGTH_MIN {
                return Err(format!(
                    "the token signing secret must be at least {SIGNING_SECRET_LENGTH_MIN} bytes"
                ));
            }
            let kid = format!("c-{}", &sha256_hex(secret.as_bytes())[..12]);
            return Ok(SigningKeys {
                current: kid.clone(),
                keys: HashMap::from([(kid, secret.as_bytes().to_vec())]),
            });
        }
        let mut rows = stored_keys(db).await.map_err(|e| e.to_string())?;
        if rows.is_empty() {
            let kid = format!("k-{}", &random_hex(6));
            let now = chrono::Utc::now().timestamp();
            on!(db, true, |pool| {
                sqlx::query(
                    "INSERT INTO identity_signing_keys (kid, secret, created_at) VALUES ($1, $2, $3)",
                )
                .bind(&kid)
                .bind(random_hex(SECRET_BYTES))
                .bind(now)
                .execute(pool)
                .await
                .map_err(|e| e.to_string())?
                .rows_affected()
            });
            // Two processes starting at once may both insert: the newest key signs either way.
            rows = stored_keys(db).await.map_err(|e| e.to_string())?;
        }
        let current = rows
            .last()
            .map(|(kid, _)| kid.clone())
            .ok_or("no signing key stored")?;
        Ok(SigningKeys {
            current,
            keys: rows
                .into_iter()
                .map(|(kid, secret)| (kid, secret.into_bytes()))
                .collect(),
        })
    }

    pub fn has(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current.clone());
        let key = self
            .keys
            .get(&self.current)
            .ok_or("no current signing key")?;
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key))
            .map_err(|e| e.to_string())
    }

    /// The claims of one of our tokens, checked: signature, issuer, audience, expiry and
    /// not-before (with the clock skew allowed).
    pub fn verify(&self, token: &str, kid: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        let key = self
            .keys
            .get(kid)
            .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[ISSUER]);
        validation.leeway = CLOCK_SKEW_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Ok(
            jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key), &validation)?
                .claims,
        )
    }
}

/// Verified tokens kept at most; beyond, all are dropped and verified again.
const VERIFIED_MAX: usize = 4096;

/// Tokens whose signature and claims were checked, by their whole text (signature included,
/// so no other text finds one): the HMAC, base64 and JSON of a token once, not at every
/// request. Expiry is checked again at every use; revocation is never kept here.
#[derive(Debug, Default)]
pub struct VerifiedTokens {
    tokens: std::sync::Mutex<HashMap<String, (String, Claims)>>,
}

impl VerifiedTokens {
    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Claims)>> {
        // The map holds no invariant a panic could break: a poisoned lock is used as is.
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key id and claims of `token` if it was verified and has not expired at `now`
    /// (with the clock skew allowed, as [`SigningKeys::verify`] allows it).
    pub fn get(&self, token: &str, now: i64) -> Option<(String, Claims)> {
        let tokens = self.tokens();
        let (kid, claims) = tokens.get(token)?;
        let skew = i64::try_from(CLOCK_SKEW_SECONDS).unwrap_or(i64::MAX);
        (claims.exp >= now.saturating_sub(skew)).then(|| (kid.clone(), claims.clone()))
    }

    /// Keeps a token [`SigningKeys::verify`] accepted.
    pub fn keep(&self, token: &str, kid: &str, claims: &Claims) {
        let mut tokens = self.tokens();
        if tokens.len() >= VERIFIED_MAX {
            tokens.clear();
        }
        tokens.insert(token.to_owned(), (kid.to_owned(), claims.clone()));
    }
}

async fn stored_keys(db: &Database) -> Result<Vec<(String, String)>, sqlx::Error> {
    Ok(on!(db, false, |pool| {
        sqlx::query_as("SELECT kid, secret FROM identity_signing_keys ORDER BY created_at, kid")
            .fetch_all(pool)
            .await?
    }))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// A new refresh token: what the client gets, and the hash stored.
pub fn new_refresh_token() -> (String, String) {
    let token = format!("rt_{}", random_hex(SECRET_BYTES));
    let hash = sha256_hex(token.as_bytes());
    (token, hash)
}

/// A refresh token as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRecord {
    pub username: String,
    pub session: String,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// The identity tables.
#[derive(Debug, Clone)]
pub struct TokenStore {
    pub db: Database,
}

impl TokenStore {
    pub async fn insert_refresh(
        &self,
        hash: &str,
        username: &str,
        session: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        on!(&self.db, true, |pool| {
            sqlx::query(
                "INSERT INTO identity_refresh_tokens \
                 (token_hash, username, session, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(hash)
            .bind(username)
            .bind(session)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    pub async fn refresh_record(&self, hash: &str) -> Result<Option<RefreshRecord>, sqlx::Error> {
        Ok(on!(&self.db, false, |pool| {
            sqlx::query_as(
                "SELECT username, session, expires_at, revoked_at FROM identity_refresh_tokens \
                 WHERE token_hash = $1",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Revokes one refresh token unless it is revoked already; `false` when another request
    /// used it first.
    pub async fn use_refresh(&self, hash: &str, now: i64) -> Result<bool, sqlx::Error> {
        let changed = on!(&self.db, true, |pool| {
            sqlx::query(
                "UPDATE identity_refresh_tokens SET revoked_at = $1 \
                 WHERE token_hash = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(hash)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Revokes a session: its refresh tokens, and its access tokens by the session id.
    pub async fn revoke_session(
        &self,
        session: &str,
        now: i64,
        until: i64,
    ) -> Result<(), sqlx::Error> {
        on!(&self.db, true, |pool| {
            sqlx::query(
                "UPDATE identity_refresh_tokens SET revoked_at = $1 \
                 WHERE session = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(session)
            .execute(pool)
            .await?
            .rows_affected()
        });
        self.revoke(&session_token_id(session), until).await
    }

    /// The sessions of a user not expired yet (revoked refresh tokens included: a refresh in
    /// flight may be about to add one).
    pub async fn user_sessions(
        &self,
        username: &str,
        now: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = on!(&self.db, false, |pool| {
            sqlx::query_as(
                "SELECT DISTINCT session FROM identity_refresh_tokens \
                 WHERE username = $1 AND expires_at >= $2",
            )
            .bind(username)
            .bind(now)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(session,)| session).collect())
    }

    /// Records a revoked access token id (or session) until it would expire anyway, and
    /// forgets the revocations of tokens expired since.
    pub async fn revoke(&self, token_id: &str, expires_at: i64) -> Result<(), sqlx::Error> {
        let now = chrono::Utc::now().timestamp();
        on!(&self.db, true, |pool| {
            sqlx::query("DELETE FROM identity_revocations WHERE expires_at < $1")
                .bind(now - CLOCK_SKEW_SECONDS as i64)
                .execute(pool)
                .await?
                .rows_affected()
        });
        on!(&self.db, true, |pool| {
            sqlx::query(
                "INSERT INTO identity_revocations (token_id, expires_at) VALUES ($1, $2) \
                 ON CONFLICT (token_id) DO NOTHING",
            )
            .bind(token_id)
            .bind(expires_at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// The revocations still in force.
    pub async fn revocations(&self, now: i64) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = on!(&self.db, false, |pool| {
            sqlx::query_as("SELECT token_id FROM identity_revocations WHERE expires_at >= $1")
                .bind(now - CLOCK_SKEW_SECONDS as i64)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}

/// How a session's revocation is recorded beside access token ids.
pub fn session_token_id(session: &str) -> String {
    format!("session:{session}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            aud: ISSUER.into(),
            sub: "ana".into(),
            iat: exp - 900,
            nbf: exp - 900,
            exp,
            jti: "j1".into(),
            sid: "s1".into(),
        }
    }

    #[test]
    fn a_kept_token_is_found_by_its_whole_text_until_it_expires() {
        let verified = VerifiedTokens::default();
        let now = 1_800_000_000;
        verified.keep("header.body.signature", "k-1", &claims(now));
        let skew = CLOCK_SKEW_SECONDS as i64;
        let (kid, found) = verified
            .get("header.body.signature", now + skew)
            .expect("kept and within the clock skew");
        assert_eq!((kid.as_str(), found.sub.as_str()), ("k-1", "ana"));
        assert!(verified.get("header.body.signaturf", now).is_none());
        assert!(verified.get("header.body", now).is_none());
        assert!(
            verified
                .get("header.body.signature", now + skew + 1)
                .is_none()
        );
    }
}
