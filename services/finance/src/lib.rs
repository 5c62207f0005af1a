//! Finance (FI): companies, chart of accounts, fiscal periods and journal entries, event-sourced.
//!
//! `domain` is pure decide/apply logic and `aggregates` puts it on the kernel's aggregate
//! abstraction; `commands` loads aggregates and plans appends; `api` is the REST surface under
//! `/api/v1`; `reads` answers balances from the lake; `lake` defines the context's relations,
//! tables, pipelines and views. [`module`] declares all of it to the binary.

pub mod aggregates;
pub mod api;
pub mod commands;
pub mod determination;
pub mod domain;
pub mod lake;
pub mod permissions;
pub mod reactors;
pub mod reads;

#[cfg(test)]
mod domain_tests;

use aggregates::FiscalYear;
use chrono::NaiveDate;
use domain::{Account, Company, CompanyCode, JournalEntry, Period, PostingPeriod};
use tributary_kernel::master::{AccountState, Books as PublishedBooks, PeriodState};
use tributary_kernel::module::{EventSet, Module, Platform};
use tributary_kernel::{EventStore, RepositoryError, aggregate};

/// Finance as a module: everything the binary needs to know of it.
pub fn module() -> Module {
    let mut module = Module::new(
        commands::CONTEXT,
        "Finance: companies, chart of accounts, fiscal periods, journal entries",
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/events"),
    );
    module.commands = api::router;
    module.reads = reads::router;
    module.permissions = permissions::all();
    module.events = vec![
        EventSet::of::<Company>(),
        EventSet::of::<Account>(),
        EventSet::of::<FiscalYear>(),
        EventSet::of::<PostingPeriod>(),
        EventSet::of::<JournalEntry>(),
        EventSet::of::<determination::AccountDetermination>(),
    ];
    module.reactors = vec![
        std::sync::Arc::new(reactors::MaterialsPostings),
        std::sync::Arc::new(reactors::SalesPostings),
        std::sync::Arc::new(reactors::ProductionPostings),
    ];
    module.relations = lake::relations();
    module.tables = lake::tables();
    module.pipelines = lake::pipelines();
    module.views = lake::views();
    module.on_start = Some(|platform| Box::pin(ensure_default_company(platform)));
    module.books = Some(std::sync::Arc::new(Books));
    module.metrics = Some(lake::metrics);
    module
}

/// What finance's books allow, published to the other contexts (a query interface in
/// process): whether a company's period of a date is open, whether an account can be posted.
pub struct Books;

#[async_trait::async_trait]
impl PublishedBooks for Books {
    async fn period_state(
        &self,
        store: &EventStore,
        company: &CompanyCode,
        date: NaiveDate,
    ) -> Result<PeriodState, RepositoryError> {
        if !aggregate::load::<Company>(store, company.as_str())
            .await?
            .exists()
        {
            return Ok(PeriodState::NoCompany);
        }
        let period = commands::period_id(company, Period::of(date));
        Ok(
            match aggregate::load::<PostingPeriod>(store, &period)
                .await?
                .state
            {
                None => PeriodState::NotDefined,
                Some(state) if state.closed => PeriodState::Closed,
                Some(_) => PeriodState::Open,
            },
        )
    }

    async fn account_state(
        &self,
        store: &EventStore,
        company: &CompanyCode,
        account: &str,
    ) -> Result<AccountState, RepositoryError> {
        let Ok(number) = domain::AccountNumber::parse(account) else {
            return Ok(AccountState::Missing);
        };
        let id = commands::account_id(company, &number);
        Ok(match aggregate::load::<Account>(store, &id).await?.state {
            None => AccountState::Missing,
            Some(account) if account.blocked => AccountState::Blocked,
            Some(account) => AccountState::Usable {
                currency: account.currency,
            },
        })
    }
}

/// Creates the installation's default company when there is none.
async fn ensure_default_company(platform: Platform) -> Result<(), String> {
    let Some((code, name)) = platform.settings.default_company.clone() else {
        return Ok(());
    };
    let store = &platform.store;
    if !commands::companies(store)
        .await
        .map_err(|e| e.to_string())?
        .is_empty()
    {
        return Ok(());
    }
    let code = CompanyCode::parse(&code)
        .map_err(|rule| format!("default company code {code:?} {rule}"))?;
    ensure_company(store, &code, &name).await
}

/// Creates the company unless it exists.
pub async fn ensure_company(
    store: &tributary_kernel::EventStore,
    code: &CompanyCode,
    name: &str,
) -> Result<(), String> {
    let decision = match commands::create_company(store, code.clone(), name.to_owned()).await {
        Ok(decision) => decision,
        // It exists already.
        Err(commands::FinanceError::Rejected(_)) => return Ok(()),
        Err(error) => return Err(error.to_string()),
    };
    let (batch, _) = decision.into_batch(commands::CONTEXT, Default::default(), None);
    match store.append(batch).await {
        // Another process created it first: fine.
        Ok(_) | Err(tributary_kernel::StoreError::Conflict { .. }) => Ok(()),
        Err(error) => Err(format!("while creating the company: {error}")),
    }
}
