//! The per-user request limit counted in Redis, shared by every process of the installation:
//! `INCR tributary:rate:<user>:<window>` with the key expiring after its window.
//!
//! Availability first: Redis down at start, down later, or slower than [`REDIS_WAIT`]: the
//! request is admitted (and logged), never held up or refused for it.

use std::time::{Duration, SystemTime};
use tokio::sync::OnceCell;
use tributary_kernel::ratelimit::{Admission, RateLimit, RateLimiter};

/// Longest a request waits for Redis's count.
const REDIS_WAIT: Duration = Duration::from_millis(250);

pub struct RedisLimiter {
    limit: RateLimit,
    client: redis::Client,
    /// Connected on first use (and reconnecting by itself after).
    connection: OnceCell<redis::aio::ConnectionManager>,
}

impl RedisLimiter {
    /// A limiter counting in Redis at `url` (e.g. `redis://127.0.0.1:6379`); a bad URL is an
    /// error, an unreachable server is not.
    pub fn new(url: &str, limit: RateLimit) -> anyhow::Result<RedisLimiter> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("the Redis URL {url:?} is not valid: {e}"))?;
        Ok(RedisLimiter {
            limit,
            client,
            connection: OnceCell::new(),
        })
    }

    async fn count(&self, key: &str) -> Result<u64, String> {
        let connection = self
            .connection
            .get_or_try_init(|| {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(REDIS_WAIT)
                    .set_response_timeout(REDIS_WAIT);
                redis::aio::ConnectionManager::new_with_config(self.client.clone(), config)
            })
            .await
            .map_err(|e| e.to_string())?;
        let expire = i64::try_from(self.limit.window.as_secs().max(1) * 2).unwrap_or(i64::MAX);
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .incr(key, 1)
            .expire(key, expire)
            .ignore()
            .query_async(&mut connection.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(count)
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisLimiter {
    fn limit(&self) -> RateLimit {
        self.limit
    }

    async fn admit(&self, user: &str) -> Admission {
        let (window, left) = self.limit.window_at(SystemTime::now());
        let key = format!("tributary:rate:{user}:{window}");
        match tokio::time::timeout(REDIS_WAIT * 2, self.count(&key)).await {
            Ok(Ok(count)) if count > self.limit.requests => {
                Admission::Limited { retry_after: left }
            }
            Ok(Ok(_)) => Admission::Allowed,
            Ok(Err(error)) => {
                tracing::warn!(%error, "rate limit: Redis unavailable, request admitted");
                Admission::Allowed
            }
            Err(_) => {
                tracing::warn!("rate limit: Redis did not answer in time, request admitted");
                Admission::Allowed
            }
        }
    }
}
