//! The per-user request limit counted in Redis, shared by every process of the installation:
//! `INCR tributary:rate:<user>:<window>` with the key expiring after its window.

use std::time::SystemTime;
use tributary_kernel::ratelimit::{Admission, RateLimit, RateLimiter};

pub struct RedisLimiter {
    limit: RateLimit,
    connection: redis::aio::ConnectionManager,
}

impl RedisLimiter {
    /// Connects (and keeps reconnecting) to `url`, e.g. `redis://127.0.0.1:6379`.
    pub async fn connect(url: &str, limit: RateLimit) -> anyhow::Result<RedisLimiter> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("the Redis URL {url:?} is not valid: {e}"))?;
        let connection = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to Redis at {url}: {e}"))?;
        Ok(RedisLimiter { limit, connection })
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
        let expire = i64::try_from(self.limit.window.as_secs().max(1) * 2).unwrap_or(i64::MAX);
        let mut connection = self.connection.clone();
        let counted: Result<(u64,), redis::RedisError> = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .expire(&key, expire)
            .ignore()
            .query_async(&mut connection)
            .await;
        match counted {
            Ok((count,)) if count > self.limit.requests => Admission::Limited { retry_after: left },
            Ok(_) => Admission::Allowed,
            Err(error) => {
                // Availability first: a Redis outage does not lock every user out.
                tracing::warn!(%error, "rate limit: Redis unavailable, request admitted");
                Admission::Allowed
            }
        }
    }
}
