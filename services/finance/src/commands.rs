//! Finance commands: load the aggregates a command needs, decide, and plan the append.
//!
//! Appending happens in the caller ([`crate::api`]) so that the response stored under an
//! idempotency key is written in the same transaction as the events. Streams a decision only
//! reads (the accounts and the period a posting checks) travel as [`StreamRead`]s: the append
//! fails with a conflict if any of them changed meanwhile, so a posting cannot slip past a
//! concurrent block or period close.

use crate::domain::*;
use chrono::NaiveDate;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use tributary_kernel::store::{Decision, EventStore, StoreError, StreamRead, StreamWrite, Streams};
use tributary_kernel::{EventEnvelope, from_envelope, to_new_event};
use uuid::Uuid;

pub const CONTEXT: &str = "finance";
pub const EVENT_VERSION: i32 = 1;

pub const COMPANY: &str = "company";
pub const ACCOUNT: &str = "account";
pub const FISCAL_YEAR: &str = "fiscal_year";
pub const PERIOD: &str = "period";
pub const JOURNAL_ENTRY: &str = "journal_entry";

#[derive(Debug, thiserror::Error)]
pub enum FinanceError {
    #[error("rejected: {0:?}")]
    Rejected(Vec<Violation>),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("company is required: {count} companies exist, name one in `company`")]
    CompanyRequired { count: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "event {event_id} at position {position} cannot be read as a {aggregate_type} event: {reason}"
    )]
    Unreadable {
        event_id: Uuid,
        position: i64,
        aggregate_type: String,
        reason: String,
    },
}

impl From<Vec<Violation>> for FinanceError {
    fn from(violations: Vec<Violation>) -> Self {
        FinanceError::Rejected(violations)
    }
}

pub fn account_id(company: &CompanyCode, number: &AccountNumber) -> String {
    format!("{}/{}", company.as_str(), number.as_str())
}

pub fn period_id(company: &CompanyCode, period: Period) -> String {
    format!("{}/{period}", company.as_str())
}

fn decode<E: DeserializeOwned>(event: &EventEnvelope) -> Result<E, FinanceError> {
    from_envelope(event).map_err(|error| FinanceError::Unreadable {
        event_id: event.id,
        position: event.position,
        aggregate_type: event.aggregate_type.clone(),
        reason: error.to_string(),
    })
}

/// Folds a stream into its state and version.
fn fold<E: DeserializeOwned, S>(
    events: &[EventEnvelope],
    apply: impl Fn(Option<S>, &E) -> Option<S>,
) -> Result<(Option<S>, i64), FinanceError> {
    let mut state = None;
    for event in events {
        state = apply(state, &decode::<E>(event)?);
    }
    Ok((state, events.last().map_or(0, |e| e.sequence)))
}

fn write<E: Serialize>(
    aggregate_type: &str,
    aggregate_id: String,
    expected_version: i64,
    events: &[E],
) -> StreamWrite {
    StreamWrite {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id,
        expected_version,
        events: events
            .iter()
            .map(|e| to_new_event(e, EVENT_VERSION))
            .collect(),
    }
}

// ----- companies ------------------------------------------------------------------------------

pub async fn companies(store: &EventStore) -> Result<Vec<Company>, FinanceError> {
    let mut companies: Vec<Company> = Vec::new();
    for event in store.load_type(COMPANY).await? {
        let mut company = Company::default();
        company.apply(&decode::<CompanyEvent>(&event)?);
        companies.push(company);
    }
    Ok(companies)
}

/// The company a request names, or the only one when it names none.
pub async fn resolve_company(
    store: &EventStore,
    requested: Option<&str>,
) -> Result<CompanyCode, FinanceError> {
    pick_company(companies(store).await?, requested)
}

fn pick_company(
    companies: Vec<Company>,
    requested: Option<&str>,
) -> Result<CompanyCode, FinanceError> {
    match requested {
        Some(code) => companies
            .into_iter()
            .filter_map(|c| c.code)
            .find(|c| c.as_str() == code)
            .ok_or_else(|| FinanceError::NotFound {
                what: "company",
                id: code.to_owned(),
            }),
        None => match companies.as_slice() {
            [only] => only
                .code
                .clone()
                .ok_or(FinanceError::CompanyRequired { count: 0 }),
            _ => Err(FinanceError::CompanyRequired {
                count: companies.len(),
            }),
        },
    }
}

pub async fn create_company(
    store: &EventStore,
    code: CompanyCode,
    name: String,
) -> Result<Decision<Company>, FinanceError> {
    let mut existing = Company::default();
    let streams = store.load(COMPANY, &[code.as_str().to_owned()]).await?;
    for event in streams.get(code.as_str()).into_iter().flatten() {
        existing.apply(&decode(event)?);
    }
    let events = existing.decide_create(code.clone(), name)?;
    let mut company = Company::default();
    events.iter().for_each(|e| company.apply(e));
    Ok(Decision {
        writes: vec![write(COMPANY, code.as_str().to_owned(), 0, &events)],
        reads: vec![],
        outcome: company,
    })
}

// ----- accounts -------------------------------------------------------------------------------

/// Accounts by number with their stream versions.
pub async fn load_accounts(
    store: &EventStore,
    company: &CompanyCode,
    numbers: &[AccountNumber],
) -> Result<HashMap<AccountNumber, (Account, i64)>, FinanceError> {
    let ids: Vec<String> = numbers.iter().map(|n| account_id(company, n)).collect();
    let streams = store.load(ACCOUNT, &ids).await?;
    let mut accounts = HashMap::new();
    for events in streams.values() {
        if let (Some(account), version) = fold(events, Account::apply)? {
            accounts.insert(account.number.clone(), (account, version));
        }
    }
    Ok(accounts)
}

pub async fn list_accounts(
    store: &EventStore,
    company: &CompanyCode,
) -> Result<Vec<Account>, FinanceError> {
    let prefix = format!("{}/", company.as_str());
    let mut by_id: std::collections::BTreeMap<String, Vec<EventEnvelope>> = Default::default();
    for event in store.load_type(ACCOUNT).await? {
        if event.aggregate_id.starts_with(&prefix) {
            by_id
                .entry(event.aggregate_id.clone())
                .or_default()
                .push(event);
        }
    }
    let mut accounts = Vec::new();
    for events in by_id.values() {
        if let (Some(account), _) = fold(events, Account::apply)? {
            accounts.push(account);
        }
    }
    accounts.sort_by(|a, b| a.number.cmp(&b.number));
    Ok(accounts)
}

pub async fn create_account(
    store: &EventStore,
    company: CompanyCode,
    number: AccountNumber,
    name: String,
    account_type: AccountType,
    currency: tributary_kernel::money::Currency,
) -> Result<Decision<Account>, FinanceError> {
    let existing = load_accounts(store, &company, std::slice::from_ref(&number)).await?;
    let events = Account::decide_create(
        existing.get(&number).map(|(a, _)| a),
        company.clone(),
        number.clone(),
        name,
        account_type,
        currency,
    )?;
    let account =
        events
            .iter()
            .fold(None, Account::apply)
            .ok_or_else(|| FinanceError::NotFound {
                what: "account",
                id: number.to_string(),
            })?;
    Ok(Decision {
        writes: vec![write(ACCOUNT, account_id(&company, &number), 0, &events)],
        reads: vec![],
        outcome: account,
    })
}

pub async fn change_account(
    store: &EventStore,
    company: CompanyCode,
    number: AccountNumber,
    change: ChangeAccount,
) -> Result<Decision<Account>, FinanceError> {
    let mut existing = load_accounts(store, &company, std::slice::from_ref(&number)).await?;
    let (account, version) = existing
        .remove(&number)
        .ok_or_else(|| FinanceError::NotFound {
            what: "account",
            id: number.to_string(),
        })?;
    let events = account.decide_change(change)?;
    let changed = events.iter().fold(Some(account), Account::apply);
    let changed = changed.ok_or_else(|| FinanceError::NotFound {
        what: "account",
        id: number.to_string(),
    })?;
    let writes = if events.is_empty() {
        vec![]
    } else {
        vec![write(
            ACCOUNT,
            account_id(&company, &number),
            version,
            &events,
        )]
    };
    Ok(Decision {
        writes,
        reads: vec![],
        outcome: changed,
    })
}

// ----- fiscal years and periods ---------------------------------------------------------------

pub async fn load_period(
    store: &EventStore,
    company: &CompanyCode,
    period: Period,
) -> Result<Option<(PostingPeriod, i64)>, FinanceError> {
    let id = period_id(company, period);
    let streams = store.load(PERIOD, std::slice::from_ref(&id)).await?;
    let events = streams.get(&id).map(Vec::as_slice).unwrap_or_default();
    match fold(events, PostingPeriod::apply)? {
        (Some(state), version) => Ok(Some((state, version))),
        (None, _) => Ok(None),
    }
}

pub async fn create_fiscal_year(
    store: &EventStore,
    company: CompanyCode,
    year: i32,
    start_month: u32,
) -> Result<Decision<Vec<PeriodRange>>, FinanceError> {
    let year_id = format!("{}/{year}", company.as_str());
    let year_exists = store
        .load(FISCAL_YEAR, std::slice::from_ref(&year_id))
        .await?
        .contains_key(&year_id);
    let ranges = fiscal_year_periods(year, start_month);
    let ids: Vec<String> = ranges
        .iter()
        .map(|r| period_id(&company, r.period))
        .collect();
    let existing = store.load(PERIOD, &ids).await?;
    let defined: Vec<Period> = ranges
        .iter()
        .filter(|r| existing.contains_key(&period_id(&company, r.period)))
        .map(|r| r.period)
        .collect();
    let (year_event, openings) =
        decide_create_fiscal_year(year_exists, &defined, company.clone(), year, start_month)?;
    let mut writes = vec![write(
        FISCAL_YEAR,
        year_id,
        0,
        std::slice::from_ref(&year_event),
    )];
    for opening in &openings {
        if let PeriodEvent::PeriodOpened { period, .. } = opening {
            writes.push(write(
                PERIOD,
                period_id(&company, *period),
                0,
                std::slice::from_ref(opening),
            ));
        }
    }
    Ok(Decision {
        writes,
        reads: vec![],
        outcome: ranges,
    })
}

/// Closes (`close = true`) or reopens a period.
pub async fn set_period_closed(
    store: &EventStore,
    company: CompanyCode,
    period: Period,
    close: bool,
) -> Result<Decision<PostingPeriod>, FinanceError> {
    let (state, version) =
        load_period(store, &company, period)
            .await?
            .ok_or_else(|| FinanceError::NotFound {
                what: "period",
                id: period.to_string(),
            })?;
    let events = if close {
        state.decide_close()?
    } else {
        state.decide_reopen()?
    };
    let changed = events
        .iter()
        .fold(Some(state.clone()), PostingPeriod::apply)
        .unwrap_or(state);
    Ok(Decision {
        writes: vec![write(PERIOD, period_id(&company, period), version, &events)],
        reads: vec![],
        outcome: changed,
    })
}

// ----- journal entries ------------------------------------------------------------------------

/// What a posting on `posting_date` checks, read in one round trip: the company (the one
/// requested, or the only one), its accounts and period, and the reads that pin them.
pub async fn ledger_view(
    store: &EventStore,
    company: Option<&str>,
    posting_date: NaiveDate,
    accounts: &[AccountNumber],
) -> Result<(CompanyCode, LedgerView, Vec<StreamRead>), FinanceError> {
    let mut numbers = accounts.to_vec();
    numbers.sort();
    numbers.dedup();
    let period = Period::of(posting_date);
    let mut children: Vec<(&str, String)> = numbers
        .iter()
        .map(|n| (ACCOUNT, n.as_str().to_owned()))
        .collect();
    children.push((PERIOD, period.to_string()));
    let streams = store.load_scoped(COMPANY, company, &children).await?;
    let mut companies = Vec::new();
    for ((kind, _), events) in &streams {
        if kind == COMPANY {
            let mut company = Company::default();
            for event in events {
                company.apply(&decode::<CompanyEvent>(event)?);
            }
            companies.push(company);
        }
    }
    let company = pick_company(companies, company)?;
    let mut view = LedgerView {
        accounts: HashMap::new(),
        period: None,
    };
    let mut reads = Vec::new();
    for number in &numbers {
        let id = account_id(&company, number);
        if let Some((account, read)) = pinned(&streams, ACCOUNT, id, Account::apply)? {
            reads.push(read);
            view.accounts.insert(account.number.clone(), account);
        }
    }
    let id = period_id(&company, period);
    if let Some((state, read)) = pinned(&streams, PERIOD, id, PostingPeriod::apply)? {
        reads.push(read);
        view.period = Some(state);
    }
    Ok((company, view, reads))
}

/// A loaded stream's state, with the read that pins it at its version; `None` when the
/// stream has no events or folds to nothing.
fn pinned<E: DeserializeOwned, S>(
    streams: &Streams,
    aggregate_type: &str,
    aggregate_id: String,
    apply: impl Fn(Option<S>, &E) -> Option<S>,
) -> Result<Option<(S, StreamRead)>, FinanceError> {
    let Some(events) = streams.get(&(aggregate_type.to_owned(), aggregate_id.clone())) else {
        return Ok(None);
    };
    Ok(match fold(events, apply)? {
        (Some(state), version) => Some((
            state,
            StreamRead {
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id,
                version,
            },
        )),
        (None, _) => None,
    })
}

pub async fn post_journal_entry(
    store: &EventStore,
    command: PostJournalEntry,
) -> Result<Decision<JournalEntry>, FinanceError> {
    let numbers: Vec<AccountNumber> = command.lines.iter().map(|l| l.account.clone()).collect();
    let (_, view, reads) = ledger_view(
        store,
        Some(command.company.as_str()),
        command.posting_date,
        &numbers,
    )
    .await?;
    decide_journal_entry(command, &view, reads)
}

/// Decides a posting against a [`ledger_view`] (`reads` are the view's).
pub fn decide_journal_entry(
    command: PostJournalEntry,
    view: &LedgerView,
    reads: Vec<StreamRead>,
) -> Result<Decision<JournalEntry>, FinanceError> {
    let entry_id = command.entry_id;
    let events = JournalEntry::decide_post(command, view)?;
    let entry = events
        .iter()
        .fold(None, JournalEntry::apply)
        .ok_or_else(|| FinanceError::NotFound {
            what: "journal entry",
            id: entry_id.to_string(),
        })?;
    Ok(Decision {
        writes: vec![write(JOURNAL_ENTRY, entry_id.to_string(), 0, &events)],
        reads,
        outcome: entry,
    })
}

pub async fn journal_entry(
    store: &EventStore,
    entry_id: Uuid,
) -> Result<(JournalEntry, i64), FinanceError> {
    let id = entry_id.to_string();
    let streams = store.load(JOURNAL_ENTRY, std::slice::from_ref(&id)).await?;
    let events = streams.get(&id).map(Vec::as_slice).unwrap_or_default();
    match fold(events, JournalEntry::apply)? {
        (Some(entry), version) => Ok((entry, version)),
        (None, _) => Err(FinanceError::NotFound {
            what: "journal entry",
            id,
        }),
    }
}

/// Reverses an entry; the outcome is (original with its link, the reversal entry).
pub async fn reverse_journal_entry(
    store: &EventStore,
    entry_id: Uuid,
    reversal_entry_id: Uuid,
    reversal_date: NaiveDate,
) -> Result<Decision<(JournalEntry, JournalEntry)>, FinanceError> {
    let (original, version) = journal_entry(store, entry_id).await?;
    let numbers: Vec<AccountNumber> = original.lines.iter().map(|l| l.account.clone()).collect();
    let (_, view, reads) = ledger_view(
        store,
        Some(original.company.as_str()),
        reversal_date,
        &numbers,
    )
    .await?;
    let (original_events, reversal_events) =
        original.decide_reverse(reversal_entry_id, reversal_date, &view)?;
    let linked = original_events
        .iter()
        .fold(Some(original.clone()), JournalEntry::apply)
        .unwrap_or(original);
    let reversal = reversal_events
        .iter()
        .fold(None, JournalEntry::apply)
        .ok_or_else(|| FinanceError::NotFound {
            what: "journal entry",
            id: reversal_entry_id.to_string(),
        })?;
    Ok(Decision {
        writes: vec![
            write(
                JOURNAL_ENTRY,
                entry_id.to_string(),
                version,
                &original_events,
            ),
            write(
                JOURNAL_ENTRY,
                reversal_entry_id.to_string(),
                0,
                &reversal_events,
            ),
        ],
        reads,
        outcome: (linked, reversal),
    })
}
