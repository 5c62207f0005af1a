//! An HTTP client of a running Tributary, logged in as a user: what the benchmarks and the
//! tests talk to it with, as any client would (`POST /api/v1/auth/login`, then the access
//! token on every request).

use anyhow::Context;

/// Logs in and answers the access token.
pub async fn login(base: &str, username: &str, password: &str) -> anyhow::Result<String> {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .context("while logging in")?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .context("while reading the login answer")?;
    anyhow::ensure!(
        status.is_success(),
        "login as {username} refused: {status} {body}"
    );
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("the login answer has no access_token")
}

/// A client sending `token` as its bearer token on every request.
pub fn with_token(token: &str, idle_per_host: usize) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(idle_per_host)
        .build()?)
}

/// A client logged in as `username`.
pub async fn logged_in(
    base: &str,
    username: &str,
    password: &str,
    idle_per_host: usize,
) -> anyhow::Result<reqwest::Client> {
    with_token(&login(base, username, password).await?, idle_per_host)
}

/// GETs `url` and succeeds on a 2xx answer within `timeout` (`tributary probe`, the image's
/// health check).
pub async fn probe(url: &str, timeout: std::time::Duration) -> anyhow::Result<()> {
    let response = reqwest::Client::builder()
        .timeout(timeout)
        .build()?
        .get(url)
        .send()
        .await
        .with_context(|| format!("while probing {url}"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url} answered {}",
        response.status()
    );
    Ok(())
}
