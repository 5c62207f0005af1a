//! Reactors (issue 13, point 4): a reaction is stored once however often it is repeated, a
//! rejected one waits in suspense with its reason and is retried once the cause is fixed, and
//! the command carries causation and correlation ids.

use crate::helpers::{Backend, TestApp};
use serde_json::json;
use std::sync::Arc;
use tributary_finance::domain::{
    AccountNumber, JournalEntryEvent, LineInput, PostJournalEntry, Side,
};
use tributary_ingest::EventSource;
use tributary_ingest::follower::{FollowerError, FollowerOptions, ReactorRunner};
use tributary_kernel::reactor::{Cause, Follow, Reaction, Reactor, ReactorError, retry};
use tributary_kernel::{EventEnvelope, Platform};

/// Mirrors every posting referenced `MIRROR…` as rent paid from the bank.
struct Mirror;

#[async_trait::async_trait]
impl Reactor for Mirror {
    fn name(&self) -> &'static str {
        "test.mirror"
    }

    fn follows(&self) -> &'static [&'static str] {
        &["finance.journal_entry"]
    }

    async fn react(
        &self,
        platform: &Platform,
        cause: &Cause<'_>,
    ) -> Result<Reaction, ReactorError> {
        let Ok(JournalEntryEvent::JournalEntryPosted {
            company,
            posting_date,
            reference: Some(reference),
            lines,
            ..
        }) = tributary_kernel::event::decode::<JournalEntryEvent>(cause.event)
        else {
            return Ok(Reaction::Ignored);
        };
        if !reference.starts_with("MIRROR-") {
            return Ok(Reaction::Ignored);
        }
        let amount = lines[0].debit.max(lines[0].credit);
        let line = |account: &str, side| LineInput {
            account: AccountNumber::parse(account).unwrap(),
            side,
            currency: lines[0].currency.clone(),
            cost_center: None,
            text: None,
        };
        let command = PostJournalEntry {
            entry_id: cause.command_id(),
            company,
            posting_date,
            document_date: None,
            reference: Some(format!("MIRRORED {reference}")),
            text: None,
            lines: vec![
                line("6000", Side::Debit(amount)),
                line("1000", Side::Credit(amount)),
            ],
        };
        tributary_finance::reactors::post(platform, cause, command).await
    }
}

fn runner(app: &TestApp, fault_after_reactions: Option<usize>) -> ReactorRunner {
    let store = app.running().store.clone();
    let platform = Platform {
        store: store.clone(),
        lake: None,
        settings: Default::default(),
    };
    ReactorRunner::new(
        Arc::new(Mirror),
        platform,
        EventSource::Store(store),
        FollowerOptions {
            batch_events_max: 50,
            fault_after_reactions,
            ..FollowerOptions::default()
        },
    )
}

/// The journal entries whose reference starts with `prefix`.
async fn postings_referenced(app: &TestApp, prefix: &str) -> Vec<EventEnvelope> {
    app.running()
        .store
        .load_type("finance.journal_entry")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.payload["reference"]
                .as_str()
                .is_some_and(|r| r.starts_with(prefix))
        })
        .collect()
}

async fn mirrored(app: &TestApp) -> Vec<EventEnvelope> {
    postings_referenced(app, "MIRRORED").await
}

#[tokio::test]
async fn a_reactor_posts_once_suspends_what_is_refused_and_retries_it() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.setup_ledger().await;
    let post = |reference: &'static str, date: &'static str| {
        let app = &app;
        async move {
            app.ok(
                "/api/v1/journal-entries",
                json!({"posting_date": date, "reference": reference, "lines": [
                    {"account": "1200", "debit": "40.00", "currency": "EUR"},
                    {"account": "4000", "credit": "40.00", "currency": "EUR"}]}),
            )
            .await
        }
    };
    post("MIRROR-1", "2026-01-10").await;
    post("MIRROR-2", "2026-01-11").await;
    post("OTHER-1", "2026-01-12").await;

    // A crash after the first reaction was stored, before the position was saved: the
    // second run repeats it, and its idempotency key makes the repeat a no-op.
    let crashed = runner(&app, Some(1)).catch_up().await;
    assert!(matches!(crashed, Err(FollowerError::InjectedFault { .. })));
    assert_eq!(mirrored(&app).await.len(), 1);
    runner(&app, None).catch_up().await.unwrap();
    let posted = mirrored(&app).await;
    assert_eq!(
        posted.len(),
        2,
        "one mirror per source posting, none doubled"
    );

    // Causation and correlation: the source event, and the request that started the chain.
    let source = app
        .running()
        .store
        .load_type("finance.journal_entry")
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.payload["reference"] == "MIRROR-1")
        .unwrap();
    let mirror = posted
        .iter()
        .find(|e| e.payload["reference"] == "MIRRORED MIRROR-1")
        .unwrap();
    assert_eq!(mirror.metadata.causation_id, Some(source.id.to_string()));
    assert!(source.metadata.correlation_id.is_some());
    assert_eq!(
        mirror.metadata.correlation_id,
        source.metadata.correlation_id
    );
    assert_eq!(
        mirror.aggregate_id,
        Cause {
            reactor: "test.mirror",
            event: &source
        }
        .command_id()
        .to_string(),
        "the command's id derives from the source event"
    );

    // The target refuses (account 6000 blocked): suspense with the reason, the reactor goes on.
    app.request(
        reqwest::Method::PATCH,
        "/api/v1/accounts/6000",
        Some(&json!({"blocked": true}).to_string()),
        &[],
    )
    .await;
    let refused = post("MIRROR-3", "2026-01-13").await;
    post("MIRROR-4", "2026-01-14").await;
    runner(&app, None).catch_up().await.unwrap();
    let (status, open) = app.get("/api/v1/suspense?status=open").await;
    assert_eq!(status, 200, "{open}");
    assert_eq!(open.as_array().unwrap().len(), 2, "{open}");
    let suspended = open
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["aggregate_id"] == refused["id"])
        .unwrap();
    assert_eq!(suspended["reactor"], "test.mirror");
    assert_eq!(suspended["status"], "open");
    assert!(
        suspended["reason"].as_str().unwrap().contains("blocked"),
        "{suspended}"
    );
    assert_eq!(suspended["problem"]["errors"][0]["rule"], "account_blocked");
    // Running again does not duplicate the suspense nor post.
    runner(&app, None).catch_up().await.unwrap();
    assert_eq!(mirrored(&app).await.len(), 2);

    // Fixed: unblocked, retried, resolved.
    app.request(
        reqwest::Method::PATCH,
        "/api/v1/accounts/6000",
        Some(&json!({"blocked": false}).to_string()),
        &[],
    )
    .await;
    let platform = Platform {
        store: app.running().store.clone(),
        lake: None,
        settings: Default::default(),
    };
    let event_id = uuid::Uuid::parse_str(suspended["event_id"].as_str().unwrap()).unwrap();
    assert_eq!(
        retry(&platform, &Mirror, event_id).await.unwrap(),
        Some(Reaction::Done)
    );
    assert_eq!(mirrored(&app).await.len(), 3);
    let still_open = Follow {
        store: &platform.store,
    }
    .suspended(Some("open"), None, 10)
    .await
    .unwrap();
    assert_eq!(still_open.len(), 1, "the other one waits for its own retry");
    // The retry route of a reactor no module declares is a 404 naming it.
    let (status, body) = app
        .post(
            &format!("/api/v1/suspense/test.mirror/{event_id}/retry"),
            json!(null),
        )
        .await;
    assert_eq!(status, 404, "{body}");
}

/// On PostgreSQL every event of a transaction has the same feed position (the writer's
/// transaction id): a goods receipt appends to its purchase order and then to the stock in one
/// transaction, and the materials reactor, which follows only the stock, must still react to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_event_after_an_unfollowed_one_in_the_same_transaction_is_reacted_to() {
    let app = TestApp::spawn(Backend::Postgres).await;
    crate::procure_to_pay::one_open_purchase_order(&app).await;
    app.settle_reactors().await;
    let store = &app.running().store;
    let before = store.head_cursor().await.unwrap();
    app.ok(
        "/api/v1/goods-receipts",
        json!({"purchase_order": "4500000077", "line": 10, "quantity": "2", "posting_date": "2026-03-02"}),
    )
    .await;
    // The premise: the receipt's events share one feed position, the unfollowed one first.
    let mut receipt = store.read_feed(before, 100).await.unwrap().events;
    // (The posting may already follow, in a transaction of its own.)
    let first = receipt[0].cursor;
    receipt.retain(|e| e.cursor == first);
    let types: Vec<&str> = receipt.iter().map(|e| e.aggregate_type.as_str()).collect();
    assert_eq!(
        types,
        ["materials.purchase_order", "materials.stock"],
        "{receipt:?}"
    );

    app.settle_reactors().await;
    let postings = postings_referenced(&app, "MM ").await;
    assert_eq!(postings.len(), 1, "the receipt posts once: {postings:?}");
    assert_eq!(
        postings[0].metadata.causation_id,
        Some(receipt[1].id.to_string())
    );
}
