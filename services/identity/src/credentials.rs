//! Passwords as the event store keeps them, and the SQL wire endpoint's logins.
//!
//! ```text
//!  password ─Argon2id─► PHC hash ─seal(field key)─► UserCreated / PasswordChanged events
//!           └─PBKDF2-HMAC-SHA256 (SCRAM, 4096)─► salted ─seal─► identity_scram_secrets
//!                                                  (kept with the hash it belongs to: a secret
//!                                                   of an older password is never used)
//! ```
//! The SCRAM secret can only be made while the clear password is at hand: when it is set, and
//! at each login over HTTP or the wire with a password (so users whose password was set
//! before the wire endpoint checked users get one at their next login).

use crate::domain::Username;
use crate::service::{Identity, hash_off_thread, verify_off_thread};
use crate::tokens::sha256_hex;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SecureRandom;
use tributary_kernel::auth::{
    AuthError, Authenticator, Caller, SCRAM_ITERATIONS, ScramSecret, WireLogins,
};
use tributary_kernel::on_database as on;

/// The field name password hashes are sealed under.
pub const PASSWORD_HASH_FIELD: &str = "identity.user.password_hash";
/// The field name SCRAM salted passwords are sealed under.
const SCRAM_FIELD: &str = "identity.scram.salted_password";
const SCRAM_SALT_BYTES: usize = 16;
const SCRAM_KEY_BYTES: usize = 32;

/// The SCRAM-SHA-256 salted password (RFC 5802's `Hi`, which is PBKDF2-HMAC-SHA-256) of the
/// SASLprep-normalised password (RFC 4013), as clients compute it; a password SASLprep
/// refuses is used as it is, as PostgreSQL does.
pub fn salted_password(password: &str, salt: &[u8]) -> Vec<u8> {
    let password = stringprep::saslprep(password).unwrap_or(std::borrow::Cow::Borrowed(password));
    let mut out = vec![0u8; SCRAM_KEY_BYTES];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(SCRAM_ITERATIONS).unwrap_or(std::num::NonZeroU32::MIN),
        salt,
        password.as_bytes(),
        &mut out,
    );
    out
}

impl Identity {
    /// The Argon2id hash of `password`, sealed, as events keep it.
    pub async fn hash_password(&self, password: String) -> Result<String, String> {
        let hash = hash_off_thread(password).await?;
        Ok(self.field_keys().seal(PASSWORD_HASH_FIELD, &hash))
    }

    /// Whether `password` matches a stored (sealed, or from before sealing, clear) hash; with
    /// none, a decoy is checked so that a wrong username takes as long as a wrong password.
    pub async fn verify_password(
        &self,
        password: String,
        stored: Option<&str>,
    ) -> Result<bool, String> {
        let clear = stored
            .map(|s| self.field_keys().open(PASSWORD_HASH_FIELD, s))
            .transpose()
            .map_err(|e| e.to_string())?;
        verify_off_thread(password, clear).await
    }

    /// Keeps the SCRAM secret of `password`, just set or checked, for the user whose stored
    /// hash is `stored`; nothing is written when the kept one belongs to that hash already.
    pub async fn keep_scram_secret(
        &self,
        username: &str,
        password: &str,
        stored: &str,
    ) -> Result<(), String> {
        let db = self.store().database();
        let password_ref = sha256_hex(stored.as_bytes());
        let kept: Option<(String,)> = on!(&db, false, |pool| {
            sqlx::query_as(
                "SELECT username FROM identity_scram_secrets WHERE username = $1 AND password_ref = $2",
            )
            .bind(username)
            .bind(&password_ref)
            .fetch_optional(pool)
            .await
            .map_err(|e| e.to_string())?
        });
        if kept.is_some() {
            return Ok(());
        }
        let mut salt = [0u8; SCRAM_SALT_BYTES];
        ring::rand::SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| "no randomness")?;
        let password = password.to_owned();
        let salted = tokio::task::spawn_blocking(move || salted_password(&password, &salt))
            .await
            .map_err(|e| e.to_string())?;
        let sealed = self
            .field_keys()
            .seal(SCRAM_FIELD, &STANDARD.encode(salted));
        on!(&db, true, |pool| {
            sqlx::query(
                "INSERT INTO identity_scram_secrets (username, salt, salted, password_ref, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username) DO UPDATE SET \
                 salt = excluded.salt, salted = excluded.salted, \
                 password_ref = excluded.password_ref, updated_at = excluded.updated_at",
            )
            .bind(username)
            .bind(STANDARD.encode(salt))
            .bind(sealed)
            .bind(password_ref)
            .bind(chrono::Utc::now().timestamp())
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?
            .rows_affected()
        });
        Ok(())
    }

    /// Keeps the secret after a successful login without failing the login over it.
    pub(crate) async fn keep_scram_secret_quietly(
        &self,
        username: &str,
        password: &str,
        stored: Option<&str>,
    ) {
        if let Some(stored) = stored
            && let Err(error) = self.keep_scram_secret(username, password, stored).await
        {
            tracing::warn!(%error, username, "the SQL login secret was not kept");
        }
    }
}

#[async_trait::async_trait]
impl WireLogins for Identity {
    async fn scram_secret(&self, user: &str) -> Result<Option<ScramSecret>, AuthError> {
        let Ok(username) = Username::parse(user) else {
            return Ok(None);
        };
        let Some(account) = self
            .account(username.as_str())
            .await
            .map_err(AuthError::Unavailable)?
            .filter(|a| a.user.is_active())
        else {
            return Ok(None);
        };
        let Some(stored) = &account.user.password_hash else {
            return Ok(None);
        };
        let db = self.store().database();
        let row: Option<(String, String)> = on!(&db, false, |pool| {
            sqlx::query_as(
                "SELECT salt, salted FROM identity_scram_secrets WHERE username = $1 AND password_ref = $2",
            )
            .bind(username.as_str())
            .bind(sha256_hex(stored.as_bytes()))
            .fetch_optional(pool)
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?
        });
        let Some((salt, sealed)) = row else {
            return Ok(None);
        };
        let salted = self
            .field_keys()
            .open(SCRAM_FIELD, &sealed)
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        let decode = |text: &str| {
            STANDARD
                .decode(text)
                .map_err(|e| AuthError::Unavailable(format!("a stored SCRAM secret: {e}")))
        };
        Ok(Some(ScramSecret {
            salt: decode(&salt)?,
            salted_password: decode(&salted)?,
        }))
    }

    async fn check_password(&self, user: &str, password: &str) -> Result<bool, AuthError> {
        let Ok(username) = Username::parse(user) else {
            return Ok(false);
        };
        // An access token as the password: it must be this user's.
        if password.starts_with("eyJ") && password.matches('.').count() == 2 {
            return Ok(match self.authenticate(password).await {
                Ok(caller) => caller.user == username.as_str(),
                Err(AuthError::Unavailable(cause)) => return Err(AuthError::Unavailable(cause)),
                Err(_) => false,
            });
        }
        let account = self
            .account(username.as_str())
            .await
            .map_err(AuthError::Unavailable)?;
        let stored = account.as_ref().and_then(|a| a.user.password_hash.clone());
        let matches = self
            .verify_password(password.to_owned(), stored.as_deref())
            .await
            .map_err(AuthError::Unavailable)?;
        let active = account.as_ref().is_some_and(|a| a.user.is_active());
        if matches && active {
            self.keep_scram_secret_quietly(username.as_str(), password, stored.as_deref())
                .await;
        }
        Ok(matches && active)
    }

    async fn caller_named(&self, user: &str) -> Result<Caller, AuthError> {
        let username =
            Username::parse(user).map_err(|_| AuthError::UserInactive(user.to_owned()))?;
        self.caller(username.as_str(), None, None, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil", salt
    /// W22ZaJ0SNY7soEsUEjb6gQ== and 4096 iterations give this client proof's salted password
    /// (checked through the stored key the RFC's exchange implies).
    #[test]
    fn the_salted_password_is_rfc_7677s() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password("pencil", &salt);
        let client_key = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &salted),
            b"Client Key",
        );
        let stored_key = ring::digest::digest(&ring::digest::SHA256, client_key.as_ref());
        // ServerKey-derived server signature of the RFC's exchange.
        let server_key = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &salted),
            b"Server Key",
        );
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, server_key.as_ref()),
            auth_message.as_bytes(),
        );
        assert_eq!(
            STANDARD.encode(signature.as_ref()),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        assert_eq!(stored_key.as_ref().len(), 32);
    }

    /// SASLprep maps a non-breaking space to a space (RFC 4013 table C.1.2), as libpq does
    /// before it salts.
    #[test]
    fn passwords_are_saslprepped_before_they_are_salted() {
        let salt = b"0123456789abcdef";
        assert_eq!(
            salted_password("pass\u{00A0}word", salt),
            salted_password("pass word", salt)
        );
        assert_ne!(
            salted_password("password", salt),
            salted_password("Password", salt)
        );
    }
}
