//! Requests per user and window: past the limit a caller gets 429 with `Retry-After` until the
//! window ends. The count lives in Redis when the installation has one (every process of the
//! installation shares it), in the process otherwise.
//!
//! ```text
//!  guard: token ok ─► limiter.admit(user) ─► Allowed ─► route
//!                                         └► Limited { retry_after } ─► 429 problem
//! ```
//! Fixed windows (`requests` per `window`, counted from the epoch): a burst may reach twice
//! the limit across a window boundary, which is enough to keep one user from taking the
//! service.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many requests one user may make per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u64,
    pub window: Duration,
}

impl RateLimit {
    /// The window `now` falls in, and how long until it ends.
    pub fn window_at(&self, now: SystemTime) -> (u64, Duration) {
        let window_ms = u64::try_from(self.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let now_ms = u64::try_from(
            now.duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        let window = now_ms / window_ms;
        let left = window_ms - now_ms % window_ms;
        (window, Duration::from_millis(left))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    Limited { retry_after: Duration },
}

#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    fn limit(&self) -> RateLimit;
    /// Counts one request of `user`; an unavailable store admits (and is logged).
    async fn admit(&self, user: &str) -> Admission;
}

/// The counts of this process (no Redis configured).
#[derive(Debug)]
pub struct LocalLimiter {
    limit: RateLimit,
    counts: Mutex<HashMap<String, (u64, u64)>>,
}

impl LocalLimiter {
    pub fn new(limit: RateLimit) -> LocalLimiter {
        LocalLimiter {
            limit,
            counts: Mutex::default(),
        }
    }
}

#[async_trait::async_trait]
impl RateLimiter for LocalLimiter {
    fn limit(&self) -> RateLimit {
        self.limit
    }

    async fn admit(&self, user: &str) -> Admission {
        let (window, left) = self.limit.window_at(SystemTime::now());
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Counts of past windows are of no use: dropped when the map grows.
        if counts.len() > 10_000 {
            counts.retain(|_, (w, _)| *w == window);
        }
        let entry = counts.entry(user.to_owned()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 += 1;
        if entry.1 > self.limit.requests {
            Admission::Limited { retry_after: left }
        } else {
            Admission::Allowed
        }
    }
}

/// The request extension the route guards find the limiter in.
#[derive(Clone)]
pub struct RateLimiterExtension(pub Arc<dyn RateLimiter>);

/// Middleware: makes the installation's rate limiter available to the route guards.
pub async fn with_rate_limiter(
    limiter: Arc<dyn RateLimiter>,
    mut request: Request,
    next: Next,
) -> Response {
    request
        .extensions_mut()
        .insert(RateLimiterExtension(limiter));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_user_past_the_limit_waits_for_the_next_window_others_do_not() {
        let limiter = LocalLimiter::new(RateLimit {
            requests: 3,
            window: Duration::from_secs(3_600),
        });
        for _ in 0..3 {
            assert_eq!(limiter.admit("ana").await, Admission::Allowed);
        }
        let Admission::Limited { retry_after } = limiter.admit("ana").await else {
            panic!("the fourth request in the window was admitted");
        };
        assert!(retry_after <= Duration::from_secs(3_600) && retry_after > Duration::ZERO);
        assert_eq!(limiter.admit("max").await, Admission::Allowed);
    }

    #[test]
    fn windows_are_counted_from_the_epoch() {
        let limit = RateLimit {
            requests: 1,
            window: Duration::from_secs(60),
        };
        let at = UNIX_EPOCH + Duration::from_secs(125);
        assert_eq!(limit.window_at(at), (2, Duration::from_secs(55)));
    }
}
