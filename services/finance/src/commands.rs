//! Finance commands: load the aggregates a command needs, decide, and plan the append.
//!
//! Appending happens in the caller ([`crate::api`]) so that the response stored under an
//! idempotency key is written in the same transaction as the events. Streams a decision only
//! reads (the accounts and the period a posting checks) travel as [`StreamRead`]s: the append
//! fails with a conflict if any of them changed meanwhile, so a posting cannot slip past a
//! concurrent block or period close.

use crate::aggregates::*;
use crate::domain::*;
use chrono::NaiveDate;
use std::collections::HashMap;
use tributary_kernel::aggregate::{self, Loaded, from_streams};
use tributary_kernel::store::{Decision, EventStore, StoreError, StreamRead, StreamWrite, Streams};
use tributary_kernel::{Aggregate, EventError, RepositoryError};
use uuid::Uuid;

pub const CONTEXT: &str = "finance";

pub const COMPANY: &str = <Company as Aggregate>::TYPE;
pub const ACCOUNT: &str = <Account as Aggregate>::TYPE;
pub const FISCAL_YEAR: &str = <FiscalYear as Aggregate>::TYPE;
pub const PERIOD: &str = <PostingPeriod as Aggregate>::TYPE;
pub const JOURNAL_ENTRY: &str = <JournalEntry as Aggregate>::TYPE;

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
    #[error(transparent)]
    Unreadable(#[from] EventError),
}

impl From<Vec<Violation>> for FinanceError {
    fn from(violations: Vec<Violation>) -> Self {
        FinanceError::Rejected(violations)
    }
}

impl From<RepositoryError> for FinanceError {
    fn from(error: RepositoryError) -> Self {
        match error {
            RepositoryError::Store(error) => FinanceError::Store(error),
            RepositoryError::Event(error) => FinanceError::Unreadable(error),
        }
    }
}

pub fn account_id(company: &CompanyCode, number: &AccountNumber) -> String {
    format!("{}/{}", company.as_str(), number.as_str())
}

pub fn period_id(company: &CompanyCode, period: Period) -> String {
    format!("{}/{period}", company.as_str())
}

/// A decision on one aggregate, answering with its state after the events.
fn decided<A: Aggregate, T>(
    loaded: &Loaded<A>,
    command: A::Command,
    reads: Vec<StreamRead>,
    outcome: impl FnOnce(A::State) -> Option<T>,
    missing: impl FnOnce() -> FinanceError,
) -> Result<Decision<T>, FinanceError>
where
    FinanceError: From<A::Rejection>,
{
    loaded
        .decide(command)?
        .decision(reads, outcome)
        .ok_or_else(missing)
}

// ----- companies ------------------------------------------------------------------------------

pub async fn companies(store: &EventStore) -> Result<Vec<Company>, FinanceError> {
    Ok(aggregate::load_all::<Company>(store)
        .await?
        .into_iter()
        .map(|loaded| loaded.state)
        .collect())
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
    let loaded = aggregate::load::<Company>(store, code.as_str()).await?;
    let command = CompanyCommand::Create {
        company: code.clone(),
        name,
    };
    decided(&loaded, command, vec![], Some, || FinanceError::NotFound {
        what: "company",
        id: code.to_string(),
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
    let mut accounts = HashMap::new();
    for loaded in aggregate::load_many::<Account>(store, &ids)
        .await?
        .into_values()
    {
        if let Some(account) = loaded.state {
            accounts.insert(account.number.clone(), (account, loaded.version));
        }
    }
    Ok(accounts)
}

pub async fn list_accounts(
    store: &EventStore,
    company: &CompanyCode,
) -> Result<Vec<Account>, FinanceError> {
    let mut accounts: Vec<Account> = aggregate::load_all::<Account>(store)
        .await?
        .into_iter()
        .filter_map(|loaded| loaded.state)
        .filter(|account| account.company == *company)
        .collect();
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
    let loaded = aggregate::load::<Account>(store, &account_id(&company, &number)).await?;
    let id = number.to_string();
    let command = AccountCommand::Create {
        company,
        number,
        name,
        account_type,
        currency,
    };
    decided(
        &loaded,
        command,
        vec![],
        |state| state,
        || FinanceError::NotFound {
            what: "account",
            id,
        },
    )
}

pub async fn change_account(
    store: &EventStore,
    company: CompanyCode,
    number: AccountNumber,
    change: ChangeAccount,
) -> Result<Decision<Account>, FinanceError> {
    let loaded = aggregate::load::<Account>(store, &account_id(&company, &number)).await?;
    let missing = || FinanceError::NotFound {
        what: "account",
        id: number.to_string(),
    };
    if loaded.state.is_none() {
        return Err(missing());
    }
    let command = AccountCommand::Change {
        number: number.clone(),
        change,
    };
    decided(&loaded, command, vec![], |state| state, missing)
}

// ----- fiscal years and periods ---------------------------------------------------------------

pub async fn load_period(
    store: &EventStore,
    company: &CompanyCode,
    period: Period,
) -> Result<Option<(PostingPeriod, i64)>, FinanceError> {
    let loaded = aggregate::load::<PostingPeriod>(store, &period_id(company, period)).await?;
    Ok(loaded.state.map(|state| (state, loaded.version)))
}

pub async fn create_fiscal_year(
    store: &EventStore,
    company: CompanyCode,
    year: i32,
    start_month: u32,
) -> Result<Decision<Vec<PeriodRange>>, FinanceError> {
    let year_stream =
        aggregate::load::<FiscalYear>(store, &format!("{}/{year}", company.as_str())).await?;
    let ranges = fiscal_year_periods(year, start_month);
    let ids: Vec<String> = ranges
        .iter()
        .map(|r| period_id(&company, r.period))
        .collect();
    let periods = aggregate::load_many::<PostingPeriod>(store, &ids).await?;
    let defined: Vec<Period> = ranges
        .iter()
        .filter(|r| periods[&period_id(&company, r.period)].exists())
        .map(|r| r.period)
        .collect();
    let (_, openings) = decide_create_fiscal_year(
        year_stream.state.created.is_some(),
        &defined,
        company.clone(),
        year,
        start_month,
    )?;
    let mut writes = year_stream
        .decide(FiscalYearCommand::Create {
            company: company.clone(),
            year,
            start_month,
            defined_periods: defined,
        })?
        .writes();
    for (id, opening) in ids.iter().zip(openings) {
        writes.extend(periods[id].decide(PeriodCommand::Open(opening))?.writes());
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
    let loaded = aggregate::load::<PostingPeriod>(store, &period_id(&company, period)).await?;
    let missing = || FinanceError::NotFound {
        what: "period",
        id: period.to_string(),
    };
    if loaded.state.is_none() {
        return Err(missing());
    }
    let command = if close {
        PeriodCommand::Close
    } else {
        PeriodCommand::Reopen
    };
    decided(&loaded, command, vec![], |state| state, missing)
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
    let (numbers, period, children) = ledger_streams(posting_date, accounts);
    let streams = store.load_scoped(COMPANY, company, &children).await?;
    view_of(&streams, company, &numbers, period)
}

/// The accounts (sorted, once each) and period a posting reads, and the child streams of its
/// company that hold them.
fn ledger_streams(
    posting_date: NaiveDate,
    accounts: &[AccountNumber],
) -> (Vec<AccountNumber>, Period, Vec<(&'static str, String)>) {
    let mut numbers = accounts.to_vec();
    numbers.sort();
    numbers.dedup();
    let period = Period::of(posting_date);
    let mut children: Vec<(&str, String)> = numbers
        .iter()
        .map(|n| (ACCOUNT, n.as_str().to_owned()))
        .collect();
    children.push((PERIOD, period.to_string()));
    (numbers, period, children)
}

/// The ledger view of loaded company streams.
fn view_of(
    streams: &Streams,
    company: Option<&str>,
    numbers: &[AccountNumber],
    period: Period,
) -> Result<(CompanyCode, LedgerView, Vec<StreamRead>), FinanceError> {
    let mut companies = Vec::new();
    for (kind, id) in streams.keys() {
        if kind == COMPANY {
            companies.push(from_streams::<Company>(streams, id)?.state);
        }
    }
    let company = pick_company(companies, company)?;
    let mut view = LedgerView {
        accounts: HashMap::new(),
        period: None,
    };
    let mut reads = Vec::new();
    for number in numbers {
        let loaded = from_streams::<Account>(streams, &account_id(&company, number))?;
        if let Some(account) = &loaded.state {
            reads.push(loaded.pin());
            view.accounts
                .insert(account.number.clone(), account.clone());
        }
    }
    let loaded = from_streams::<PostingPeriod>(streams, &period_id(&company, period))?;
    if loaded.state.is_some() {
        reads.push(loaded.pin());
        view.period = loaded.state;
    }
    Ok((company, view, reads))
}

/// Decides a posting in `company` (the only one when `None`) on `posting_date` to `accounts`.
/// When the company is named, the ledger streams this process read in the last moments serve
/// ([`EventStore::load_scoped_cached`]): the decision pins every account and the period it
/// relied on, so a change made meanwhile fails its append with a conflict (and the caller
/// decides again), and a refusal is decided again from fresh streams before it is answered.
pub async fn decide_posting(
    store: &EventStore,
    company: Option<&str>,
    posting_date: NaiveDate,
    accounts: &[AccountNumber],
    command: impl Fn(CompanyCode) -> PostJournalEntry,
) -> Result<Decision<JournalEntry>, FinanceError> {
    let (numbers, period, children) = ledger_streams(posting_date, accounts);
    let decide = |streams: &Streams| {
        let (company, view, reads) = view_of(streams, company, &numbers, period)?;
        decide_journal_entry(command(company), &view, reads)
    };
    if let Some(code) = company {
        let scoped = store.load_scoped_cached(COMPANY, code, &children).await?;
        let decided = decide(&scoped.streams);
        if decided.is_ok() || !scoped.cached {
            return decided;
        }
    }
    decide(&store.load_scoped(COMPANY, company, &children).await?)
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
    let loaded = Loaded::<JournalEntry>::new(entry_id.to_string());
    let command = JournalEntryCommand::Post {
        command,
        ledger: view.clone(),
    };
    decided(
        &loaded,
        command,
        reads,
        |state| state,
        || FinanceError::NotFound {
            what: "journal entry",
            id: entry_id.to_string(),
        },
    )
}

pub async fn journal_entry(
    store: &EventStore,
    entry_id: Uuid,
) -> Result<(JournalEntry, i64), FinanceError> {
    let loaded = aggregate::load::<JournalEntry>(store, &entry_id.to_string()).await?;
    match loaded.state {
        Some(entry) => Ok((entry, loaded.version)),
        None => Err(FinanceError::NotFound {
            what: "journal entry",
            id: entry_id.to_string(),
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
    let original = aggregate::load::<JournalEntry>(store, &entry_id.to_string()).await?;
    let Some(entry) = original.state.clone() else {
        return Err(FinanceError::NotFound {
            what: "journal entry",
            id: entry_id.to_string(),
        });
    };
    let numbers: Vec<AccountNumber> = entry.lines.iter().map(|l| l.account.clone()).collect();
    let (_, view, reads) =
        ledger_view(store, Some(entry.company.as_str()), reversal_date, &numbers).await?;
    let (original_events, reversal_events) =
        entry.decide_reverse(reversal_entry_id, reversal_date, &view)?;
    let reversal = Loaded::<JournalEntry>::new(reversal_entry_id.to_string());
    let mut linked = original.state.clone();
    original_events
        .iter()
        .for_each(|e| <JournalEntry as Aggregate>::apply(&mut linked, e));
    let mut reversed = None;
    reversal_events
        .iter()
        .for_each(|e| <JournalEntry as Aggregate>::apply(&mut reversed, e));
    let (Some(linked), Some(reversed)) = (linked, reversed) else {
        return Err(FinanceError::NotFound {
            what: "journal entry",
            id: reversal_entry_id.to_string(),
        });
    };
    let writes: Vec<StreamWrite> = vec![
        original.write(&original_events),
        reversal.write(&reversal_events),
    ];
    Ok(Decision {
        writes,
        reads,
        outcome: (linked, reversed),
    })
}
