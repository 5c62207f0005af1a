//! The identity service: logins, token refresh and logout, the first administrator, and the
//! authenticator every route guard asks.
//!
//! Users and their roles are events (`identity.user`); each process keeps a copy of them and
//! of the revocations, reloaded when older than `cache_ttl` and at once after this process
//! changed them. A role revoked or a user locked in another process takes effect there within
//! `cache_ttl`.

use crate::domain::{RoleAssignment, User, UserCommand, Username};
use crate::external::External;
use crate::passwords;
use crate::tokens::{
    Claims, ISSUER, SigningKeys, TokenStore, VerifiedTokens, new_refresh_token, session_token_id,
    sha256_hex,
};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tributary_kernel::auth::{
    ANY_COMPANY, AuthError, Authenticator, Caller, Catalog, Grants, role,
};
use tributary_kernel::sealed::FieldKeys;
use tributary_kernel::store::EventStore;
use tributary_kernel::{Metadata, aggregate};

/// The context's name and the prefix of its aggregate types.
pub const CONTEXT: &str = "identity";
/// The user the first administrator is created as.
pub const ADMIN_USERNAME: &str = "admin";
/// The actor of what the installation does by itself (the first administrator).
pub const SYSTEM_USER: &str = "system";

#[derive(Debug, Clone)]
pub struct IdentityOptions {
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// The first administrator's password (`TRIBUTARY_ADMIN_PASSWORD`); generated and
    /// printed once when unset.
    pub admin_password: Option<String>,
    /// The HMAC secret access tokens are signed with (`TRIBUTARY_TOKEN_SECRET`); when unset a
    /// generated one is kept in the database, shared by every process of the installation.
    pub signing_secret: Option<String>,
    /// An external identity provider whose tokens are trusted besides ours.
    pub external: Option<crate::external::ExternalProvider>,
    /// How long a process trusts its copy of users and revocations made by other processes.
    pub cache_ttl: Duration,
}

impl Default for IdentityOptions {
    fn default() -> Self {
        IdentityOptions {
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            admin_password: None,
            signing_secret: None,
            external: None,
            cache_ttl: Duration::from_secs(1),
        }
    }
}

/// The OAuth 2.0 token response (RFC 6749 section 5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
}

/// Why a login or refresh was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the username or the password is wrong")]
    InvalidCredentials,
    #[error("user {0} is locked")]
    Locked(String),
    #[error("the refresh token is unknown, expired or revoked")]
    InvalidRefreshToken,
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Unavailable(String),
}

/// A user as this process knows them.
#[derive(Debug)]
pub struct Account {
    pub user: User,
    pub grants: Arc<Grants>,
}

struct Cached<T> {
    value: Arc<T>,
    loaded: Option<Instant>,
}

impl<T: Default> Default for Cached<T> {
    fn default() -> Self {
        Cached {
            value: Arc::new(T::default()),
            loaded: None,
        }
    }
}

impl<T> Cached<T> {
    fn fresh(&self, ttl: Duration) -> Option<Arc<T>> {
        self.loaded
            .filter(|at| at.elapsed() < ttl)
            .map(|_| self.value.clone())
    }
}

#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    store: EventStore,
    tokens: TokenStore,
    keys: SigningKeys,
    field_keys: FieldKeys,
    catalog: Catalog,
    options: IdentityOptions,
    external: Option<External>,
    users: Mutex<Cached<HashMap<String, Arc<Account>>>>,
    revoked: Mutex<Cached<HashSet<String>>>,
    verified: VerifiedTokens,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("keys", &self.inner.keys)
            .finish()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn unavailable(error: impl std::fmt::Display) -> LoginError {
    LoginError::Unavailable(error.to_string())
}

impl Identity {
    /// Loads the signing keys and creates the first administrator on an empty store; answers
    /// the generated password when it made one (to print once).
    pub async fn start(
        store: EventStore,
        catalog: Catalog,
        field_keys: FieldKeys,
        options: IdentityOptions,
    ) -> Result<(Identity, Option<String>), String> {
        let db = store.database();
        let keys = SigningKeys::load(&db, options.signing_secret.as_deref()).await?;
        let external = options.external.clone().map(External::new);
        let identity = Identity {
            inner: Arc::new(Inner {
                tokens: TokenStore { db },
                store,
                keys,
                field_keys,
                catalog,
                options,
                external,
                users: Mutex::default(),
                revoked: Mutex::default(),
                verified: VerifiedTokens::default(),
            }),
        };
        let generated = identity.bootstrap().await?;
        Ok((identity, generated))
    }

    pub fn store(&self) -> &EventStore {
        &self.inner.store
    }

    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The keys password hashes and SCRAM secrets are sealed with.
    pub fn field_keys(&self) -> &FieldKeys {
        &self.inner.field_keys
    }

    /// Creates `admin` (administrator in every company) when no user exists.
    async fn bootstrap(&self) -> Result<Option<String>, String> {
        let existing = self
            .inner
            .store
            .load_type(crate::aggregates::USER_TYPE)
            .await
            .map_err(|e| e.to_string())?;
        if !existing.is_empty() {
            return Ok(None);
        }
        let (password, generated) = match &self.inner.options.admin_password {
            Some(password) => (password.clone(), false),
            None => (passwords::generate(), true),
        };
        passwords::check_rules(&password, ADMIN_USERNAME)
            .map_err(|rule| format!("TRIBUTARY_ADMIN_PASSWORD {rule}"))?;
        let hash = self.hash_password(password.clone()).await?;
        let username = Username::parse(ADMIN_USERNAME)?;
        let loaded = aggregate::load::<User>(&self.inner.store, username.as_str())
            .await
            .map_err(|e| e.to_string())?;
        let decided = loaded
            .decide(UserCommand::Create {
                username,
                name: "Administrator".into(),
                email: None,
                password_hash: Some(hash.clone()),
                roles: vec![RoleAssignment {
                    company: ANY_COMPANY.into(),
                    role: role::ADMINISTRATOR.into(),
                }],
            })
            .map_err(|e| e.to_string())?;
        let decision = tributary_kernel::Decision {
            writes: decided.writes(),
            reads: vec![],
            outcome: (),
        };
        let metadata = Metadata {
            user: Some(SYSTEM_USER.into()),
            ..Metadata::default()
        };
        let (batch, ()) = decision.into_batch(CONTEXT, metadata, None);
        match self.inner.store.append(batch).await {
            Ok(_) => {
                self.keep_scram_secret_quietly(ADMIN_USERNAME, &password, Some(&hash))
                    .await;
                Ok(generated.then_some(password))
            }
            // Another process of the installation created it first.
            Err(tributary_kernel::StoreError::Conflict { .. }) => Ok(None),
            Err(error) => Err(error.to_string()),
        }
    }

    /// The user as stored now (not the cached copy).
    pub async fn user(&self, username: &Username) -> Result<aggregate::Loaded<User>, String> {
        aggregate::load::<User>(&self.inner.store, username.as_str())
            .await
            .map_err(|e| e.to_string())
    }

    /// Checks a username and password and opens a session.
    pub async fn login(&self, username: &str, password: &str) -> Result<TokenResponse, LoginError> {
        let user = match Username::parse(username) {
            Ok(username) => self.user(&username).await.map_err(unavailable)?.state,
            Err(_) => User::default(),
        };
        let matches = self
            .verify_password(password.to_owned(), user.password_hash.as_deref())
            .await
            .map_err(LoginError::Busy)?;
        let Some(username) = user.username.clone().filter(|_| matches) else {
            return Err(LoginError::InvalidCredentials);
        };
        if !user.is_active() {
            return Err(LoginError::Locked(username.to_string()));
        }
        self.keep_scram_secret_quietly(username.as_str(), password, user.password_hash.as_deref())
            .await;
        let session = uuid::Uuid::new_v4().to_string();
        self.issue(username.as_str(), &session).await
    }

    /// Trades a refresh token for a new pair; a refresh token used twice revokes its session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, LoginError> {
        let hash = sha256_hex(refresh_token.as_bytes());
        let tokens = &self.inner.tokens;
        let record = tokens
            .refresh_record(&hash)
            .await
            .map_err(unavailable)?
            .ok_or(LoginError::InvalidRefreshToken)?;
        let now = now();
        if record.revoked_at.is_some()
            || !tokens.use_refresh(&hash, now).await.map_err(unavailable)?
        {
            tracing::warn!(user = %record.username, session = %record.session, "a revoked refresh token was presented: the session is revoked");
            tokens
                .revoke_session(&record.session, now, now + self.access_ttl_seconds())
                .await
                .map_err(unavailable)?;
            self.forget_revocations().await;
            return Err(LoginError::InvalidRefreshToken);
        }
        if record.expires_at < now {
            return Err(LoginError::InvalidRefreshToken);
        }
        let account = self.account(&record.username).await.map_err(unavailable)?;
        if !account.as_ref().is_some_and(|a| a.user.is_active()) {
            return Err(LoginError::Locked(record.username));
        }
        let issued = self.issue(&record.username, &record.session).await?;
        // A session ended (new password, lock, logout) while this refresh ran: what was just
        // issued goes with it. Read from the database, not this process's copy.
        let revoked = tokens.revocations(now).await.map_err(unavailable)?;
        if revoked.contains(&session_token_id(&record.session)) {
            tokens
                .revoke_session(&record.session, now, now + self.access_ttl_seconds())
                .await
                .map_err(unavailable)?;
            return Err(LoginError::InvalidRefreshToken);
        }
        Ok(issued)
    }

    /// Ends the caller's session: its refresh tokens and its access tokens are revoked.
    pub async fn logout(&self, caller: &Caller) -> Result<(), String> {
        let now = now();
        let until = caller.token_expires_at.unwrap_or(now);
        if let Some(session) = &caller.session {
            self.inner
                .tokens
                .revoke_session(session, now, now + self.access_ttl_seconds())
                .await
                .map_err(|e| e.to_string())?;
        }
        if let Some(jti) = &caller.token_id {
            self.inner
                .tokens
                .revoke(jti, until)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.forget_revocations().await;
        Ok(())
    }

    /// After a new password or a lock: every session of the user ends (its refresh tokens and
    /// its access tokens are revoked), but `keep` (the session that changed its own password).
    pub async fn end_sessions(&self, username: &str, keep: Option<&str>) -> Result<(), String> {
        let now = now();
        let tokens = &self.inner.tokens;
        let sessions = tokens
            .user_sessions(username, now)
            .await
            .map_err(|e| e.to_string())?;
        for session in sessions.iter().filter(|s| Some(s.as_str()) != keep) {
            tokens
                .revoke_session(session, now, now + self.access_ttl_seconds())
                .await
                .map_err(|e| e.to_string())?;
        }
        self.forget_revocations().await;
        Ok(())
    }

    fn access_ttl_seconds(&self) -> i64 {
        i64::try_from(self.inner.options.access_token_ttl.as_secs()).unwrap_or(i64::MAX)
    }

    async fn issue(&self, username: &str, session: &str) -> Result<TokenResponse, LoginError> {
        let now = now();
        let ttl = self.access_ttl_seconds();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: ISSUER.into(),
            sub: username.to_owned(),
            iat: now,
            nbf: now,
            exp: now + ttl,
            jti: uuid::Uuid::new_v4().to_string(),
            sid: session.to_owned(),
        };
        let access_token = self.inner.keys.sign(&claims).map_err(unavailable)?;
        let (refresh_token, hash) = new_refresh_token();
        let refresh_ttl =
            i64::try_from(self.inner.options.refresh_token_ttl.as_secs()).unwrap_or(i64::MAX);
        self.inner
            .tokens
            .insert_refresh(
                &hash,
                username,
                session,
                now,
                now.saturating_add(refresh_ttl),
            )
            .await
            .map_err(unavailable)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.inner.options.access_token_ttl.as_secs(),
            refresh_token,
        })
    }

    /// Drops this process's copy of the users (after it changed one).
    pub async fn forget_users(&self) {
        self.inner.users.lock().await.loaded = None;
    }

    async fn forget_revocations(&self) {
        self.inner.revoked.lock().await.loaded = None;
    }

    /// The user with their grants, from this process's copy.
    pub async fn account(&self, username: &str) -> Result<Option<Arc<Account>>, String> {
        let mut cached = self.inner.users.lock().await;
        if let Some(users) = cached.fresh(self.inner.options.cache_ttl) {
            return Ok(users.get(username).cloned());
        }
        let all = match aggregate::load_all::<User>(&self.inner.store).await {
            Ok(all) => all,
            // The store is down: nobody can change a user meanwhile, so the last copy holds.
            Err(error) if cached.loaded.is_some() => {
                tracing::warn!(%error, "users cannot be reloaded: the last copy is used");
                cached.loaded = Some(Instant::now());
                return Ok(cached.value.get(username).cloned());
            }
            Err(error) => return Err(error.to_string()),
        };
        let users: HashMap<String, Arc<Account>> = all
            .into_iter()
            .filter_map(|loaded| {
                let user = loaded.state;
                let name = user.username.as_ref()?.to_string();
                let grants = Arc::new(self.inner.catalog.grants(user.assignments()));
                Some((name, Arc::new(Account { user, grants })))
            })
            .collect();
        let found = users.get(username).cloned();
        *cached = Cached {
            value: Arc::new(users),
            loaded: Some(Instant::now()),
        };
        Ok(found)
    }

    async fn revocations(&self) -> Result<Arc<HashSet<String>>, String> {
        let mut cached = self.inner.revoked.lock().await;
        if let Some(revoked) = cached.fresh(self.inner.options.cache_ttl) {
            return Ok(revoked);
        }
        let revoked: HashSet<String> = match self.inner.tokens.revocations(now()).await {
            Ok(revoked) => revoked.into_iter().collect(),
            // The store is down: nobody can log out meanwhile, so the last copy holds.
            Err(error) if cached.loaded.is_some() => {
                tracing::warn!(%error, "revocations cannot be reloaded: the last copy is used");
                cached.loaded = Some(Instant::now());
                return Ok(cached.value.clone());
            }
            Err(error) => return Err(error.to_string()),
        };
        let revoked = Arc::new(revoked);
        *cached = Cached {
            value: revoked.clone(),
            loaded: Some(Instant::now()),
        };
        Ok(revoked)
    }

    /// The caller a verified token's subject is, when they are an active user.
    pub(crate) async fn caller(
        &self,
        username: &str,
        token_id: Option<String>,
        session: Option<String>,
        expires_at: Option<i64>,
    ) -> Result<Caller, AuthError> {
        let account = self
            .account(username)
            .await
            .map_err(AuthError::Unavailable)?
            .filter(|a| a.user.is_active())
            .ok_or_else(|| AuthError::UserInactive(username.to_owned()))?;
        Ok(Caller {
            user: username.to_owned(),
            token_id,
            session,
            token_expires_at: expires_at,
            grants: account.grants.clone(),
        })
    }
}

#[async_trait::async_trait]
impl Authenticator for Identity {
    async fn authenticate(&self, token: &str) -> Result<Caller, AuthError> {
        if let Some((kid, claims)) = self.inner.verified.get(token, now())
            && self.inner.keys.has(&kid)
        {
            return self.token_caller(claims).await;
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        match header.kid.as_deref() {
            Some(kid) if self.inner.keys.has(kid) => {
                use jsonwebtoken::errors::ErrorKind;
                let claims =
                    self.inner
                        .keys
                        .verify(token, kid)
                        .map_err(|error| match error.kind() {
                            ErrorKind::ExpiredSignature => AuthError::Expired,
                            ErrorKind::ImmatureSignature => {
                                AuthError::Invalid("the token is not valid yet".into())
                            }
                            _ => AuthError::Invalid(error.to_string()),
                        })?;
                self.inner.verified.keep(token, kid, &claims);
                self.token_caller(claims).await
            }
            _ => match &self.inner.external {
                Some(external) => {
                    let (username, expires_at) = external.verify(token, &header).await?;
                    self.caller(&username, None, None, Some(expires_at)).await
                }
                None => Err(AuthError::Invalid(
                    "the token is not signed by a key of this installation".into(),
                )),
            },
        }
    }
}

impl Identity {
    /// The caller of one of our verified tokens, unless it or its session was revoked.
    async fn token_caller(&self, claims: Claims) -> Result<Caller, AuthError> {
        let revoked = self.revocations().await.map_err(AuthError::Unavailable)?;
        if revoked.contains(&claims.jti) || revoked.contains(&session_token_id(&claims.sid)) {
            return Err(AuthError::Revoked);
        }
        self.caller(
            &claims.sub,
            Some(claims.jti),
            Some(claims.sid),
            Some(claims.exp),
        )
        .await
    }
}

/// Argon2id hashes computed at once: each takes 19 MiB and tens of milliseconds of a core, so
/// a flood of logins (unknown users included) queues here instead of exhausting the process.
static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
});
/// Longest a login waits for its turn to hash before it is answered 503.
const HASHING_WAIT: Duration = Duration::from_secs(10);
/// Why a hash was not computed: too many at once.
pub const HASHING_BUSY: &str = "too many password checks at once; retry shortly";

async fn hashing_turn() -> Result<tokio::sync::SemaphorePermit<'static>, String> {
    match tokio::time::timeout(HASHING_WAIT, HASHING.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(HASHING_BUSY.to_owned()),
    }
}

/// Hashes off the async threads, one of [`HASHING`]'s turns.
pub async fn hash_off_thread(password: String) -> Result<String, String> {
    let _turn = hashing_turn().await?;
    tokio::task::spawn_blocking(move || passwords::hash(&password))
        .await
        .map_err(|e| e.to_string())?
}

/// Verifies off the async threads, one of [`HASHING`]'s turns.
pub async fn verify_off_thread(password: String, stored: Option<String>) -> Result<bool, String> {
    let _turn = hashing_turn().await?;
    Ok(
        tokio::task::spawn_blocking(move || passwords::verify(&password, stored.as_deref()))
            .await
            .unwrap_or(false),
    )
}
