//! Identity's REST API: log in, refresh, log out, one's own password and profile; users and
//! their role assignments for administrators. Every change to a user is an event.

use crate::domain::{
    EMAIL_LENGTH_MAX, NAME_LENGTH_MAX, RoleAssignment, User, UserCommand, UserRejection,
    UserStatus, Username,
};
use crate::passwords;
use crate::service::{CONTEXT, Identity, LoginError};
use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_kernel::auth::{
    ANY_COMPANY, Access, Auth, Catalog, CompanyScope, Routes, platform, role,
};
use tributary_kernel::command::{Checks, Command};
use tributary_kernel::http::{ApiError, JsonBody};
use tributary_kernel::master::CompanyCode;
use tributary_kernel::store::EventStore;
use tributary_kernel::{Decision, aggregate};

impl FromRef<Identity> for EventStore {
    fn from_ref(identity: &Identity) -> EventStore {
        identity.store().clone()
    }
}

pub fn routes() -> Routes<Identity> {
    use Access::{Authenticated, Permission, Public};
    Routes::new()
        .post("/api/v1/auth/login", Public, login)
        .accepts::<LoginBody>()
        .post("/api/v1/auth/refresh", Public, refresh)
        .accepts::<RefreshBody>()
        .post("/api/v1/auth/logout", Authenticated, logout)
        .get("/api/v1/auth/me", Authenticated, me)
        .post("/api/v1/auth/password", Authenticated, change_own_password)
        .accepts::<ChangeOwnPasswordBody>()
        .get("/api/v1/roles", Authenticated, roles)
        .get(
            "/api/v1/users",
            Permission(&platform::USERS_READ),
            list_users,
        )
        .post(
            "/api/v1/users",
            Permission(&platform::USERS_WRITE),
            create_user,
        )
        .accepts::<CreateUserBody>()
        .get(
            "/api/v1/users/{username}",
            Permission(&platform::USERS_READ),
            get_user,
        )
        .patch(
            "/api/v1/users/{username}",
            Permission(&platform::USERS_WRITE),
            change_user,
        )
        .accepts::<ChangeUserBody>()
        .put(
            "/api/v1/users/{username}/password",
            Permission(&platform::USERS_WRITE),
            set_password,
        )
        .accepts::<SetPasswordBody>()
        .post(
            "/api/v1/users/{username}/roles",
            Permission(&platform::USERS_WRITE),
            grant_role,
        )
        .accepts::<RoleBody>()
        .delete(
            "/api/v1/users/{username}/roles/{company}/{role}",
            Permission(&platform::USERS_WRITE),
            revoke_role,
        )
}

impl From<LoginError> for ApiError {
    fn from(error: LoginError) -> Self {
        let problem = match &error {
            LoginError::InvalidCredentials => "invalid_credentials",
            LoginError::Locked(_) => "user_locked",
            LoginError::InvalidRefreshToken => "invalid_refresh_token",
            LoginError::Unavailable(cause) => return ApiError::internal(cause),
            LoginError::Busy(cause) => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "logins_busy",
                    "Too many logins",
                    cause.clone(),
                );
            }
        };
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            problem,
            "Unauthorized",
            error.to_string(),
        )
    }
}

impl From<UserRejection> for ApiError {
    fn from(rejection: UserRejection) -> Self {
        match rejection {
            UserRejection::Missing => ApiError::not_found("the user does not exist"),
            other => ApiError::field(other.field(), other.rule(), other.to_string()),
        }
    }
}

/// A token response must not be cached (RFC 6749 section 5.1).
fn token_response(tokens: &crate::service::TokenResponse) -> Response {
    let mut response = Json(tokens).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(
    State(identity): State<Identity>,
    JsonBody { value: body, .. }: JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let tokens = identity.login(&body.username, &body.password).await?;
    Ok(token_response(&tokens))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(
    State(identity): State<Identity>,
    JsonBody { value: body, .. }: JsonBody<RefreshBody>,
) -> Result<Response, ApiError> {
    let tokens = identity.refresh(&body.refresh_token).await?;
    Ok(token_response(&tokens))
}

async fn logout(State(identity): State<Identity>, auth: Auth) -> Result<StatusCode, ApiError> {
    identity
        .logout(&auth.caller)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

fn user_json(user: &User, scope: &CompanyScope) -> Value {
    json!({
        "username": user.username,
        "name": user.name,
        "email": user.email,
        "status": user.status.as_str(),
        "has_password": user.password_hash.is_some(),
        "roles": user
            .roles
            .iter()
            .filter(|r| r.company == ANY_COMPANY || scope.includes(&r.company))
            .map(|r| json!({ "company": r.company, "role": r.role }))
            .collect::<Vec<_>>(),
    })
}

async fn me(State(identity): State<Identity>, auth: Auth) -> Result<Json<Value>, ApiError> {
    let username = Username::parse(&auth.caller.user).map_err(|e| ApiError::internal(&e))?;
    let user = identity
        .user(&username)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .state;
    let mut body = user_json(&user, &CompanyScope::All);
    body["permissions"] = json!(
        auth.caller
            .grants
            .0
            .iter()
            .map(|(company, permissions)| (company.clone(), json!(permissions)))
            .collect::<serde_json::Map<_, _>>()
    );
    Ok(Json(body))
}

async fn roles(State(identity): State<Identity>) -> Json<Value> {
    let catalog: &Catalog = identity.catalog();
    Json(json!({
        "roles": role::BUILT_IN.iter().map(|name| json!({
            "name": name,
            "permissions": catalog.role_permissions(name),
        })).collect::<Vec<_>>(),
        "permissions": catalog.permissions().iter().map(|p| json!({
            "name": p.name,
            "description": p.description,
        })).collect::<Vec<_>>(),
    }))
}

async fn list_users(State(identity): State<Identity>, auth: Auth) -> Result<Json<Value>, ApiError> {
    let users = aggregate::load_all::<User>(identity.store())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let scope = auth.scope();
    Ok(Json(Value::Array(
        users
            .iter()
            .map(|loaded| user_json(&loaded.state, &scope))
            .collect(),
    )))
}

async fn load_existing(
    identity: &Identity,
    username: &str,
) -> Result<aggregate::Loaded<User>, ApiError> {
    let username = Username::parse(username)
        .map_err(|_| ApiError::not_found(format!("user {username} does not exist")))?;
    let loaded = identity
        .user(&username)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if !loaded.state.exists() {
        return Err(ApiError::not_found(format!(
            "user {username} does not exist"
        )));
    }
    Ok(loaded)
}

async fn get_user(
    State(identity): State<Identity>,
    auth: Auth,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let loaded = load_existing(&identity, &username).await?;
    Ok(Json(user_json(&loaded.state, &auth.scope())))
}

fn email(checks: &mut Checks, email: Option<String>) -> Option<Option<String>> {
    match email.map(|e| e.trim().to_owned()) {
        None => Some(None),
        Some(e) if e.is_empty() => Some(None),
        Some(e) if e.chars().count() > EMAIL_LENGTH_MAX => {
            checks.fail(
                "email",
                "max_length",
                format!("must be at most {EMAIL_LENGTH_MAX} characters"),
            );
            None
        }
        Some(e)
            if !e
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.')) =>
        {
            checks.fail(
                "email",
                "email",
                "must be an e-mail address such as ana@example.com",
            );
            None
        }
        Some(e) => Some(Some(e)),
    }
}

fn assignment(
    checks: &mut Checks,
    field: &str,
    company: &str,
    role_name: &str,
) -> Option<RoleAssignment> {
    let company_ok = company == ANY_COMPANY
        || checks
            .check(
                &format!("{field}company"),
                "company_code",
                CompanyCode::parse(company),
            )
            .is_some();
    if !Catalog::is_role(role_name) {
        checks.fail(
            format!("{field}role"),
            "role_unknown",
            format!(
                "{role_name:?} is not a role; roles are {}",
                role::BUILT_IN.join(", ")
            ),
        );
        return None;
    }
    company_ok.then(|| RoleAssignment {
        company: company.to_owned(),
        role: role_name.to_owned(),
    })
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    company: String,
    role: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateUserBody {
    username: String,
    name: String,
    email: Option<String>,
    password: Option<String>,
    #[serde(default)]
    roles: Vec<RoleBody>,
}

/// Appends a user decision and answers the user after it.
async fn commit_user(
    identity: &Identity,
    request: tributary_kernel::command::CommandRequest,
    company: &str,
    loaded: &aggregate::Loaded<User>,
    command: UserCommand,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let decided = loaded.decide(command)?;
    let decision = Decision {
        outcome: decided.state.clone(),
        writes: decided.writes(),
        reads: vec![],
    };
    let response = request
        .commit(
            identity.store(),
            CONTEXT,
            company,
            decision,
            status,
            |user| user_json(user, &CompanyScope::All),
        )
        .await?;
    identity.forget_users().await;
    Ok(response)
}

async fn create_user(
    State(identity): State<Identity>,
    Command { body, request }: Command<CreateUserBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let username = checks.check("username", "username", Username::parse(&body.username));
    let name = checks.text("name", Some(body.name), NAME_LENGTH_MAX, true);
    let email = email(&mut checks, body.email);
    if let (Some(password), Some(username)) = (&body.password, &username) {
        checks.check(
            "password",
            "password",
            passwords::check_rules(password, username.as_str()),
        );
    }
    let roles: Vec<RoleAssignment> = body
        .roles
        .iter()
        .enumerate()
        .filter_map(|(i, r)| assignment(&mut checks, &format!("roles[{i}]."), &r.company, &r.role))
        .collect();
    checks.finish()?;
    let (Some(username), Some(name), Some(email)) = (username, name, email) else {
        return Err(ApiError::field("", "required", "missing fields"));
    };
    let loaded = identity
        .user(&username)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if loaded.state.exists() {
        return Err(UserRejection::Exists(username).into());
    }
    let password_hash = match &body.password {
        Some(password) => Some(
            identity
                .hash_password(password.clone())
                .await
                .map_err(|e| ApiError::internal(&e))?,
        ),
        None => None,
    };
    let secret = body.password.zip(password_hash.clone());
    let login = username.to_string();
    let command = UserCommand::Create {
        username,
        name,
        email,
        password_hash,
        roles,
    };
    let response = commit_user(
        &identity,
        request,
        ANY_COMPANY,
        &loaded,
        command,
        StatusCode::CREATED,
    )
    .await?;
    if let Some((password, hash)) = secret {
        identity
            .keep_scram_secret_quietly(&login, &password, Some(&hash))
            .await;
    }
    Ok(response)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ChangeUserBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<Option<String>>")]
    email: Option<Option<String>>,
    status: Option<UserStatus>,
}

/// A field that may be given as null (clear it) or left out (keep it).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

async fn change_user(
    State(identity): State<Identity>,
    Path(username): Path<String>,
    Command { body, request }: Command<ChangeUserBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let name = match body.name {
        Some(name) => checks
            .text("name", Some(name), NAME_LENGTH_MAX, true)
            .map(Some),
        None => Some(None),
    };
    let email = match body.email {
        Some(given) => email(&mut checks, given).map(Some),
        None => Some(None),
    };
    checks.finish()?;
    let (Some(name), Some(email)) = (name, email) else {
        return Err(ApiError::field("", "required", "missing fields"));
    };
    if body.status == Some(UserStatus::Locked)
        && request.auth.caller.user == username.to_lowercase()
    {
        return Err(ApiError::field(
            "status",
            "lock_self",
            "you cannot lock yourself out",
        ));
    }
    let loaded = load_existing(&identity, &username).await?;
    let locking = body.status == Some(UserStatus::Locked);
    let command = UserCommand::Change {
        name,
        email,
        status: body.status,
    };
    let response = commit_user(
        &identity,
        request,
        ANY_COMPANY,
        &loaded,
        command,
        StatusCode::OK,
    )
    .await?;
    if locking {
        identity
            .end_sessions(&username.to_lowercase(), None)
            .await
            .map_err(|e| ApiError::internal(&e))?;
    }
    Ok(response)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SetPasswordBody {
    password: String,
}

async fn set_password(
    State(identity): State<Identity>,
    Path(username): Path<String>,
    Command { body, request }: Command<SetPasswordBody>,
) -> Result<Response, ApiError> {
    let loaded = load_existing(&identity, &username).await?;
    passwords::check_rules(&body.password, &loaded.id)
        .map_err(|rule| ApiError::field("password", "password", rule))?;
    let password_hash = identity
        .hash_password(body.password.clone())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let id = loaded.id.clone();
    let response = commit_user(
        &identity,
        request,
        ANY_COMPANY,
        &loaded,
        UserCommand::SetPassword {
            password_hash: password_hash.clone(),
        },
        StatusCode::OK,
    )
    .await?;
    identity
        .keep_scram_secret_quietly(&id, &body.password, Some(&password_hash))
        .await;
    identity
        .end_sessions(&id, None)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(response)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ChangeOwnPasswordBody {
    current_password: String,
    new_password: String,
}

async fn change_own_password(
    State(identity): State<Identity>,
    Command { body, request }: Command<ChangeOwnPasswordBody>,
) -> Result<Response, ApiError> {
    let loaded = load_existing(&identity, &request.auth.caller.user).await?;
    let matches = identity
        .verify_password(body.current_password, loaded.state.password_hash.as_deref())
        .await
        .map_err(|busy| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "logins_busy",
                "Too many logins",
                busy,
            )
        })?;
    if !matches {
        return Err(ApiError::field(
            "current_password",
            "password_wrong",
            "the current password is wrong",
        ));
    }
    passwords::check_rules(&body.new_password, &loaded.id)
        .map_err(|rule| ApiError::field("new_password", "password", rule))?;
    let password_hash = identity
        .hash_password(body.new_password.clone())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let decided = loaded.decide(UserCommand::SetPassword {
        password_hash: password_hash.clone(),
    })?;
    let decision = Decision {
        outcome: decided.state.clone(),
        writes: decided.writes(),
        reads: vec![],
    };
    // The session that changed its password goes on; every other one ends.
    let current = request.auth.caller.session.clone();
    let response = request
        .commit_without_company(
            identity.store(),
            CONTEXT,
            decision,
            StatusCode::OK,
            |user| user_json(user, &CompanyScope::All),
        )
        .await?;
    identity
        .keep_scram_secret_quietly(&loaded.id, &body.new_password, Some(&password_hash))
        .await;
    identity.forget_users().await;
    identity
        .end_sessions(&loaded.id, current.as_deref())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(response)
}

async fn grant_role(
    State(identity): State<Identity>,
    Path(username): Path<String>,
    Command { body, request }: Command<RoleBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let granted = assignment(&mut checks, "", &body.company, &body.role);
    checks.finish()?;
    let granted = granted.ok_or_else(|| ApiError::field("role", "required", "missing"))?;
    let loaded = load_existing(&identity, &username).await?;
    let company = granted.company.clone();
    commit_user(
        &identity,
        request,
        &company,
        &loaded,
        UserCommand::Grant(granted),
        StatusCode::OK,
    )
    .await
}

async fn revoke_role(
    State(identity): State<Identity>,
    Path((username, company, role_name)): Path<(String, String, String)>,
    Command { request, .. }: Command<()>,
) -> Result<Response, ApiError> {
    request.auth.company(&company)?;
    let loaded = load_existing(&identity, &username).await?;
    let revoked = RoleAssignment {
        company: company.clone(),
        role: role_name,
    };
    if revoked.company == ANY_COMPANY
        && revoked.role == role::ADMINISTRATOR
        && loaded.id == request.auth.caller.user
    {
        return Err(ApiError::field(
            "role",
            "revoke_own_administrator",
            "you cannot revoke your own administrator role in every company",
        ));
    }
    commit_user(
        &identity,
        request,
        &company,
        &loaded,
        UserCommand::Revoke(revoked),
        StatusCode::OK,
    )
    .await
}
