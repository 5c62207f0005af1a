//! Event store invariants on both backends: immutability, unique sequences, and a feed that
//! never skips an event that commits late.

use crate::helpers::{Backend, TestDatabase};
use tributary_kernel::store::{
    AppendBatch, EventStore, GroupCommitOptions, IdempotencyRecord, StoreError, StreamRead,
};

crate::on_both_backends!(
    events_are_immutable_and_sequences_unique,
    an_append_checks_its_reads_versions_and_idempotency_key,
    concurrent_appends_share_a_transaction_and_fail_alone,
    a_group_of_valid_commands_is_stored_as_each_command_alone
);

fn batch(aggregate_id: &str, expected_version: i64, count: usize) -> AppendBatch {
    crate::helpers::thing_events("test", aggregate_id, expected_version, count)
}

async fn open(backend: Backend) -> (EventStore, Option<TestDatabase>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.path().join("events.db").display());
            (
                EventStore::connect(&url, 4).await.expect("connect"),
                None,
                dir,
            )
        }
        Backend::Postgres => {
            let database = TestDatabase::create().await;
            (
                EventStore::connect(&database.url, 4)
                    .await
                    .expect("connect"),
                Some(database),
                dir,
            )
        }
    }
}

async fn events_are_immutable_and_sequences_unique(backend: Backend) {
    let (store, database, dir) = open(backend).await;
    let stored = store.append(batch("a", 0, 3)).await.expect("append");
    assert_eq!(
        stored.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    // The same expected version again is a conflict, not a lost update.
    match store.append(batch("a", 0, 1)).await {
        Err(StoreError::Conflict { expected: 0, .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Concurrent writers at the same version: exactly one wins.
    let (left, right) = tokio::join!(
        store.append(batch("b", 0, 1)),
        store.append(batch("b", 0, 1))
    );
    assert_eq!(
        u8::from(left.is_ok()) + u8::from(right.is_ok()),
        1,
        "{left:?} {right:?}"
    );
    let loaded = store
        .load("thing", &["a".into(), "b".into()])
        .await
        .expect("load");
    assert_eq!((loaded["a"].len(), loaded["b"].len()), (3, 1));
    assert_eq!(
        loaded["a"][2].to_cloudevent()["type"],
        "tributary.test.ThingHappened"
    );

    let refused = match backend {
        Backend::Sqlite => {
            use sqlx::Connection;
            let url = format!("sqlite://{}", dir.path().join("events.db").display());
            let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("open");
            let update = sqlx::query("UPDATE events SET payload = '{}'")
                .execute(&mut connection)
                .await;
            let delete = sqlx::query("DELETE FROM events")
                .execute(&mut connection)
                .await;
            update.is_err() && delete.is_err()
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(&database.as_ref().expect("db").url)
                .await
                .expect("open");
            let update = sqlx::query("UPDATE events SET payload = '{}'")
                .execute(&mut connection)
                .await;
            let delete = sqlx::query("DELETE FROM events")
                .execute(&mut connection)
                .await;
            let truncate = sqlx::query("TRUNCATE events")
                .execute(&mut connection)
                .await;
            update.is_err() && delete.is_err() && truncate.is_err()
        }
    };
    assert!(refused, "stored events cannot be changed or deleted");
    let feed = feed_until(&store, 0, 4).await;
    assert_eq!(feed.events.len(), 4);
}

/// The append was refused as a conflict on `thing/id`, naming both versions.
fn assert_conflict<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    id: &str,
    expected: i64,
    actual: i64,
) {
    match result {
        Err(StoreError::Conflict {
            aggregate_type,
            aggregate_id,
            expected: e,
            actual: a,
        }) if (aggregate_type.as_str(), aggregate_id.as_str(), e, a)
            == ("thing", id, expected, actual) => {}
        other => panic!("expected a conflict on {id} {expected} → {actual}, got {other:?}"),
    }
}

/// Every rule of an append, each refusal naming the stream and versions and storing nothing.
async fn an_append_checks_its_reads_versions_and_idempotency_key(backend: Backend) {
    let (store, _database, _dir) = open(backend).await;
    store.append(batch("read-me", 0, 2)).await.expect("append");
    store.append(batch("w", 0, 1)).await.expect("append");
    let read = |id: &str, version| StreamRead {
        aggregate_type: "thing".into(),
        aggregate_id: id.into(),
        version,
    };
    let key = |key: &str| IdempotencyRecord {
        key: key.into(),
        request_hash: "h".into(),
        status: 201,
        body: "{}".into(),
    };
    let count = |store: &EventStore| {
        let store = store.clone();
        async move {
            let ids = ["read-me".into(), "w".into(), "other".into()];
            let streams = store.load("thing", &ids).await.expect("load");
            streams.values().map(Vec::len).sum::<usize>()
        }
    };

    // A read stream that moved: refused, naming it.
    let mut stale = batch("w", 1, 1);
    stale.reads = vec![read("read-me", 1), read("absent", 0)];
    assert_conflict(store.append(stale).await, "read-me", 1, 2);
    // A stream that does not exist yet read at version 0, a current read, a write at its
    // version, and a new key: accepted.
    let mut good = batch("w", 1, 2);
    good.reads = vec![read("read-me", 2), read("absent", 0)];
    good.idempotency = Some(key("k-1"));
    let stored = store.append(good).await.expect("append");
    assert_eq!(
        stored.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(stored.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(count(&store).await, 5);
    // A write at an old version: refused with the current one.
    assert_conflict(store.append(batch("w", 1, 1)).await, "w", 1, 3);
    // A key already stored: refused, and the events of that append are not stored either.
    let mut again = batch("other", 0, 1);
    again.idempotency = Some(key("k-1"));
    match store.append(again).await {
        Err(StoreError::IdempotencyKeyTaken { key }) if key == "k-1" => {}
        other => panic!("expected the key to be taken, got {other:?}"),
    }
    assert_eq!(count(&store).await, 5, "refused appends store nothing");
}

/// Group commit: commands appended at once share transactions; the ones that break a rule
/// (a stale version, a stream another command of the same group wrote first, a key taken in the
/// same group, a moved read) fail with their own error, and every other one is stored once.
async fn concurrent_appends_share_a_transaction_and_fail_alone(backend: Backend) {
    let (store, _database, _dir) = open(backend).await;
    store.append(batch("old", 0, 2)).await.expect("append");
    let store = store.with_group_commit(GroupCommitOptions {
        commands_max: 32,
        // Long enough for every command below to reach the one leader's group.
        window: std::time::Duration::from_millis(300),
        leaders: 1,
        gather: 0,
    });
    let key = |key: &str| IdempotencyRecord {
        key: key.into(),
        request_hash: "h".into(),
        status: 201,
        body: "{}".into(),
    };
    let mut batches: Vec<(&str, AppendBatch)> = Vec::new();
    for n in 0..12 {
        batches.push(("good", batch(&format!("g{n}"), 0, 1 + n % 3)));
    }
    batches.push(("stale", batch("old", 1, 1)));
    batches.push(("twice", batch("same", 0, 1)));
    batches.push(("twice", batch("same", 0, 2)));
    for id in ["k1", "k2"] {
        let mut keyed = batch(id, 0, 1);
        keyed.idempotency = Some(key("shared-key"));
        batches.push(("keyed", keyed));
    }
    let mut moved = batch("reader", 0, 1);
    moved.reads = vec![StreamRead {
        aggregate_type: "thing".into(),
        aggregate_id: "old".into(),
        version: 1,
    }];
    batches.push(("moved", moved));
    let appends = batches.into_iter().map(|(kind, batch)| {
        let store = store.clone();
        async move { (kind, store.append(batch).await) }
    });
    let answers = futures::future::join_all(appends).await;
    let mut stored = Vec::new();
    let mut won = std::collections::HashMap::<&str, usize>::new();
    for (kind, answer) in answers {
        match (kind, answer) {
            ("good", Ok(events)) => stored.extend(events),
            ("good", Err(error)) => panic!("a valid append failed beside others: {error}"),
            ("stale", answer) => assert_conflict(answer, "old", 1, 2),
            ("moved", answer) => assert_conflict(answer, "old", 1, 2),
            ("twice", Ok(events)) => {
                *won.entry("twice").or_default() += 1;
                stored.extend(events);
            }
            ("twice", answer) => assert!(
                matches!(&answer, Err(StoreError::Conflict { aggregate_id, expected: 0, .. }) if aggregate_id == "same"),
                "{answer:?}"
            ),
            ("keyed", Ok(events)) => {
                *won.entry("keyed").or_default() += 1;
                stored.extend(events);
            }
            ("keyed", answer) => assert!(
                matches!(&answer, Err(StoreError::IdempotencyKeyTaken { key }) if key == "shared-key"),
                "{answer:?}"
            ),
            (kind, answer) => panic!("{kind}: {answer:?}"),
        }
    }
    assert_eq!(
        won.get("twice"),
        Some(&1),
        "one of two writes at version 0 wins"
    );
    assert_eq!(
        won.get("keyed"),
        Some(&1),
        "one of two appends with a key wins"
    );
    if backend == Backend::Postgres {
        assert!(
            store.group_splits() > 0,
            "a group with failing commands is appended command by command"
        );
        // The cursor is the writing transaction: fewer transactions than commands stored.
        let transactions: std::collections::BTreeSet<i64> =
            stored.iter().map(|e| e.cursor).collect();
        assert!(
            transactions.len() < 14,
            "14 commands in {} transactions",
            transactions.len()
        );
    }
    // Exactly what was answered as stored is in the feed, once, with the two earlier events.
    let feed = feed_until(&store, 0, stored.len() + 2).await;
    let mut fed: Vec<_> = feed.events.iter().map(|e| e.id).collect();
    let mut answered: Vec<_> = stored.iter().map(|e| e.id).collect();
    fed.drain(..2);
    fed.sort();
    answered.sort();
    assert_eq!(fed, answered);
    assert_eq!(
        store
            .read_feed(feed.cursor, 100)
            .await
            .expect("feed")
            .events
            .len(),
        0
    );
}

/// A group whose commands all hold (PostgreSQL appends it whole, without savepoints) stores
/// each command as it would be stored alone: its own context, source, time, metadata, sequences,
/// payloads and idempotency key, answered with the positions the feed shows, in command order.
async fn a_group_of_valid_commands_is_stored_as_each_command_alone(backend: Backend) {
    let (store, _database, _dir) = open(backend).await;
    store.append(batch("shared", 0, 2)).await.expect("append");
    store.append(batch("w3", 0, 1)).await.expect("append");
    let store = store.with_group_commit(GroupCommitOptions {
        commands_max: 32,
        window: std::time::Duration::from_millis(300),
        leaders: 1,
        gather: 0,
    });
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:00:00.123456Z")
        .unwrap()
        .to_utc();
    let commands: Vec<AppendBatch> = (0..10)
        .map(|n| {
            // w3 already holds one event: its command continues at sequence 2.
            let mut command = batch(&format!("w{n}"), i64::from(n == 3), 1 + n % 3);
            command.context = format!("context{n}");
            command.time = start + chrono::Duration::microseconds(1_000_001 * n as i64);
            command.metadata.user = Some(format!("user{n}"));
            command.metadata.request_id = Some(format!("request{n}"));
            command.reads = vec![StreamRead {
                aggregate_type: "thing".into(),
                aggregate_id: "shared".into(),
                version: 2,
            }];
            if n % 2 == 0 {
                command.idempotency = Some(IdempotencyRecord {
                    key: format!("key{n}"),
                    request_hash: format!("hash{n}"),
                    status: 201,
                    body: format!("{{\"n\":{n}}}"),
                });
            }
            command
        })
        .collect();
    let appends = commands.iter().cloned().map(|command| {
        let store = store.clone();
        async move { store.append(command).await }
    });
    let answers: Vec<_> = futures::future::join_all(appends)
        .await
        .into_iter()
        .map(|answer| answer.expect("every command of the group holds"))
        .collect();
    for (n, (command, events)) in commands.iter().zip(&answers).enumerate() {
        let write = &command.writes[0];
        assert_eq!(events.len(), write.events.len(), "command {n}");
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event.aggregate_id, write.aggregate_id);
            assert_eq!(event.sequence, write.expected_version + 1 + i as i64);
            assert_eq!(event.context, command.context);
            assert_eq!(event.source, format!("/tributary/{}", command.context));
            assert_eq!(event.time, command.time);
            assert_eq!(event.metadata.user, command.metadata.user);
            assert_eq!(event.payload, write.events[i].payload);
        }
        if let Some(key) = &command.idempotency {
            assert_eq!(
                store.idempotency(&key.key).await.expect("key").as_ref(),
                Some(key),
                "command {n}'s idempotency record"
            );
        }
    }
    let answered: Vec<_> = answers.iter().flatten().collect();
    let feed = feed_until(&store, 0, answered.len() + 3).await;
    let fed: std::collections::HashMap<_, _> = feed.events[3..]
        .iter()
        .map(|event| (event.id, event))
        .collect();
    assert_eq!(fed.len(), answered.len());
    for event in &answered {
        let stored = fed
            .get(&event.id)
            .expect("an answered event is in the feed");
        assert_eq!(
            (stored.position, stored.cursor, stored.sequence),
            (event.position, event.cursor, event.sequence)
        );
        assert_eq!(
            (&stored.context, &stored.source, stored.time),
            (&event.context, &event.source, event.time),
            "as stored: context, source and time (to the microsecond)"
        );
        assert_eq!(stored.metadata.user, event.metadata.user);
        assert_eq!(stored.metadata.request_id, event.metadata.request_id);
        assert_eq!(stored.payload, event.payload);
    }
    if backend == Backend::Postgres {
        assert_eq!(
            store.group_splits(),
            0,
            "a group that holds is appended whole"
        );
        let transactions: std::collections::BTreeSet<i64> =
            answered.iter().map(|e| e.cursor).collect();
        assert!(
            transactions.len() < 10,
            "10 commands in {} transactions",
            transactions.len()
        );
    }
    // Inside each transaction, positions follow the order the commands were queued in, and
    // each command's events are consecutive.
    let mut by_position = answered.clone();
    by_position.sort_by_key(|e| e.position);
    let feed_ids: Vec<_> = feed.events[3..].iter().map(|e| e.id).collect();
    let position_ids: Vec<_> = by_position.iter().map(|e| e.id).collect();
    assert_eq!(feed_ids, position_ids, "the feed reads in position order");
    for events in &answers {
        let positions: Vec<_> = events.iter().map(|e| e.position).collect();
        let consecutive = positions.windows(2).all(|w| w[1] == w[0] + 1);
        assert!(
            consecutive,
            "a command's events are consecutive: {positions:?}"
        );
    }
}

/// Reads the feed until it holds `count` events. On PostgreSQL the feed may lag while other
/// sessions (other tests) hold the cluster's oldest transaction open; it never skips.
async fn feed_until(store: &EventStore, cursor: i64, count: usize) -> tributary_kernel::FeedBatch {
    for _ in 0..400 {
        let feed = store.read_feed(cursor, 100).await.expect("feed");
        if feed.events.len() >= count {
            return feed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the feed did not deliver {count} events after cursor {cursor} within 10 s");
}

/// PostgreSQL only: a transaction that took its position first but commits last must not be
/// skipped by a reader that already saw a later position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_feed_never_skips_an_event_that_commits_late() {
    use sqlx::Connection;
    let database = TestDatabase::create().await;
    let store = EventStore::connect(&database.url, 4)
        .await
        .expect("connect");
    store.append(batch("early", 0, 1)).await.expect("append");
    let first = feed_until(&store, 0, 1).await;
    assert_eq!(first.events.len(), 1);

    // A slow writer inserts (taking the lower position and xid) and holds its transaction open.
    let mut slow = sqlx::PgConnection::connect(&database.url)
        .await
        .expect("connect");
    let mut transaction = slow.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO events (event_id, context, aggregate_type, aggregate_id, sequence, event_type, event_version, source, time, payload, metadata) \
         VALUES (gen_random_uuid(), 'test', 'thing', 'slow', 1, 'ThingHappened', 1, '/tributary/test', now(), '{}', '{}')",
    )
    .execute(&mut *transaction)
    .await
    .expect("slow insert");
    // A fast writer commits a later position meanwhile.
    store
        .append(batch("fast", 0, 1))
        .await
        .expect("fast append");
    let while_open = store.read_feed(first.cursor, 100).await.expect("feed");
    assert!(
        while_open.events.is_empty(),
        "nothing after the open transaction may be handed out yet: {:?}",
        while_open.events
    );

    transaction.commit().await.expect("slow commit");
    let after = feed_until(&store, first.cursor, 2).await;
    let ids: Vec<&str> = after
        .events
        .iter()
        .map(|e| e.aggregate_id.as_str())
        .collect();
    assert_eq!(
        ids,
        vec!["slow", "fast"],
        "both arrive, in commit-safe order, none skipped"
    );
}

/// PostgreSQL only: while one group is being committed, the other leader gathers the commands
/// arriving meanwhile into one group instead of committing each as it comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_leader_gathers_while_another_group_commits() {
    use sqlx::Connection;
    let database = TestDatabase::create().await;
    let store = EventStore::connect(&database.url, 4)
        .await
        .expect("connect");
    store.append(batch("held", 0, 1)).await.expect("append");
    let store = store.with_group_commit(GroupCommitOptions {
        commands_max: 32,
        window: std::time::Duration::ZERO,
        leaders: 2,
        gather: 8,
    });
    // The stream's row locked elsewhere: the next write to it stays in flight.
    let mut holder = sqlx::PgConnection::connect(&database.url)
        .await
        .expect("connect");
    let mut lock = holder.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM streams WHERE aggregate_id = 'held' FOR UPDATE")
        .execute(&mut *lock)
        .await
        .expect("lock the stream");
    let in_flight = tokio::spawn({
        let store = store.clone();
        async move { store.append(batch("held", 1, 1)).await }
    });
    let mut watcher = sqlx::PgConnection::connect(&database.url)
        .await
        .expect("connect");
    let waiting = "SELECT count(*) FROM pg_stat_activity \
        WHERE datname = current_database() AND wait_event_type = 'Lock'";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sqlx::query_scalar::<_, i64>(waiting)
        .fetch_one(&mut watcher)
        .await
        .expect("pg_stat_activity")
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first group never waited for the lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Eight commands one after another, each a moment apart: without gathering the free leader
    // would commit most of them alone.
    let mut arriving = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        arriving.push(tokio::spawn(async move {
            store.append(batch(&format!("new-{n}"), 0, 1)).await
        }));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    for append in arriving {
        append
            .await
            .expect("task")
            .expect("append beside the held group");
    }
    assert_eq!(
        store.group_sizes(),
        Some((2, 9)),
        "one group held, one gathered (groups, commands)"
    );
    lock.rollback().await.expect("release the lock");
    in_flight
        .await
        .expect("task")
        .expect("the held group commits once the lock is gone");
    assert_eq!(store.group_sizes(), Some((2, 9)));
}

/// PostgreSQL only: a leader keeps its connection from one group to the next; when that
/// connection dies (its backend terminated), the group on it is answered as unavailable and the
/// leader takes another connection, so appends made right after (no idle second in between) go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_leader_replaces_a_connection_that_died() {
    use sqlx::Connection;
    let database = TestDatabase::create().await;
    let store = EventStore::connect(&database.url, 4)
        .await
        .expect("connect")
        .with_group_commit(GroupCommitOptions {
            commands_max: 32,
            window: std::time::Duration::ZERO,
            leaders: 2,
            gather: 0,
        });
    for n in 0..4 {
        store
            .append(batch(&format!("before-{n}"), 0, 1))
            .await
            .expect("append");
    }
    let mut killer = sqlx::PgConnection::connect(&database.url)
        .await
        .expect("connect");
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t",
    )
    .fetch_one(&mut killer)
    .await
    .expect("terminate the store's connections");
    assert!(killed >= 1, "the leaders held no connection");
    let mut unavailable = 0;
    let mut stored = 0;
    for n in 0..10 {
        match store.append(batch(&format!("after-{n}"), 0, 1)).await {
            Ok(_) => stored += 1,
            Err(StoreError::Unavailable(_)) => unavailable += 1,
            Err(other) => panic!("append {n}: {other}"),
        }
    }
    // Each leader loses at most the one group it sent on its dead connection.
    assert!(unavailable <= 2, "{unavailable} appends unavailable");
    assert_eq!(stored + unavailable, 10);
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id LIKE 'after-%'")
            .fetch_one(&mut killer)
            .await
            .expect("count");
    assert_eq!(rows, stored, "every answered append is stored, no other");
}

/// PostgreSQL only: a group append looks every stream up by its key, never by reading the
/// whole `streams` table, even when the session planned its statements while the table was empty
/// (its plans are kept for the session's life while the table grows by a row per entry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_group_appends_look_streams_up_by_key() {
    use sqlx::{Connection, Row};
    let database = TestDatabase::create().await;
    drop(
        EventStore::connect(&database.url, 1)
            .await
            .expect("connect: the schema"),
    );
    let mut connection = sqlx::PgConnection::connect(&database.url)
        .await
        .expect("connect");
    let mut transaction = connection.begin().await.expect("begin");
    // Two commands per call, as `append_event_group_whole`'s caller sends them: the first call
    // makes streams A and B on the empty table; the second reads A, makes C and moves B on.
    let call = "SELECT count(*) FROM append_event_group_whole( \
        $1, $2, $3, $4, $5, $6, $7, $8, $9, \
        ARRAY[gen_random_uuid(), gen_random_uuid()], ARRAY['test.thing', 'test.thing'], $6, $10, \
        ARRAY['ThingHappened', 'ThingHappened'], ARRAY[1, 1], ARRAY['{}', '{}'], ARRAY[1, 2], \
        ARRAY['test', 'test'], ARRAY[now(), now()], ARRAY['{}', '{}'], \
        ARRAY[NULL, NULL]::TEXT[], ARRAY[NULL, NULL]::TEXT[], ARRAY[NULL, NULL]::INTEGER[], \
        ARRAY[NULL, NULL]::TEXT[]) WHERE o_code IS NULL";
    type Call<'a> = (
        Vec<&'a str>,
        Vec<&'a str>,
        Vec<i64>,
        [i32; 2],
        [&'a str; 2],
        [&'a str; 2],
        [i64; 2],
        [i64; 2],
        [i32; 2],
        [i64; 2],
    );
    let thing = "test.thing";
    let calls: [Call; 2] = [
        (
            vec![],
            vec![],
            vec![],
            [0, 0],
            [thing; 2],
            ["A", "B"],
            [0, 0],
            [1, 1],
            [1, 2],
            [1, 1],
        ),
        (
            vec![thing],
            vec!["A"],
            vec![1],
            [1, 1],
            [thing; 2],
            ["C", "B"],
            [0, 1],
            [1, 2],
            [1, 2],
            [1, 2],
        ),
    ];
    for (
        reads,
        read_ids,
        read_versions,
        read_ends,
        writes,
        write_ids,
        expected,
        versions,
        write_ends,
        sequences,
    ) in calls
    {
        let stored: i64 = sqlx::query_scalar(call)
            .bind(reads)
            .bind(read_ids)
            .bind(read_versions)
            .bind(read_ends)
            .bind(writes)
            .bind(write_ids)
            .bind(expected)
            .bind(versions)
            .bind(write_ends)
            .bind(sequences)
            .fetch_one(&mut *transaction)
            .await
            .expect("group append");
        assert_eq!(stored, 2, "both commands' events are stored");
    }
    let scans = sqlx::query(
        "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'streams'",
    )
    .fetch_one(&mut *transaction)
    .await
    .expect("this transaction's scans");
    let (sequential, by_index): (i64, i64) = (scans.get(0), scans.get(1));
    assert_eq!(sequential, 0, "no group statement reads all of `streams`");
    assert!(
        by_index > 0,
        "the streams read and written are looked up by key"
    );
}

/// PostgreSQL only: a follower in another process (here: another store handle with pools of
/// its own) is woken by an append there, not at its next poll; its own appends wake it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_appends_wake_followers_in_other_processes() {
    use tokio::sync::watch::Receiver;
    /// Waits (10 s at most) for the next wake after the last one seen; panics with `what`.
    async fn woken_by(woken: &mut Receiver<u64>, what: &str) {
        tokio::time::timeout(std::time::Duration::from_secs(10), woken.changed())
            .await
            .unwrap_or_else(|_| panic!("{what}: no wake within 10 s"))
            .expect("store alive");
        woken.mark_unchanged();
    }
    let database = TestDatabase::create().await;
    let (api, pipelines) = (
        EventStore::connect(&database.url, 4)
            .await
            .expect("connect"),
        EventStore::connect(&database.url, 4)
            .await
            .expect("connect"),
    );
    let mut woken = pipelines.appended();
    // Listening has begun once the first wake arrives (what was appended before is read then).
    woken_by(&mut woken, "the listener starts").await;

    api.append(batch("elsewhere", 0, 1)).await.expect("append");
    woken_by(
        &mut woken,
        "an append in another process wakes the follower",
    )
    .await;
    // The feed hands the event out once no older transaction of the server is open (other
    // tests' databases share the server's transaction ids), so this may take a moment.
    let feed = feed_until(&pipelines, 0, 1).await;
    assert_eq!(feed.events[0].aggregate_id, "elsewhere");

    pipelines.append(batch("here", 0, 1)).await.expect("append");
    woken_by(&mut woken, "its own appends wake it").await;
    // Later appends are announced as well (the notifier goes on after its first).
    api.append(batch("elsewhere", 1, 1)).await.expect("append");
    woken_by(&mut woken, "every later append wakes it again").await;
}

/// PostgreSQL only: one relay instance holds the lease; a second stands by until the first's
/// connection goes away (as when its process dies).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_relay_is_active_and_a_standby_takes_over() {
    let database = TestDatabase::create().await;
    let first = EventStore::connect(&database.url, 2)
        .await
        .expect("connect");
    let second = EventStore::connect(&database.url, 2)
        .await
        .expect("connect");
    let lease = first
        .try_lease_relay("default")
        .await
        .expect("lease")
        .expect("the first relay is active");
    assert!(
        second
            .try_lease_relay("default")
            .await
            .expect("lease")
            .is_none(),
        "a second relay stands by"
    );
    assert!(
        second
            .try_lease_relay("other")
            .await
            .expect("lease")
            .is_some(),
        "differently named relays are independent"
    );
    drop(lease); // as when the active relay stops or its process dies
    let mut taken = false;
    for _ in 0..50 {
        if second
            .try_lease_relay("default")
            .await
            .expect("lease")
            .is_some()
        {
            taken = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        taken,
        "the standby takes over once the active relay is gone"
    );
}
