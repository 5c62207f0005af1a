//! Wake-ups across processes on PostgreSQL: followers in another process (the pipelines,
//! reactors or relay that production runs apart from the api role) learn of new events when
//! they are appended, instead of at their next poll.
//!
//! ```text
//!  api process                         PostgreSQL              pipelines process
//!  append commits ─► local appends ─► notifier: NOTIFY ─► listener ─► appended() receivers
//!                     (watch)         one at a time,       (LISTEN,    wake, read the feed
//!                                     coalesced            started by
//!                                                          the first follower)
//! ```
//! A notification is a hint, never the data: a follower woken reads the feed after its cursor
//! as at a poll, and its poll still runs when a notification is lost (listener reconnecting,
//! notifier failing). NOTIFY is sent by one task per process in a transaction of its own (one
//! per [`NOTIFY_SPACING`] at most, for all the appends meanwhile), never inside an append:
//! PostgreSQL serialises the commits of notifying transactions, which would serialise the
//! appends. That transaction commits without waiting for the WAL flush (the hint
//! needs no durability), so a notification costs no disk wait.

use sqlx::postgres::{PgConnection, PgListener, PgPool};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// The channel appends are announced on.
const CHANNEL: &str = "tributary_appended";

/// How long the notifier or the listener waits after a database error before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The notifier's NOTIFYs start at least this far apart: the appends in between are announced
/// by the next one (a follower elsewhere is woken up to this much later). While posting at two
/// thousand entries a second, a NOTIFY after nearly every group was a third of the database's
/// transactions.
const NOTIFY_SPACING: Duration = Duration::from_millis(10);

/// A PostgreSQL store's announcements: the notifier runs from the start, the listener from
/// the first follower's subscription.
#[derive(Debug)]
pub(super) struct Announcements {
    pool: PgPool,
    /// Changes after each append of this process; the notifier holds the receiver.
    local: watch::Sender<u64>,
    notifier: Arc<Notifier>,
    listening: OnceLock<Listening>,
}

impl Announcements {
    pub(super) fn start(pool: PgPool) -> Announcements {
        let (local, receiver) = watch::channel(0);
        Announcements {
            notifier: Notifier::start(pool.clone(), receiver),
            pool,
            local,
            listening: OnceLock::new(),
        }
    }

    /// This process appended.
    pub(super) fn appended(&self) {
        super::bump(&self.local);
    }

    /// From now on, other processes' appends bump `woken` too (once per store; outside a Tokio
    /// runtime nothing starts and followers rely on their polls).
    pub(super) fn listen(&self, woken: &Arc<watch::Sender<u64>>) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        self.listening.get_or_init(|| {
            Listening::start(self.pool.clone(), self.notifier.clone(), woken.clone())
        });
    }
}

/// Announces this process's appends, from a session of its own (taken out of the pool, so
/// commands keep every pooled connection).
#[derive(Debug, Default)]
struct Notifier {
    /// The backend process id of that session (0 before it exists): the listener in this
    /// process skips its notifications, whose followers were woken at the append already.
    session: AtomicU32,
}

impl Notifier {
    /// Announces an append each time `local` changes (coalesced: one NOTIFY at a time), until
    /// the store is gone (the sender of `local` dropped).
    fn start(pool: PgPool, mut local: watch::Receiver<u64>) -> Arc<Notifier> {
        let notifier = Arc::new(Notifier::default());
        let this = notifier.clone();
        tokio::spawn(async move {
            let mut session: Option<PgConnection> = None;
            while local.changed().await.is_ok() {
                local.mark_unchanged();
                let next = tokio::time::Instant::now() + NOTIFY_SPACING;
                match this.notify(&pool, session.take()).await {
                    Ok(connection) => session = Some(connection),
                    Err(error) => {
                        tracing::debug!(error = %error, "announcing appended events failed");
                        tokio::time::sleep(RETRY_AFTER).await;
                    }
                }
                tokio::time::sleep_until(next).await;
            }
        });
        notifier
    }

    /// Sends one NOTIFY on `session`, or on a new one; the session, to be used again.
    async fn notify(
        &self,
        pool: &PgPool,
        session: Option<PgConnection>,
    ) -> Result<PgConnection, sqlx::Error> {
        use sqlx::Executor as _;
        let mut connection = match session {
            Some(connection) => connection,
            None => self.open(pool).await?,
        };
        connection.execute(NOTIFY).await?;
        Ok(connection)
    }

    /// A session of the notifier's own, its process id noted.
    async fn open(&self, pool: &PgPool) -> Result<PgConnection, sqlx::Error> {
        let mut connection = pool.acquire().await?.detach();
        let (pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
            .fetch_one(&mut connection)
            .await?;
        self.session
            .store(u32::try_from(pid).unwrap_or_default(), Ordering::Relaxed);
        Ok(connection)
    }
}

/// One round trip: a transaction of its own that does not wait for its WAL flush, on [`CHANNEL`].
const NOTIFY: &str =
    "BEGIN; SET LOCAL synchronous_commit TO off; NOTIFY tributary_appended; COMMIT";

/// Listens while the store lives (kept by the store's [`Announcements`]; when the last handle
/// of the store goes, the listener's connection goes back to the pool).
#[derive(Debug)]
struct Listening {
    _stop: oneshot::Sender<()>,
}

impl Listening {
    /// Bumps `woken` at every notification of another session than `notifier`'s.
    fn start(pool: PgPool, notifier: Arc<Notifier>, woken: Arc<watch::Sender<u64>>) -> Listening {
        let (stop, mut stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    Err(error) = listen(&pool, &notifier, &woken) => {
                        tracing::debug!(error = %error, "listening for appended events failed");
                    }
                }
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tokio::time::sleep(RETRY_AFTER) => {}
                }
            }
        });
        Listening { _stop: stop }
    }
}

/// Listens on [`CHANNEL`] until the connection fails.
async fn listen(
    pool: &PgPool,
    notifier: &Notifier,
    woken: &watch::Sender<u64>,
) -> Result<std::convert::Infallible, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    // What was appended while nobody listened is read now, not at the next poll.
    super::bump(woken);
    loop {
        let notification = listener.recv().await?;
        if notification.process_id() != notifier.session.load(Ordering::Relaxed) {
            super::bump(woken);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_notification_is_sent_on_the_channel_listened_to() {
        assert!(super::NOTIFY.contains(&format!("NOTIFY {};", super::CHANNEL)));
    }
}
