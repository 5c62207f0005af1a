//! Identity and access over HTTP: logins with OAuth 2.0 token responses, refresh and logout,
//! passwords, locked users, tokens tampered with, expired or from the future, roles per
//! company, every declared route's guard, and an external identity provider's JWKS.

use crate::helpers::{Backend, TEST_ADMIN_PASSWORD, TestApp};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tributary_kernel::auth::Access;

/// The token signing secret of the tests that forge tokens.
pub(crate) const SECRET: &str = "a token signing secret of the identity tests, 32+ bytes";

pub(crate) async fn send(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

pub(crate) async fn login(app: &TestApp, username: &str, password: &str) -> (u16, Value) {
    let (status, _, body) = send(
        reqwest::Method::POST,
        format!("{}/api/v1/auth/login", app.base),
        None,
        Some(&json!({"username": username, "password": password})),
    )
    .await;
    (status, body)
}

/// Creates a user with roles (as admin) and answers their access token.
pub(crate) async fn user_with_roles(
    app: &TestApp,
    username: &str,
    roles: &[(&str, &str)],
) -> String {
    let roles: Vec<Value> = roles
        .iter()
        .map(|(company, role)| json!({"company": company, "role": role}))
        .collect();
    let password = format!("{username} password 1234");
    app.ok(
        "/api/v1/users",
        json!({"username": username, "name": username, "password": password, "roles": roles}),
    )
    .await;
    let (status, tokens) = login(app, username, &password).await;
    assert_eq!(status, 200, "{tokens}");
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// A token signed with the test secret under `kid`, with the given claims.
pub(crate) fn forge(kid: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn logins_answer_token_responses_and_bad_tokens_get_401_with_a_challenge() {
    let app =
        TestApp::spawn_with(|settings| settings.identity.signing_secret = Some(SECRET.into()))
            .await;

    let (status, tokens) = login(&app, "Admin", TEST_ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(tokens["refresh_token"].as_str().unwrap().starts_with("rt_"));
    let token = tokens["access_token"].as_str().unwrap();
    let (status, _, me) = send(
        reqwest::Method::GET,
        format!("{}/api/v1/auth/me", app.base),
        Some(token),
        None,
    )
    .await;
    assert_eq!((status, me["username"].clone()), (200, json!("admin")));
    assert!(
        me["permissions"]["*"]
            .as_array()
            .unwrap()
            .contains(&json!("finance.journal_entry.post"))
    );

    for (username, password) in [
        ("admin", "wrong password 123"),
        ("nobody", TEST_ADMIN_PASSWORD),
        ("", ""),
    ] {
        let (status, body) = login(&app, username, password).await;
        assert_eq!(status, 401, "{username}: {body}");
        assert_eq!(
            body["type"],
            "https://tributary.dev/problems/invalid_credentials"
        );
    }

    let accounts = format!("{}/api/v1/accounts", app.base);
    let (status, headers, body) = send(reqwest::Method::GET, accounts.clone(), None, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"tributary\"");
    assert_eq!(body["type"], "https://tributary.dev/problems/unauthorized");

    // The signature no longer matches when one character of the payload changes.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("someone-else");
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    let tampered = parts.join(".");
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let claims = |sub: &str, nbf: i64, exp: i64| {
        json!({"iss": "tributary", "aud": "tributary", "sub": sub, "iat": nbf, "nbf": nbf,
               "exp": exp, "jti": uuid::Uuid::new_v4().to_string(), "sid": "forged"})
    };
    let refused = [
        ("garbage", "not.a.token".to_owned()),
        ("tampered", tampered),
        (
            "expired",
            forge(&kid, &claims("admin", now() - 3_600, now() - 600)),
        ),
        (
            "from the future",
            forge(&kid, &claims("admin", now() + 600, now() + 1_200)),
        ),
        (
            "unknown key",
            forge("k-unknown", &claims("admin", now(), now() + 60)),
        ),
        (
            "unknown user",
            forge(&kid, &claims("ghost", now(), now() + 60)),
        ),
    ];
    for (what, token) in refused {
        let (status, headers, body) =
            send(reqwest::Method::GET, accounts.clone(), Some(&token), None).await;
        assert_eq!(status, 401, "{what}: {body}");
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
    }
    // A clock 30 s ahead of ours is tolerated (the allowed skew is 60 s).
    let skewed = forge(&kid, &claims("admin", now() + 30, now() + 600));
    let (status, _, body) = send(reqwest::Method::GET, accounts, Some(&skewed), None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn refresh_rotates_a_replayed_refresh_token_ends_the_session_and_logout_revokes() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (_, first) = login(&app, "admin", TEST_ADMIN_PASSWORD).await;
    let refresh = |token: Value| {
        let url = format!("{}/api/v1/auth/refresh", app.base);
        async move {
            send(
                reqwest::Method::POST,
                url,
                None,
                Some(&json!({"refresh_token": token})),
            )
            .await
        }
    };
    let (status, _, second) = refresh(first["refresh_token"].clone()).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let me = format!("{}/api/v1/auth/me", app.base);
    let bearer = |tokens: &Value| tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        send(
            reqwest::Method::GET,
            me.clone(),
            Some(&bearer(&second)),
            None
        )
        .await
        .0,
        200
    );
    // The first refresh token again: a replay. The whole session ends, the new pair too.
    let (status, _, body) = refresh(first["refresh_token"].clone()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["type"],
        "https://tributary.dev/problems/invalid_refresh_token"
    );
    assert_eq!(refresh(second["refresh_token"].clone()).await.0, 401);
    assert_eq!(
        send(
            reqwest::Method::GET,
            me.clone(),
            Some(&bearer(&second)),
            None
        )
        .await
        .0,
        401
    );

    // Logout ends this session only.
    let (_, third) = login(&app, "admin", TEST_ADMIN_PASSWORD).await;
    let (_, other) = login(&app, "admin", TEST_ADMIN_PASSWORD).await;
    let logout = format!("{}/api/v1/auth/logout", app.base);
    let (status, _, _) = send(reqwest::Method::POST, logout, Some(&bearer(&third)), None).await;
    assert_eq!(status, 204);
    assert_eq!(
        send(
            reqwest::Method::GET,
            me.clone(),
            Some(&bearer(&third)),
            None
        )
        .await
        .0,
        401
    );
    assert_eq!(refresh(third["refresh_token"].clone()).await.0, 401);
    assert_eq!(
        send(reqwest::Method::GET, me, Some(&bearer(&other)), None)
            .await
            .0,
        200
    );
    assert_eq!(refresh(json!("rt_unknown")).await.0, 401);
}

#[tokio::test]
async fn passwords_change_and_locked_users_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = user_with_roles(&app, "ana", &[("MAIN", "accountant")]).await;
    let password = format!("{}/api/v1/auth/password", app.base);
    let (status, _, body) = send(
        reqwest::Method::POST,
        password.clone(),
        Some(&token),
        Some(&json!({"current_password": "not it at all", "new_password": "a brand new one"})),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["rule"].clone()),
        (422, json!("password_wrong"))
    );
    let (status, _, body) = send(
        reqwest::Method::POST,
        password.clone(),
        Some(&token),
        Some(&json!({"current_password": "ana password 1234", "new_password": "short"})),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["field"].clone()),
        (422, json!("new_password"))
    );
    // Another device of hers, logged in before the change.
    let (_, other_device) = login(&app, "ana", "ana password 1234").await;
    let (status, _, body) = send(
        reqwest::Method::POST,
        password,
        Some(&token),
        Some(&json!({"current_password": "ana password 1234", "new_password": "a brand new one"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The other device's session ends (its access and refresh tokens); this one goes on.
    let me = format!("{}/api/v1/auth/me", app.base);
    let other_access = other_device["access_token"].as_str().unwrap();
    assert_eq!(
        send(reqwest::Method::GET, me.clone(), Some(other_access), None)
            .await
            .0,
        401
    );
    let (status, _, _) = send(
        reqwest::Method::POST,
        format!("{}/api/v1/auth/refresh", app.base),
        None,
        Some(&json!({"refresh_token": other_device["refresh_token"]})),
    )
    .await;
    assert_eq!(status, 401, "the other device's refresh token was revoked");
    assert_eq!(
        send(reqwest::Method::GET, me, Some(&token), None).await.0,
        200
    );
    assert_eq!(login(&app, "ana", "ana password 1234").await.0, 401);
    let (status, tokens) = login(&app, "ana", "a brand new one").await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap().to_owned();

    // Locked: her token stops working, and so does her password.
    let locked = app
        .request(
            reqwest::Method::PATCH,
            "/api/v1/users/ana",
            Some(&json!({"status": "locked"}).to_string()),
            &[],
        )
        .await;
    assert_eq!(locked.0, 200, "{}", locked.2);
    let me = format!("{}/api/v1/auth/me", app.base);
    assert_eq!(
        send(reqwest::Method::GET, me.clone(), Some(&token), None)
            .await
            .0,
        401
    );
    let (status, body) = login(&app, "ana", "a brand new one").await;
    assert_eq!(
        (status, body["type"].clone()),
        (401, json!("https://tributary.dev/problems/user_locked"))
    );
    app.request(
        reqwest::Method::PATCH,
        "/api/v1/users/ana",
        Some(&json!({"status": "active"}).to_string()),
        &[],
    )
    .await;
    assert_eq!(login(&app, "ana", "a brand new one").await.0, 200);

    // The administrator cannot lock themself out.
    let (status, _, body) = app
        .request(
            reqwest::Method::PATCH,
            "/api/v1/users/admin",
            Some(&json!({"status": "locked"}).to_string()),
            &[],
        )
        .await;
    assert_eq!(
        (status, body["errors"][0]["rule"].clone()),
        (422, json!("lock_self"))
    );
}

#[tokio::test]
async fn roles_hold_in_their_company_only_and_refusals_store_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    app.ok(
        "/api/v1/companies",
        json!({"code": "B", "name": "Company B"}),
    )
    .await;
    let ana = user_with_roles(&app, "ana", &[("MAIN", "accountant")]).await;
    let entry = |company: &str| {
        json!({"company": company, "posting_date": "2026-03-02", "lines": [
            {"account": "1000", "debit": "10.00", "currency": "EUR"},
            {"account": "4000", "credit": "10.00", "currency": "EUR"}]})
    };
    let url = |path: &str| format!("{}{path}", app.base);
    let (status, _, posted) = send(
        reqwest::Method::POST,
        url("/api/v1/journal-entries"),
        Some(&ana),
        Some(&entry("MAIN")),
    )
    .await;
    assert_eq!(status, 201, "{posted}");
    // The stored event names her.
    let feed = app.running().store.read_feed(0, 10_000).await.unwrap();
    let stored = feed
        .events
        .iter()
        .find(|e| e.aggregate_id == posted["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(stored.metadata.user.as_deref(), Some("ana"));

    let before = app.event_count().await;
    let refusals = [
        (
            reqwest::Method::POST,
            "/api/v1/journal-entries",
            Some(entry("B")),
            "finance.journal_entry.post in company B",
        ),
        (
            reqwest::Method::POST,
            "/api/v1/periods/2026-03/close?company=MAIN",
            None,
            "finance.period.close",
        ),
        (
            reqwest::Method::GET,
            "/api/v1/trial-balance?company=B&period=2026-03",
            None,
            "finance.balance.read in company B",
        ),
        (
            reqwest::Method::POST,
            "/api/v1/users",
            Some(json!({"username": "eve", "name": "Eve"})),
            "admin.users.write",
        ),
        (
            reqwest::Method::POST,
            "/api/v1/goods-receipts",
            Some(json!({"company": "MAIN"})),
            "materials.goods_receipt.post",
        ),
    ];
    for (method, path, body, needed) in refusals {
        let (status, _, problem) = send(method, url(path), Some(&ana), body.as_ref()).await;
        assert_eq!(status, 403, "{path}: {problem}");
        assert_eq!(problem["type"], "https://tributary.dev/problems/forbidden");
        assert!(
            problem["detail"].as_str().unwrap().contains(needed),
            "{path}: {problem}"
        );
    }
    assert_eq!(app.event_count().await, before, "a refusal stores nothing");

    // Her company list shows her company only; an analyst reads SQL but posts nothing.
    let (_, _, companies) = send(
        reqwest::Method::GET,
        url("/api/v1/companies"),
        Some(&ana),
        None,
    )
    .await;
    assert_eq!(companies, json!([{"code": "MAIN", "name": "Main company"}]));
    let analyst = user_with_roles(&app, "max", &[("MAIN", "analyst")]).await;
    let (status, _, _) = send(
        reqwest::Method::POST,
        url("/api/v1/sql"),
        Some(&analyst),
        Some(&json!({"sql": "SELECT 1"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = send(
        reqwest::Method::POST,
        url("/api/v1/journal-entries"),
        Some(&analyst),
        Some(&entry("MAIN")),
    )
    .await;
    assert_eq!(status, 403);
    // Without a `company` the request is for the default company MAIN: a clerk of B learns
    // nothing of MAIN's stock (403 before any lookup, not "N on hand").
    let clerk_of_b = user_with_roles(&app, "bea", &[("B", "warehouse_clerk")]).await;
    let (status, _, problem) = send(
        reqwest::Method::POST,
        url("/api/v1/goods-issues"),
        Some(&clerk_of_b),
        Some(
            &json!({"material": "BOLT-M8", "plant": "P100", "storage_location": "RAW",
                      "quantity": "1000000", "posting_date": "2026-03-02", "cost_center": "CC1"}),
        ),
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("in company MAIN"),
        "{problem}"
    );

    // An Idempotency-Key is the caller's own: the same key and body from another user runs
    // that user's command, it does not replay the first user's answer.
    let body = entry("MAIN");
    let key = [("idempotency-key", "shared-key-1")];
    let (status, _, first) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/journal-entries",
            Some(&body.to_string()),
            &key,
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let mut request = reqwest::Client::new()
        .post(url("/api/v1/journal-entries"))
        .bearer_auth(&ana)
        .header("idempotency-key", "shared-key-1")
        .json(&body);
    request = request.header("x-request-id", "ana-1");
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 201);
    assert!(response.headers().get("idempotent-replayed").is_none());
    let second: Value = response.json().await.unwrap();
    assert_ne!(
        second["id"], first["id"],
        "her own entry, not the admin's answer"
    );

    // A grant in company B lets her post there.
    app.ok(
        "/api/v1/users/ana/roles",
        json!({"company": "B", "role": "accountant"}),
    )
    .await;
    let (status, _, body) = send(
        reqwest::Method::POST,
        url("/api/v1/journal-entries"),
        Some(&ana),
        Some(
            &json!({"company": "B", "posting_date": "2026-03-02", "lines": [
            {"account": "1000", "debit": "10.00", "currency": "EUR"},
            {"account": "4000", "credit": "10.00", "currency": "EUR"}]}),
        ),
    )
    .await;
    // Company B has no accounts: the request gets as far as the books now.
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn every_declared_route_refuses_a_caller_without_a_token_or_without_its_permission() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let nobody = user_with_roles(&app, "nobody", &[]).await;
    let routes = app.running().routes.clone();
    assert!(routes.len() > 40, "{} routes", routes.len());
    let post_entry = routes
        .iter()
        .find(|r| r.path == "/api/v1/journal-entries" && r.method == reqwest::Method::POST)
        .unwrap();
    assert!(
        matches!(post_entry.access, Access::Permission(p) if p.name == "finance.journal_entry.post")
    );
    let before = app.event_count().await;
    let mut guarded = 0;
    for route in &routes {
        let path = route
            .path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "X1"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let url = format!("{}{path}", app.base);
        let body = json!({});
        match route.access {
            Access::Public => continue,
            Access::Authenticated => {
                let (status, headers, _) = send(route.method.clone(), url, None, Some(&body)).await;
                assert_eq!(status, 401, "{} {}", route.method, route.path);
                assert!(headers.contains_key("www-authenticate"));
            }
            Access::Permission(permission) => {
                let (status, headers, _) =
                    send(route.method.clone(), url.clone(), None, Some(&body)).await;
                assert_eq!(status, 401, "{} {}", route.method, route.path);
                assert!(headers.contains_key("www-authenticate"));
                let (status, _, problem) =
                    send(route.method.clone(), url, Some(&nobody), Some(&body)).await;
                assert_eq!(status, 403, "{} {}: {problem}", route.method, route.path);
                assert!(
                    problem["detail"]
                        .as_str()
                        .unwrap()
                        .contains(permission.name),
                    "{} {}: {problem}",
                    route.method,
                    route.path
                );
            }
        }
        guarded += 1;
    }
    assert!(guarded > 40);
    assert_eq!(app.event_count().await, before, "a refusal stores nothing");
}

/// A JWKS document served by the test, as an identity provider serves one.
async fn serve_jwks(jwks: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/jwks.json")
}

#[tokio::test]
async fn an_external_identity_providers_tokens_are_trusted_by_its_jwks_issuer_and_audience() {
    use ring::signature::KeyPair;
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "idp-1", "alg": "EdDSA",
        "use": "sig", "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())}]});
    let url = serve_jwks(jwks).await;
    let mut provider = tributary_identity::ExternalProvider::new(
        &url,
        "https://idp.example.com/realms/erp",
        "tributary-api",
    );
    // This provider's usernames are set by its administrators (the default claim is `sub`).
    provider.username_claim = "preferred_username".into();
    let app = TestApp::spawn_with(|settings| settings.identity.external = Some(provider)).await;
    // The user exists here (no password: the provider authenticates them), with their roles.
    app.ok(
        "/api/v1/users",
        json!({"username": "ana", "name": "Ana", "roles": [{"company": "MAIN", "role": "analyst"}]}),
    )
    .await;
    let token = |username: &str, issuer: &str, audience: &str| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("idp-1".into());
        let claims = json!({"iss": issuer, "aud": audience, "exp": now() + 300,
            "preferred_username": username, "sub": "f3a9c2"});
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref()),
        )
        .unwrap()
    };
    let sql = format!("{}/api/v1/sql", app.base);
    let query = json!({"sql": "SELECT 1 AS one"});
    let issuer = "https://idp.example.com/realms/erp";
    let (status, _, body) = send(
        reqwest::Method::POST,
        sql.clone(),
        Some(&token("ana", issuer, "tributary-api")),
        Some(&query),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for (what, forged) in [
        ("another audience", token("ana", issuer, "another-app")),
        (
            "another issuer",
            token("ana", "https://evil.example.com", "tributary-api"),
        ),
        ("a user unknown here", token("zoe", issuer, "tributary-api")),
    ] {
        let (status, _, body) = send(
            reqwest::Method::POST,
            sql.clone(),
            Some(&forged),
            Some(&query),
        )
        .await;
        assert_eq!(status, 401, "{what}: {body}");
    }
    // Her roles here still decide: an analyst posts nothing.
    let (status, _, _) = send(
        reqwest::Method::POST,
        format!("{}/api/v1/journal-entries", app.base),
        Some(&token("ana", issuer, "tributary-api")),
        Some(&json!({"posting_date": "2026-01-01", "lines": []})),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_reactors_posting_carries_the_user_whose_command_caused_it() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    crate::procure_to_pay::one_open_purchase_order(&app).await;
    let clerk = user_with_roles(&app, "walt", &[("MAIN", "warehouse_clerk")]).await;
    let (status, _, body) = send(
        reqwest::Method::POST,
        format!("{}/api/v1/goods-receipts", app.base),
        Some(&clerk),
        Some(
            &json!({"purchase_order": "4500000077", "line": 10, "quantity": "2",
                      "posting_date": "2026-03-02"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    app.settle_reactors().await;
    let feed = app
        .running()
        .store
        .read_feed(0, 10_000)
        .await
        .unwrap()
        .events;
    // The receipt: the newest stock event (materials' creation opened the stock streams).
    let receipt = feed
        .iter()
        .rev()
        .find(|e| e.aggregate_type == "materials.stock")
        .unwrap();
    assert_eq!(receipt.metadata.user.as_deref(), Some("walt"));
    let posting = feed
        .iter()
        .find(|e| e.aggregate_type == "finance.journal_entry")
        .unwrap();
    assert_eq!(
        posting.metadata.user.as_deref(),
        Some("walt"),
        "{:?}",
        posting.metadata
    );
    assert_eq!(
        posting.metadata.reactor.as_deref(),
        Some("finance.materials-postings")
    );
    assert_eq!(
        posting.metadata.causation_id.as_deref(),
        Some(receipt.id.to_string().as_str())
    );

    // The lake's audit trail answers who changed the posting, when, from which request.
    app.settle().await;
    let rows = app
        .sql(&format!(
            "SELECT username, reactor, request_id, event_type, company, causation_id \
             FROM audit_trail WHERE document = '{}' ORDER BY event_position",
            posting.aggregate_id
        ))
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], "walt");
    assert_eq!(rows[0][1], "finance.materials-postings");
    assert_eq!(rows[0][2].as_str(), receipt.metadata.request_id.as_deref());
    assert_eq!(rows[0][3], "JournalEntryPosted");
    assert_eq!(rows[0][4], "MAIN");
    assert_eq!(rows[0][5].as_str(), Some(receipt.id.to_string().as_str()));
    // Expiring request keys keeps the reactions' own: the receipt's posting stays done.
    let store = &app.running().store;
    store
        .expire_idempotency_keys(chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    assert!(
        store
            .idempotency(&format!(
                "reactor/finance.materials-postings/{}",
                receipt.id
            ))
            .await
            .unwrap()
            .is_some(),
        "the reaction's key was swept"
    );
    // Every stored event has its row, users and roles (no company) included.
    let audited = app.sql("SELECT count(*) AS n FROM audit_trail").await[0][0].clone();
    assert_eq!(audited, json!(feed.len()), "one audit row per event");
    let by_user = app
        .sql("SELECT count(*) AS n FROM audit_trail WHERE context = 'identity' AND username = 'admin'")
        .await;
    assert!(by_user[0][0].as_i64().unwrap() >= 1, "{by_user:?}");
}

#[tokio::test]
async fn sql_shows_the_rows_of_the_callers_companies_only_and_raw_events_need_their_permission() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    app.post_entry(
        "2026-03-02",
        &[("1000", "debit", "10.00"), ("4000", "credit", "10.00")],
    )
    .await;
    app.second_company().await;
    let analyst = user_with_roles(&app, "max", &[("MAIN", "analyst")]).await;
    let auditor = user_with_roles(&app, "aude", &[("*", "auditor")]).await;
    let sql = |token: String, sql: &str| {
        let url = format!("{}/api/v1/sql", app.base);
        let body = json!({ "sql": sql });
        async move { send(reqwest::Method::POST, url, Some(&token), Some(&body)).await }
    };
    let companies = "SELECT DISTINCT company FROM gl_journal_lines ORDER BY company";
    let (status, _, seen) = sql(analyst.clone(), companies).await;
    assert_eq!(
        (status, seen["rows"].clone()),
        (200, json!([["MAIN"]])),
        "{seen}"
    );
    // Asking for B's rows by name finds none; nor does a view or a join over the tables.
    for statement in [
        "SELECT count(*) FROM gl_journal_lines WHERE company = 'B'",
        "SELECT count(*) FROM gl_account_balances WHERE company = 'B'",
        "SELECT count(*) FROM gl_journal_lines l JOIN gl_accounts a \
         ON a.company = 'B' AND a.account = l.account",
    ] {
        let (status, _, counted) = sql(analyst.clone(), statement).await;
        assert_eq!(
            (status, counted["rows"].clone()),
            (200, json!([[0]])),
            "{statement}: {counted}"
        );
    }
    // No predicate of the caller is evaluated on another company's rows: one that fails on
    // B's 77.00 (and only there) would otherwise tell that such a row exists.
    for statement in [
        "SELECT count(*) FROM gl_journal_lines \
         WHERE 1 / (CASE WHEN debit = 77 THEN 0 ELSE 1 END) = 1",
        "SELECT count(*) FROM gl_journal_lines \
         WHERE company <> 'B' OR 1 / (CASE WHEN debit = 77 THEN 0 ELSE 1 END) = 1",
        "SELECT count(*) FROM gl_account_balances \
         WHERE 1 / (CASE WHEN company = 'B' THEN 0 ELSE 1 END) = 1",
    ] {
        let (status, _, counted) = sql(analyst.clone(), statement).await;
        assert_eq!(status, 200, "{statement}: {counted}");
        assert!(counted["rows"][0][0].as_i64().unwrap() >= 1, "{counted}");
    }
    // EXPLAIN lists files and row counts of every company.
    let (status, _, explained) = sql(
        analyst.clone(),
        "EXPLAIN SELECT count(*) FROM gl_journal_lines WHERE debit = 77",
    )
    .await;
    assert_eq!(status, 403, "{explained}");
    let (status, _, refused) = sql(analyst.clone(), "SELECT count(*) FROM bronze_events").await;
    assert_eq!(status, 403, "{refused}");
    let (status, _, runs) = sql(analyst.clone(), "SELECT count(*) FROM report_runs").await;
    assert_eq!(status, 403, "every company's report runs: {runs}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("sql.raw_events.read")
    );
    // The same predicate does fail where B's row is seen.
    let (status, _, failed) = sql(
        auditor.clone(),
        "SELECT count(*) FROM gl_journal_lines WHERE 1 / (CASE WHEN debit = 77 THEN 0 ELSE 1 END) = 1",
    )
    .await;
    assert_eq!(status, 400, "{failed}");
    // Every company for the auditor, raw events included.
    let (_, _, seen) = sql(auditor.clone(), companies).await;
    assert_eq!(seen["rows"], json!([["B"], ["MAIN"]]));
    let (status, _, _) = sql(auditor, "SELECT count(*) FROM pipeline_dead_letters").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_runs_read_their_requesters_companies_and_are_shown_to_those_who_may_read_them() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    app.post_entry(&today, &[("1200", "debit", "10"), ("4000", "credit", "10")])
        .await;
    app.settle().await;
    let max = user_with_roles(&app, "max", &[("MAIN", "analyst")]).await;
    let bea = user_with_roles(&app, "bea", &[("B", "analyst")]).await;
    let manager = user_with_roles(&app, "fred", &[("MAIN", "finance_manager")]).await;
    let period = chrono::Utc::now().format("%Y-%m").to_string();
    let run = |token: String| {
        let app = &app;
        let period = period.clone();
        async move {
            let (status, _, queued) = send(
                reqwest::Method::POST,
                format!("{}/api/v1/reports/trial-balance/runs", app.base),
                Some(&token),
                Some(&json!({"parameters": {"period": period}, "formats": ["csv"]})),
            )
            .await;
            assert_eq!(status, 202, "{queued}");
            let id = queued["id"].as_str().unwrap().to_owned();
            for _ in 0..300 {
                let (status, _, run) = send(
                    reqwest::Method::GET,
                    format!("{}/api/v1/report-runs/{id}", app.base),
                    Some(&token),
                    None,
                )
                .await;
                assert_eq!(status, 200, "the requester sees the run: {run}");
                if run["status"] == "succeeded" || run["status"] == "failed" {
                    return run;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("run {id} did not finish");
        }
    };
    // The same report over MAIN's ledger: max reads MAIN's rows, bea (of company B) none.
    let of_max = run(max.clone()).await;
    assert_eq!(of_max["status"], "succeeded", "{of_max}");
    assert!(of_max["row_count"].as_i64().unwrap() > 0, "{of_max}");
    assert_eq!(of_max["requested_by"], "max");
    let of_bea = run(bea.clone()).await;
    assert_eq!(of_bea["status"], "succeeded", "{of_bea}");
    assert_eq!(
        of_bea["row_count"], 0,
        "bea read another company's rows: {of_bea}"
    );

    // Runs are shown to their requester and to readers of their companies only.
    let url = |run: &Value| {
        format!(
            "{}/api/v1/report-runs/{}",
            app.base,
            run["id"].as_str().unwrap()
        )
    };
    let (status, _, body) = send(reqwest::Method::GET, url(&of_max), Some(&bea), None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("reports.run.read"),
        "{body}"
    );
    let output = format!("{}/outputs/csv", url(&of_max));
    assert_eq!(
        send(reqwest::Method::GET, output, Some(&bea), None).await.0,
        403
    );
    let (_, _, listed) = send(
        reqwest::Method::GET,
        format!("{}/api/v1/reports/trial-balance/runs", app.base),
        Some(&bea),
        None,
    )
    .await;
    let ids: Vec<&str> = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [of_bea["id"].as_str().unwrap()],
        "bea's list shows her run only"
    );
    assert_eq!(
        app.get(&url(&of_bea)[app.base.len()..]).await.0,
        200,
        "admin sees every run"
    );

    // A scheduled report reads every company: its definition is written in every company only.
    let definition = json!({"name": "lines", "title": "Lines", "sql": "SELECT count(*) AS n FROM gl_journal_lines", "formats": ["csv"]});
    let (status, _, body) = send(
        reqwest::Method::POST,
        format!("{}/api/v1/reports", app.base),
        Some(&manager),
        Some(&definition),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("reports.definition.write in company *"),
        "{body}"
    );
    assert_eq!(
        app.get("/api/v1/reports/lines").await.0,
        404,
        "nothing was stored"
    );
}
