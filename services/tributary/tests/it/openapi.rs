//! The OpenAPI document (GET /api/v1/openapi.json) against what is served: it lists every
//! route with its permission, it is a valid OpenAPI 3.1 document, every operation answers
//! each built-in role and each bad token as the document says (the authorization matrix),
//! and schemathesis (from PyPI) finds no server error and no answer outside the document.

use crate::helpers::{Backend, TestApp, ensure_python_package};
use crate::identity::{SECRET, forge, login, now, send, user_with_roles};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tributary_kernel::auth::{Access, role};

/// The operations of the document: (method, path, permission).
fn operations(document: &Value) -> Vec<(reqwest::Method, String, Option<String>)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.push((
                method.to_uppercase().parse().unwrap(),
                path.clone(),
                operation["x-permission"].as_str().map(str::to_owned),
            ));
        }
    }
    operations
}

/// The path with every parameter filled, naming company MAIN.
fn url(base: &str, path: &str) -> String {
    let filled: Vec<&str> = path
        .split('/')
        .map(|s| if s.starts_with('{') { "X1" } else { s })
        .collect();
    format!("{base}{}?company=MAIN", filled.join("/"))
}

fn body_of(method: &reqwest::Method) -> Option<Value> {
    matches!(
        *method,
        reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH
    )
    .then(|| json!({}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_every_route_and_each_role_and_bad_token_gets_what_it_says() {
    let app =
        TestApp::spawn_with(|settings| settings.identity.signing_secret = Some(SECRET.into()))
            .await;
    let (status, _, document) = send(
        reqwest::Method::GET,
        format!("{}/api/v1/openapi.json", app.base),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    // Every route served is in the document with its permission, and nothing else is.
    let served: BTreeSet<(String, String, Option<String>)> = app
        .running()
        .routes
        .iter()
        .map(|r| {
            let permission = match r.access {
                Access::Permission(p) => Some(p.name.to_owned()),
                _ => None,
            };
            (r.method.to_string(), r.path.to_owned(), permission)
        })
        .collect();
    let documented: BTreeSet<(String, String, Option<String>)> = operations(&document)
        .into_iter()
        .map(|(m, p, permission)| (m.to_string(), p, permission))
        .collect();
    assert_eq!(served, documented);
    assert!(documented.len() > 60, "{} operations", documented.len());
    let entry = &document["paths"]["/api/v1/journal-entries"]["post"];
    assert_eq!(entry["x-permission"], "finance.journal_entry.post");
    assert_eq!(entry["security"], json!([{"bearerAuth": []}]));
    assert_eq!(
        entry["responses"]["403"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    // Bodies are described by their types' JSON Schemas, named under components/schemas.
    let body = &entry["requestBody"]["content"]["application/json"]["schema"]["$ref"];
    let name = body.as_str().unwrap().rsplit('/').next().unwrap();
    let schema = &document["components"]["schemas"][name];
    assert_eq!(schema["additionalProperties"], false, "{schema}");
    for field in ["posting_date", "lines", "company", "reference"] {
        assert!(
            schema["properties"].get(field).is_some(),
            "{field} in {schema}"
        );
    }
    let with_body = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter(|operation| operation.get("requestBody").is_some())
        .count();
    assert!(
        with_body >= 30,
        "{with_body} operations describe their body"
    );
    // A valid OpenAPI 3.1 document (openapi-spec-validator, from PyPI).
    ensure_python_package("openapi_spec_validator", "openapi-spec-validator==0.9.0");
    let file = app.dir.path().join("openapi.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let validated = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1])))",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "{}",
        String::from_utf8_lossy(&validated.stderr)
    );

    // Tokens: none, tampered, expired; each built-in role in every company and in B only.
    let catalog = tributary::modules::catalog();
    let (_, tokens) = login(&app, "admin", crate::helpers::TEST_ADMIN_PASSWORD).await;
    let admin = tokens["access_token"].as_str().unwrap().to_owned();
    let kid = jsonwebtoken::decode_header(&admin).unwrap().kid.unwrap();
    let mut parts: Vec<String> = admin.split('.').map(str::to_owned).collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("someone-else");
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    let tampered = parts.join(".");
    let expired = forge(
        &kid,
        &json!({"iss": "tributary", "aud": "tributary", "sub": "admin", "iat": now() - 3_600,
                "nbf": now() - 3_600, "exp": now() - 600, "jti": "expired", "sid": "expired"}),
    );
    let mut everywhere = Vec::new();
    let mut only_b = Vec::new();
    for role in role::BUILT_IN {
        let name = role.replace('_', "-");
        everywhere.push((
            role,
            user_with_roles(&app, &format!("all-{name}"), &[("*", role)]).await,
        ));
        only_b.push((
            role,
            user_with_roles(&app, &format!("b-{name}"), &[("B", role)]).await,
        ));
    }

    // Refusals first: nothing they touch is stored.
    let before = app.event_count().await;
    let mut checked = 0;
    for (method, path, permission) in operations(&document) {
        if path == "/healthz"
            || path.ends_with("/openapi.json")
            || path == "/api/v1/auth/login"
            || path == "/api/v1/auth/refresh"
        {
            continue;
        }
        let target = url(&app.base, &path);
        let body = body_of(&method);
        for (what, token) in [
            ("no", None),
            ("tampered", Some(&tampered)),
            ("expired", Some(&expired)),
        ] {
            let (status, headers, problem) = send(
                method.clone(),
                target.clone(),
                token.map(String::as_str),
                body.as_ref(),
            )
            .await;
            assert_eq!(status, 401, "{method} {path} with {what} token: {problem}");
            assert!(headers.contains_key("www-authenticate"), "{method} {path}");
            checked += 1;
        }
        let Some(permission) = permission else {
            continue;
        };
        for (role, token) in &only_b {
            // The permission held in B at most, the request naming MAIN.
            let (status, _, problem) =
                send(method.clone(), target.clone(), Some(token), body.as_ref()).await;
            assert_eq!(status, 403, "{method} {path} as {role} of B: {problem}");
            assert!(
                problem["detail"].as_str().unwrap().contains(&permission),
                "{method} {path}: {problem}"
            );
            checked += 1;
        }
        for (role, token) in &everywhere {
            if catalog.role_permissions(role).contains(permission.as_str()) {
                continue;
            }
            let (status, _, problem) =
                send(method.clone(), target.clone(), Some(token), body.as_ref()).await;
            assert_eq!(status, 403, "{method} {path} as {role}: {problem}");
            checked += 1;
        }
    }
    assert_eq!(app.event_count().await, before, "a refusal stores nothing");
    assert!(checked > 600, "{checked} refusals checked");

    // Holders of the permission in every company get past the guard (and never a 5xx).
    let mut allowed = 0;
    let mut answered_reads = BTreeSet::new();
    for (method, path, permission) in operations(&document) {
        let Some(permission) = permission else {
            continue;
        };
        for (role, token) in &everywhere {
            if !catalog.role_permissions(role).contains(permission.as_str()) {
                continue;
            }
            let target = url(&app.base, &path);
            let (status, _, answer) = send(
                method.clone(),
                target,
                Some(token),
                body_of(&method).as_ref(),
            )
            .await;
            assert!(
                status != 401 && status != 403 && status < 500,
                "{method} {path} as {role}: {status} {answer}"
            );
            // A read of a whole collection answers 2xx outright.
            if method == reqwest::Method::GET && !path.contains('{') {
                answered_reads.insert((path.clone(), status));
            }
            allowed += 1;
        }
    }
    assert!(allowed > 100, "{allowed} allowed requests checked");
    // Reads that need more than the company: no determination is set yet; a period.
    let expected = [
        ("/api/v1/account-determination/materials", 404),
        ("/api/v1/trial-balance", 422),
    ];
    let not_ok: Vec<_> = answered_reads
        .iter()
        .filter(|(path, status)| {
            !(200..300).contains(status) && !expected.contains(&(path.as_str(), *status))
        })
        .collect();
    assert!(
        not_ok.is_empty(),
        "collection reads not answered 2xx: {not_ok:?}"
    );
    assert!(answered_reads.len() >= 7, "{answered_reads:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let installed = std::process::Command::new("st")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        let pip = std::process::Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "schemathesis==4.32.5"])
            .status()
            .expect("pip runs");
        assert!(pip.success(), "pip install schemathesis failed");
    }
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    let (_, tokens) = login(&app, "admin", crate::helpers::TEST_ADMIN_PASSWORD).await;
    let token = tokens["access_token"].as_str().unwrap();
    let output = tokio::process::Command::new("st")
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", app.base))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        // Bounded and reproducible: a few examples per operation, one seed.
        .args(["--max-examples", "5", "--seed", "20261202"])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
        ])
        // Logging out or changing the password would end the session under test.
        .args(["--exclude-path", "/api/v1/auth/logout"])
        .args(["--exclude-path", "/api/v1/auth/password"])
        .arg("--no-color")
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .await
        .expect("st runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{}\n{}",
        &stdout[stdout.len().saturating_sub(6_000)..],
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Tested: "), "{stdout}");
}
