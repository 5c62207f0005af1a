//! Contexts kept in databases of their own (`--context-database-url <context>=<url>`): every
//! other context and the platform's tables (identity, reports, field keys, follower
//! positions) stay on `--database-url`. Every process of an installation is given the same
//! map. See docs/scale-out.md, "One database per context", for what holds across databases.
//!
//! The map is checked before anything is connected: a context must be known and not identity
//! (every process reads its users and keys from the main database), given once, kept with the
//! contexts it appends in one transaction (`Module::appends_with`), with the contexts its
//! pipelines read and, for a reactor, with every context it follows. Once connected, no
//! database may already hold events of a context kept elsewhere, and the main database
//! records the contexts kept elsewhere (`context_databases`): a process started without one
//! of them is refused instead of serving that context empty. Moving a context's events
//! between databases is not supported.

use anyhow::Context as _;
use std::collections::BTreeMap;
use tributary_kernel::aggregate::context_of;
use tributary_kernel::store::GroupCommitOptions;
use tributary_kernel::{EventStore, Module};

/// The flag the map comes from, for messages.
pub const FLAG: &str = "--context-database-url";

/// Parses `<context>=<url>`.
pub fn parse_route(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((context, url)) if !context.trim().is_empty() && !url.trim().is_empty() => {
            Ok((context.trim().to_owned(), url.trim().to_owned()))
        }
        _ => Err(format!(
            "{FLAG} takes <context>=<database url> (e.g. materials=postgres://host/materials), not {text:?}"
        )),
    }
}

/// Where each context's events are kept: its own URL, or the main one.
#[derive(Debug)]
pub struct Map<'a> {
    main: &'a str,
    routes: BTreeMap<&'a str, &'a str>,
}

impl Map<'_> {
    fn url_of(&self, context: &str) -> &str {
        self.routes.get(context).copied().unwrap_or(self.main)
    }
}

/// The map of `routes`, or why the contexts cannot work with it (naming the contexts and the
/// rule).
pub fn check<'a>(
    main: &'a str,
    routes: &'a [(String, String)],
    modules: &[Module],
) -> anyhow::Result<Map<'a>> {
    let known: Vec<&str> = modules.iter().map(|m| m.name).collect();
    let mut map = Map {
        main,
        routes: BTreeMap::new(),
    };
    for (context, url) in routes {
        if !known.contains(&context.as_str()) {
            anyhow::bail!(
                "{FLAG}: unknown context {context:?}; contexts are {}",
                known.join(", ")
            );
        }
        if context == tributary_identity::service::CONTEXT {
            anyhow::bail!(
                "{FLAG}: identity cannot be kept in another database: every process reads its users and keys from --database-url"
            );
        }
        if map.routes.insert(context, url).is_some() {
            anyhow::bail!("{FLAG}: context {context:?} is given twice");
        }
    }
    let redacted = |context: &str| crate::redact(map.url_of(context));
    for module in modules {
        for partner in module.appends_with {
            if map.url_of(module.name) != map.url_of(partner) {
                anyhow::bail!(
                    "{FLAG}: {} appends events of {partner} in its own transactions, so both must be kept in one database ({}: {}, {partner}: {})",
                    module.name,
                    module.name,
                    redacted(module.name),
                    redacted(partner)
                );
            }
        }
        for relation in &module.relations {
            let source = context_of(relation.aggregate_type());
            if map.url_of(module.name) != map.url_of(source) {
                anyhow::bail!(
                    "{FLAG}: the pipelines of {} read events of {source} ({}), so both must be kept in one database ({}: {}, {source}: {})",
                    module.name,
                    relation.name(),
                    module.name,
                    redacted(module.name),
                    redacted(source)
                );
            }
        }
        for reactor in &module.reactors {
            let mut followed = reactor.follows().iter().map(|t| context_of(t));
            if let Some(first) = followed.next()
                && let Some(other) = followed.find(|c| map.url_of(c) != map.url_of(first))
            {
                anyhow::bail!(
                    "{FLAG}: reactor {} follows {first} and {other}, so both must be kept in one database ({first}: {}, {other}: {})",
                    reactor.name(),
                    redacted(first),
                    redacted(other)
                );
            }
        }
    }
    Ok(map)
}

/// Connects the main database and each other one once (migrating each), and routes every
/// context of `routes` to its database; refuses a database holding events of a context kept
/// elsewhere.
pub async fn connect(
    main: &str,
    routes: &[(String, String)],
    connections_max: u32,
    group_commit: GroupCommitOptions,
) -> anyhow::Result<EventStore> {
    let modules = crate::modules::all();
    let map = check(main, routes, &modules)?;
    let open = |url: String| async move {
        EventStore::connect_with(&url, connections_max, group_commit)
            .await
            .with_context(|| {
                format!(
                    "while connecting the event store at {}",
                    crate::redact(&url)
                )
            })
    };
    let mut databases: Vec<(&str, EventStore)> = vec![(main, open(main.to_owned()).await?)];
    for (_, url) in routes {
        if !databases.iter().any(|(known, _)| known == url) {
            databases.push((url, open(url.clone()).await?));
        }
    }
    for (url, database) in &databases {
        for module in modules.iter().filter(|m| map.url_of(m.name) != *url) {
            for set in &module.events {
                if database.has_type(set.aggregate_type).await? {
                    anyhow::bail!(
                        "{FLAG}: the database at {} holds events of {} ({}), which this configuration keeps at {}: moving a context's events between databases is not supported",
                        crate::redact(url),
                        module.name,
                        set.aggregate_type,
                        crate::redact(map.url_of(module.name))
                    );
                }
            }
        }
    }
    let (main_store, others) = (&databases[0].1, &databases[1..]);
    record(main_store, main, routes, &modules).await?;
    let mut store = main_store.clone();
    for (context, url) in routes {
        if let Some((_, database)) = others.iter().find(|(known, _)| known == url) {
            store = store.with_context_store(context, database.clone());
        }
    }
    Ok(store)
}

/// Checks `routes` against the contexts the main database records as kept elsewhere (each at
/// the URL recorded, compared without its password), and records those newly routed. The
/// reactors following a newly routed context start its new feed from the beginning: their
/// saved feed position counts in the main database's feed (their reactions' idempotency keys
/// make a repeat store nothing).
async fn record(
    main: &EventStore,
    main_url: &str,
    routes: &[(String, String)],
    modules: &[Module],
) -> anyhow::Result<()> {
    let recorded: Vec<(String, String)> =
        tributary_kernel::on_database!(main.database(), false, |pool| {
            sqlx::query_as("SELECT context, database_url FROM context_databases ORDER BY context")
                .fetch_all(&pool)
                .await?
        });
    if let Some((context, url)) = recorded.iter().find(|(context, _)| {
        !routes
            .iter()
            .any(|(routed, url)| routed == context && url != main_url)
    }) {
        anyhow::bail!(
            "{FLAG}: this installation keeps the events of {context} in another database ({url}, recorded by the first start with {FLAG} {context}=…): start every process with the same {FLAG}; moving a context's events back is not supported"
        );
    }
    for (context, recorded_url) in &recorded {
        let given = routes
            .iter()
            .find(|(routed, _)| routed == context)
            .map(|(_, url)| crate::redact(url))
            .unwrap_or_default();
        if &given != recorded_url {
            anyhow::bail!(
                "{FLAG}: {context}'s events are kept at {recorded_url} (recorded by the first start that routed it), not at {given}: give every process the same URL (if that database moved, change its row in the main database's table context_databases)"
            );
        }
    }
    for (context, url) in routes.iter().filter(|(_, url)| url != main_url) {
        if recorded.iter().any(|(known, _)| known == context) {
            continue;
        }
        let redacted = crate::redact(url);
        tributary_kernel::on_database!(main.database(), true, |pool| {
            sqlx::query(
                "INSERT INTO context_databases (context, database_url) VALUES ($1, $2) \
                 ON CONFLICT (context) DO NOTHING",
            )
            .bind(context)
            .bind(&redacted)
            .execute(&pool)
            .await
            .map(|_| ())?
        });
        let followers: Vec<String> = modules
            .iter()
            .flat_map(|m| m.reactors.iter())
            .filter(|r| r.follows().iter().any(|t| context_of(t) == context))
            .map(|r| tributary_ingest::follower::follower_name(r.as_ref()))
            .collect();
        for follower in &followers {
            tributary_kernel::on_database!(main.database(), true, |pool| {
                sqlx::query("DELETE FROM follower_positions WHERE follower = $1 AND stream = $2")
                    .bind(follower)
                    .bind(tributary_ingest::FEED_STREAM)
                    .execute(&pool)
                    .await
                    .map(|_| ())?
            });
        }
        tracing::info!(context, database = %redacted, ?followers, "context kept in its own database, recorded; its followers read its new feed from the start");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = "postgres://app@db/main";
    const GOODS: &str = "postgres://app:secret@db/goods";

    fn routes(contexts: &[&str], url: &str) -> Vec<(String, String)> {
        contexts
            .iter()
            .map(|c| ((*c).to_owned(), url.to_owned()))
            .collect()
    }

    fn refusal(routes: &[(String, String)]) -> String {
        check(MAIN, routes, &crate::modules::all())
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn contexts_that_append_together_are_kept_together_and_the_rest_may_move() {
        let modules = crate::modules::all();
        check(MAIN, &[], &modules).expect("one database");
        check(
            MAIN,
            &routes(&["materials", "sales", "production"], GOODS),
            &modules,
        )
        .expect("logistics apart from finance");
        check(MAIN, &routes(&["finance"], GOODS), &modules).expect("finance apart");
        let split = refusal(&routes(&["materials", "production"], GOODS));
        assert!(
            split.contains("sales appends events of materials"),
            "{split}"
        );
        assert!(split.contains("sales: postgres://app@db/main"), "{split}");
        assert!(
            split.contains("materials: postgres://app:***@db/goods"),
            "the password is never shown: {split}"
        );
        let split = refusal(&routes(&["materials", "sales"], GOODS));
        assert!(
            split.contains("production appends events of materials"),
            "{split}"
        );
    }

    #[test]
    fn unknown_contexts_identity_and_a_context_given_twice_are_refused_by_name() {
        let unknown = refusal(&routes(&["ledger"], GOODS));
        assert!(unknown.contains("unknown context \"ledger\""), "{unknown}");
        assert!(unknown.contains("finance"), "names the contexts: {unknown}");
        let identity = refusal(&routes(&["identity"], GOODS));
        assert!(identity.contains("identity cannot be kept"), "{identity}");
        let mut twice = routes(&["finance"], GOODS);
        twice.push(("finance".into(), MAIN.into()));
        assert!(refusal(&twice).contains("\"finance\" is given twice"));
    }

    #[test]
    fn a_route_is_context_equals_url() {
        assert_eq!(
            parse_route(" materials = postgres://db/goods "),
            Ok(("materials".into(), "postgres://db/goods".into()))
        );
        for bad in ["materials", "=postgres://db/goods", "materials=", ""] {
            let error = parse_route(bad).expect_err(bad);
            assert!(error.contains("<context>=<database url>"), "{error}");
        }
    }
}
