//! Tokens of an external identity provider (Keycloak, Entra ID, Auth0, ...): verified with the
//! keys its JWKS document publishes, issuer and audience checked. The token names a user of
//! this installation (by `username_claim`), whose roles here decide what they may do.
//!
//! The JWKS is fetched on first use and again when a token names a key id it lacks (the
//! provider rotated its keys), at most once per `refetch_interval`.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Header, Validation};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tributary_kernel::auth::AuthError;

/// How long a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ExternalProvider {
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    /// The claim naming the user: `sub` by default; `preferred_username` or `email` only
    /// where the provider does not let users choose them.
    pub username_claim: String,
    /// Least time between two fetches of the JWKS.
    pub refetch_interval: Duration,
}

impl ExternalProvider {
    pub fn new(jwks_url: &str, issuer: &str, audience: &str) -> ExternalProvider {
        ExternalProvider {
            jwks_url: jwks_url.to_owned(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            // `sub` is fixed per user at the provider; `preferred_username` and `email` may be
            // chosen by users at some providers (then anyone could name themselves admin).
            username_claim: "sub".into(),
            refetch_interval: Duration::from_secs(30),
        }
    }
}

pub struct External {
    provider: ExternalProvider,
    client: reqwest::Client,
    keys: Mutex<Option<(Instant, JwkSet)>>,
}

impl External {
    pub fn new(provider: ExternalProvider) -> External {
        External {
            provider,
            client: reqwest::Client::new(),
            keys: Mutex::new(None),
        }
    }

    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        let response = self
            .client
            .get(&self.provider.jwks_url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| {
                AuthError::Unavailable(format!(
                    "the identity provider's JWKS at {} cannot be read: {e}",
                    self.provider.jwks_url
                ))
            })?;
        response.json::<JwkSet>().await.map_err(|e| {
            AuthError::Unavailable(format!(
                "the identity provider's JWKS at {} is not a JWK set: {e}",
                self.provider.jwks_url
            ))
        })
    }

    /// The key the token's header names, fetching the JWKS when it is not known yet.
    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, AuthError> {
        let mut keys = self.keys.lock().await;
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        if let Some(jwk) = keys.as_ref().and_then(|(_, set)| find(set)) {
            return DecodingKey::from_jwk(&jwk).map_err(|e| AuthError::Invalid(e.to_string()));
        }
        let due = keys
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= self.provider.refetch_interval);
        if due {
            *keys = Some((Instant::now(), self.fetch().await?));
        }
        let jwk = keys
            .as_ref()
            .and_then(|(_, set)| find(set))
            .ok_or_else(|| {
                AuthError::Invalid("the token's key is not in the identity provider's JWKS".into())
            })?;
        DecodingKey::from_jwk(&jwk).map_err(|e| AuthError::Invalid(e.to_string()))
    }

    /// The username the token names and when it expires.
    pub async fn verify(&self, token: &str, header: &Header) -> Result<(String, i64), AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        if matches!(
            header.alg,
            jsonwebtoken::Algorithm::HS256
                | jsonwebtoken::Algorithm::HS384
                | jsonwebtoken::Algorithm::HS512
        ) {
            return Err(AuthError::Invalid(
                "an external token must be signed with a public key algorithm".into(),
            ));
        }
        let key = self.key(header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.provider.issuer]);
        validation.set_audience(&[&self.provider.audience]);
        validation.leeway = crate::tokens::CLOCK_SKEW_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidIssuer => {
                    AuthError::Invalid("the token's issuer is not trusted".into())
                }
                ErrorKind::InvalidAudience => {
                    AuthError::Invalid("the token is not meant for this installation".into())
                }
                _ => AuthError::Invalid(error.to_string()),
            })?
            .claims;
        let username = claims
            .get(&self.provider.username_claim)
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                AuthError::Invalid(format!(
                    "the token has no claim {:?} naming the user",
                    self.provider.username_claim
                ))
            })?;
        let username = crate::domain::Username::parse(username)
            .map_err(|rule| AuthError::Invalid(format!("the token's user name {rule}")))?;
        let expires_at = claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0);
        Ok((username.to_string(), expires_at))
    }
}
