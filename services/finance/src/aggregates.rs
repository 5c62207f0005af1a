//! Finance's aggregates on the kernel's [`Aggregate`] abstraction: their qualified types,
//! commands and the event enums they fold. The rules themselves live in [`crate::domain`].

use crate::domain::*;
use chrono::NaiveDate;
use tributary_kernel::Aggregate;
use tributary_kernel::event::DomainEvent;
use tributary_kernel::money::Currency;
use uuid::Uuid;

impl DomainEvent for CompanyEvent {}
impl DomainEvent for AccountEvent {}
impl DomainEvent for FiscalYearEvent {}
impl DomainEvent for PeriodEvent {}
impl DomainEvent for JournalEntryEvent {}

pub enum CompanyCommand {
    Create { company: CompanyCode, name: String },
}

impl Aggregate for Company {
    const TYPE: &'static str = "finance.company";
    type State = Company;
    type Event = CompanyEvent;
    type Command = CompanyCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Company,
        command: CompanyCommand,
    ) -> Result<Vec<CompanyEvent>, Vec<Violation>> {
        match command {
            CompanyCommand::Create { company, name } => state.decide_create(company, name),
        }
    }

    fn apply(state: &mut Company, event: &CompanyEvent) {
        Company::apply(state, event);
    }
}

pub enum AccountCommand {
    Create {
        company: CompanyCode,
        number: AccountNumber,
        name: String,
        account_type: AccountType,
        currency: Currency,
    },
    Change {
        number: AccountNumber,
        change: ChangeAccount,
    },
}

impl Aggregate for Account {
    const TYPE: &'static str = "finance.account";
    type State = Option<Account>;
    type Event = AccountEvent;
    type Command = AccountCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<Account>,
        command: AccountCommand,
    ) -> Result<Vec<AccountEvent>, Vec<Violation>> {
        match (state, command) {
            (
                existing,
                AccountCommand::Create {
                    company,
                    number,
                    name,
                    account_type,
                    currency,
                },
            ) => Account::decide_create(
                existing.as_ref(),
                company,
                number,
                name,
                account_type,
                currency,
            ),
            (Some(account), AccountCommand::Change { change, .. }) => account.decide_change(change),
            (None, AccountCommand::Change { number, .. }) => {
                Err(vec![Violation::AccountMissing { number }])
            }
        }
    }

    fn apply(state: &mut Option<Account>, event: &AccountEvent) {
        *state = Account::apply(state.take(), event);
    }
}

/// A fiscal year: whether it exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FiscalYear {
    pub created: Option<(CompanyCode, i32)>,
}

pub enum FiscalYearCommand {
    Create {
        company: CompanyCode,
        year: i32,
        start_month: u32,
        /// Periods of the year that some other year already defines.
        defined_periods: Vec<Period>,
    },
}

impl Aggregate for FiscalYear {
    const TYPE: &'static str = "finance.fiscal_year";
    type State = FiscalYear;
    type Event = FiscalYearEvent;
    type Command = FiscalYearCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &FiscalYear,
        command: FiscalYearCommand,
    ) -> Result<Vec<FiscalYearEvent>, Vec<Violation>> {
        let FiscalYearCommand::Create {
            company,
            year,
            start_month,
            defined_periods,
        } = command;
        decide_create_fiscal_year(
            state.created.is_some(),
            &defined_periods,
            company,
            year,
            start_month,
        )
        .map(|(year, _)| vec![year])
    }

    fn apply(state: &mut FiscalYear, event: &FiscalYearEvent) {
        let FiscalYearEvent::FiscalYearCreated { company, year, .. } = event;
        state.created = Some((company.clone(), *year));
    }
}

pub enum PeriodCommand {
    /// Opens a period of a fiscal year being created (decided with the year).
    Open(PeriodEvent),
    Close,
    Reopen,
}

impl Aggregate for PostingPeriod {
    const TYPE: &'static str = "finance.period";
    type State = Option<PostingPeriod>;
    type Event = PeriodEvent;
    type Command = PeriodCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<PostingPeriod>,
        command: PeriodCommand,
    ) -> Result<Vec<PeriodEvent>, Vec<Violation>> {
        match (state, command) {
            (None, PeriodCommand::Open(opened)) => Ok(vec![opened]),
            (Some(state), PeriodCommand::Open(_)) => Err(vec![Violation::PeriodAlreadyDefined {
                period: state.period,
            }]),
            (Some(state), PeriodCommand::Close) => state.decide_close(),
            (Some(state), PeriodCommand::Reopen) => state.decide_reopen(),
            (None, PeriodCommand::Close | PeriodCommand::Reopen) => Ok(vec![]),
        }
    }

    fn apply(state: &mut Option<PostingPeriod>, event: &PeriodEvent) {
        *state = PostingPeriod::apply(state.take(), event);
    }
}

pub enum JournalEntryCommand {
    Post {
        command: PostJournalEntry,
        ledger: LedgerView,
    },
    /// Links this entry to its reversal; the reversal entry itself is decided by
    /// [`JournalEntry::decide_reverse`].
    Reverse {
        reversal_entry_id: Uuid,
        reversal_date: NaiveDate,
        ledger: LedgerView,
    },
}

impl Aggregate for JournalEntry {
    const TYPE: &'static str = "finance.journal_entry";
    type State = Option<JournalEntry>;
    type Event = JournalEntryEvent;
    type Command = JournalEntryCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<JournalEntry>,
        command: JournalEntryCommand,
    ) -> Result<Vec<JournalEntryEvent>, Vec<Violation>> {
        match (state, command) {
            (_, JournalEntryCommand::Post { command, ledger }) => {
                JournalEntry::decide_post(command, &ledger)
            }
            (
                Some(entry),
                JournalEntryCommand::Reverse {
                    reversal_entry_id,
                    reversal_date,
                    ledger,
                },
            ) => entry
                .decide_reverse(reversal_entry_id, reversal_date, &ledger)
                .map(|(original, _)| original),
            (None, JournalEntryCommand::Reverse { .. }) => Ok(vec![]),
        }
    }

    fn apply(state: &mut Option<JournalEntry>, event: &JournalEntryEvent) {
        *state = JournalEntry::apply(state.take(), event);
    }
}
