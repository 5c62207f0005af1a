//! Finance (FI) domain: companies, chart of accounts, fiscal periods and journal entries.
//!
//! Pure: no I/O, no clock. Ids and dates come in as data. Each aggregate has a state built by
//! `apply` from its events and a `decide` that turns a command into events or rejects it with
//! the rules it breaks (all of them, not just the first).
//!
//! Aggregates (types qualified by the context) and their ids:
//! - `finance.company`: `<company>`
//! - `finance.account`: `<company>/<number>`
//! - `finance.fiscal_year`: `<company>/<year>`, and one `finance.period` per month:
//!   `<company>/<YYYY-MM>`
//! - `finance.journal_entry`: the entry's UUID
//!
//! Invariant protected here: a posted journal entry balances (debits = credits per currency),
//! has 2 to 1,000 lines, posts into an open period, to existing unblocked accounts of its
//! currency. Stored entries are never changed; a reversal is a new entry linked to the original.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
pub use tributary_kernel::master::{CompanyCode, Period};
use tributary_kernel::money::Currency;
use uuid::Uuid;

pub const ENTRY_LINES_MIN: usize = 2;
pub const ENTRY_LINES_MAX: usize = 1_000;
pub const NAME_LENGTH_MAX: usize = 200;
pub const TEXT_LENGTH_MAX: usize = 500;

// ---------------------------------------------------------------------------------------------
// Identifiers
// ---------------------------------------------------------------------------------------------

/// An account number: 1 to 20 characters, letters, digits, `.` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountNumber(String);

impl AccountNumber {
    pub fn parse(text: &str) -> Result<AccountNumber, &'static str> {
        let ok = (1..=20).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if ok {
            Ok(AccountNumber(text.to_owned()))
        } else {
            Err("must be 1 to 20 characters A-Z, a-z, 0-9, '.' or '-'")
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountType {
    Asset,
    Liability,
    Equity,
    Revenue,
    Expense,
}

impl AccountType {
    pub fn parse(text: &str) -> Result<AccountType, &'static str> {
        match text {
            "asset" => Ok(AccountType::Asset),
            "liability" => Ok(AccountType::Liability),
            "equity" => Ok(AccountType::Equity),
            "revenue" => Ok(AccountType::Revenue),
            "expense" => Ok(AccountType::Expense),
            _ => Err("must be one of asset, liability, equity, revenue, expense"),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Asset => "asset",
            AccountType::Liability => "liability",
            AccountType::Equity => "equity",
            AccountType::Revenue => "revenue",
            AccountType::Expense => "expense",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rejections
// ---------------------------------------------------------------------------------------------

/// A broken business rule, with the input field it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("company {company} already exists")]
    CompanyAlreadyExists { company: CompanyCode },
    #[error("account {number} already exists in company {company}")]
    AccountAlreadyExists {
        company: CompanyCode,
        number: AccountNumber,
    },
    #[error("account {number} does not exist")]
    AccountMissing { number: AccountNumber },
    #[error("fiscal year {year} already exists")]
    FiscalYearAlreadyExists { year: i32 },
    #[error("period {period} already belongs to another fiscal year")]
    PeriodAlreadyDefined { period: Period },
    #[error("period {period} is already closed")]
    PeriodAlreadyClosed { period: Period },
    #[error("period {period} is not closed")]
    PeriodNotClosed { period: Period },
    #[error(
        "an entry needs at least {ENTRY_LINES_MIN} and at most {ENTRY_LINES_MAX} lines, got {count}"
    )]
    LineCount { count: usize },
    #[error("debits {debit} and credits {credit} in {currency} differ by {}", debit - credit)]
    EntryNotBalanced {
        currency: Currency,
        debit: Decimal,
        credit: Decimal,
    },
    #[error("account {account} does not exist")]
    AccountNotFound { line: usize, account: AccountNumber },
    #[error("account {account} is blocked for posting")]
    AccountBlocked { line: usize, account: AccountNumber },
    #[error("account {account} is kept in {account_currency}, the line is in {line_currency}")]
    CurrencyMismatch {
        line: usize,
        account: AccountNumber,
        account_currency: Currency,
        line_currency: Currency,
    },
    #[error("no fiscal period is defined for {period}; create the fiscal year first")]
    PeriodNotDefined { field: &'static str, period: Period },
    #[error("period {period} is closed for posting")]
    PeriodClosed { field: &'static str, period: Period },
    #[error("entry {entry_id} was already reversed by entry {reversal_entry_id}")]
    EntryAlreadyReversed {
        entry_id: Uuid,
        reversal_entry_id: Uuid,
    },
    #[error("entry {entry_id} is itself a reversal of entry {original}; post a new entry instead")]
    ReversalOfReversal { entry_id: Uuid, original: Uuid },
    #[error("the reversal date {reversal_date} is before the entry's posting date {posting_date}")]
    ReversalBeforePosting {
        reversal_date: NaiveDate,
        posting_date: NaiveDate,
    },
}

impl Violation {
    /// The request field the violation points at, as a JSON path.
    pub fn field(&self) -> String {
        match self {
            Violation::CompanyAlreadyExists { .. } => "code".into(),
            Violation::AccountAlreadyExists { .. } | Violation::AccountMissing { .. } => {
                "number".into()
            }
            Violation::FiscalYearAlreadyExists { .. } | Violation::PeriodAlreadyDefined { .. } => {
                "year".into()
            }
            Violation::PeriodAlreadyClosed { .. } | Violation::PeriodNotClosed { .. } => {
                "period".into()
            }
            Violation::LineCount { .. } | Violation::EntryNotBalanced { .. } => "lines".into(),
            Violation::AccountNotFound { line, .. } | Violation::AccountBlocked { line, .. } => {
                format!("lines[{line}].account")
            }
            Violation::CurrencyMismatch { line, .. } => format!("lines[{line}].currency"),
            Violation::PeriodNotDefined { field, .. } | Violation::PeriodClosed { field, .. } => {
                (*field).into()
            }
            Violation::EntryAlreadyReversed { .. } | Violation::ReversalOfReversal { .. } => {
                "id".into()
            }
            Violation::ReversalBeforePosting { .. } => "posting_date".into(),
        }
    }

    /// The rule's stable name.
    pub fn rule(&self) -> &'static str {
        match self {
            Violation::CompanyAlreadyExists { .. } => "company_exists",
            Violation::AccountAlreadyExists { .. } => "account_exists",
            Violation::AccountMissing { .. } => "account_not_found",
            Violation::FiscalYearAlreadyExists { .. } => "fiscal_year_exists",
            Violation::PeriodAlreadyDefined { .. } => "period_defined",
            Violation::PeriodAlreadyClosed { .. } => "period_already_closed",
            Violation::PeriodNotClosed { .. } => "period_not_closed",
            Violation::LineCount { .. } => "line_count",
            Violation::EntryNotBalanced { .. } => "entry_not_balanced",
            Violation::AccountNotFound { .. } => "account_not_found",
            Violation::AccountBlocked { .. } => "account_blocked",
            Violation::CurrencyMismatch { .. } => "currency_mismatch",
            Violation::PeriodNotDefined { .. } => "period_not_defined",
            Violation::PeriodClosed { .. } => "period_closed",
            Violation::EntryAlreadyReversed { .. } => "entry_already_reversed",
            Violation::ReversalOfReversal { .. } => "reversal_of_reversal",
            Violation::ReversalBeforePosting { .. } => "reversal_before_posting",
        }
    }
}

fn reject<T>(violation: Violation) -> Result<T, Vec<Violation>> {
    Err(vec![violation])
}

// ---------------------------------------------------------------------------------------------
// Company
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompanyEvent {
    CompanyCreated { company: CompanyCode, name: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Company {
    pub code: Option<CompanyCode>,
    pub name: String,
}

impl Company {
    pub fn decide_create(
        &self,
        company: CompanyCode,
        name: String,
    ) -> Result<Vec<CompanyEvent>, Vec<Violation>> {
        if self.code.is_some() {
            return reject(Violation::CompanyAlreadyExists { company });
        }
        Ok(vec![CompanyEvent::CompanyCreated { company, name }])
    }

    pub fn apply(&mut self, event: &CompanyEvent) {
        match event {
            CompanyEvent::CompanyCreated { company, name } => {
                self.code = Some(company.clone());
                self.name = name.clone();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Account
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountEvent {
    AccountCreated {
        company: CompanyCode,
        number: AccountNumber,
        name: String,
        account_type: AccountType,
        currency: Currency,
    },
    AccountRenamed {
        company: CompanyCode,
        number: AccountNumber,
        name: String,
    },
    AccountBlocked {
        company: CompanyCode,
        number: AccountNumber,
    },
    AccountUnblocked {
        company: CompanyCode,
        number: AccountNumber,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub company: CompanyCode,
    pub number: AccountNumber,
    pub name: String,
    pub account_type: AccountType,
    pub currency: Currency,
    pub blocked: bool,
}

/// A change to an existing account; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeAccount {
    pub name: Option<String>,
    pub blocked: Option<bool>,
}

impl Account {
    pub fn decide_create(
        existing: Option<&Account>,
        company: CompanyCode,
        number: AccountNumber,
        name: String,
        account_type: AccountType,
        currency: Currency,
    ) -> Result<Vec<AccountEvent>, Vec<Violation>> {
        if existing.is_some() {
            return reject(Violation::AccountAlreadyExists { company, number });
        }
        Ok(vec![AccountEvent::AccountCreated {
            company,
            number,
            name,
            account_type,
            currency,
        }])
    }

    /// Renames and blocks or unblocks; a change to the current value produces no event.
    pub fn decide_change(
        &self,
        change: ChangeAccount,
    ) -> Result<Vec<AccountEvent>, Vec<Violation>> {
        let (company, number) = (self.company.clone(), self.number.clone());
        let mut events = Vec::new();
        if let Some(name) = change.name.filter(|name| *name != self.name) {
            events.push(AccountEvent::AccountRenamed {
                company: company.clone(),
                number: number.clone(),
                name,
            });
        }
        match change.blocked {
            Some(true) if !self.blocked => {
                events.push(AccountEvent::AccountBlocked { company, number })
            }
            Some(false) if self.blocked => {
                events.push(AccountEvent::AccountUnblocked { company, number })
            }
            _ => {}
        }
        Ok(events)
    }

    /// Folds an account's events; `None` until it is created.
    pub fn apply(state: Option<Account>, event: &AccountEvent) -> Option<Account> {
        match (state, event) {
            (
                _,
                AccountEvent::AccountCreated {
                    company,
                    number,
                    name,
                    account_type,
                    currency,
                },
            ) => Some(Account {
                company: company.clone(),
                number: number.clone(),
                name: name.clone(),
                account_type: *account_type,
                currency: currency.clone(),
                blocked: false,
            }),
            (Some(mut account), AccountEvent::AccountRenamed { name, .. }) => {
                account.name = name.clone();
                Some(account)
            }
            (Some(mut account), AccountEvent::AccountBlocked { .. }) => {
                account.blocked = true;
                Some(account)
            }
            (Some(mut account), AccountEvent::AccountUnblocked { .. }) => {
                account.blocked = false;
                Some(account)
            }
            (None, _) => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fiscal years and periods
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodRange {
    pub period: Period,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FiscalYearEvent {
    FiscalYearCreated {
        company: CompanyCode,
        year: i32,
        start_month: u32,
        periods: Vec<PeriodRange>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeriodEvent {
    PeriodOpened {
        company: CompanyCode,
        period: Period,
        fiscal_year: i32,
        start_date: NaiveDate,
        end_date: NaiveDate,
    },
    PeriodClosed {
        company: CompanyCode,
        period: Period,
    },
    PeriodReopened {
        company: CompanyCode,
        period: Period,
    },
}

/// The twelve monthly periods of a fiscal year starting in `year`-`start_month`.
pub fn fiscal_year_periods(year: i32, start_month: u32) -> Vec<PeriodRange> {
    let mut period = Period {
        year,
        month: start_month,
    };
    (0..12)
        .map(|_| {
            let range = PeriodRange {
                period,
                start_date: period.first_day(),
                end_date: period.last_day(),
            };
            period = period.next();
            range
        })
        .collect()
}

/// Events creating a fiscal year: one for the year and an opening for each of its periods.
pub fn decide_create_fiscal_year(
    year_exists: bool,
    defined_periods: &[Period],
    company: CompanyCode,
    year: i32,
    start_month: u32,
) -> Result<(FiscalYearEvent, Vec<PeriodEvent>), Vec<Violation>> {
    if year_exists {
        return reject(Violation::FiscalYearAlreadyExists { year });
    }
    let periods = fiscal_year_periods(year, start_month);
    let clashes: Vec<Violation> = periods
        .iter()
        .filter(|range| defined_periods.contains(&range.period))
        .map(|range| Violation::PeriodAlreadyDefined {
            period: range.period,
        })
        .collect();
    if !clashes.is_empty() {
        return Err(clashes);
    }
    let openings = periods
        .iter()
        .map(|range| PeriodEvent::PeriodOpened {
            company: company.clone(),
            period: range.period,
            fiscal_year: year,
            start_date: range.start_date,
            end_date: range.end_date,
        })
        .collect();
    Ok((
        FiscalYearEvent::FiscalYearCreated {
            company,
            year,
            start_month,
            periods,
        },
        openings,
    ))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingPeriod {
    pub company: CompanyCode,
    pub period: Period,
    pub fiscal_year: i32,
    pub closed: bool,
}

impl PostingPeriod {
    pub fn decide_close(&self) -> Result<Vec<PeriodEvent>, Vec<Violation>> {
        if self.closed {
            return reject(Violation::PeriodAlreadyClosed {
                period: self.period,
            });
        }
        Ok(vec![PeriodEvent::PeriodClosed {
            company: self.company.clone(),
            period: self.period,
        }])
    }

    pub fn decide_reopen(&self) -> Result<Vec<PeriodEvent>, Vec<Violation>> {
        if !self.closed {
            return reject(Violation::PeriodNotClosed {
                period: self.period,
            });
        }
        Ok(vec![PeriodEvent::PeriodReopened {
            company: self.company.clone(),
            period: self.period,
        }])
    }

    pub fn apply(state: Option<PostingPeriod>, event: &PeriodEvent) -> Option<PostingPeriod> {
        match (state, event) {
            (
                _,
                PeriodEvent::PeriodOpened {
                    company,
                    period,
                    fiscal_year,
                    ..
                },
            ) => Some(PostingPeriod {
                company: company.clone(),
                period: *period,
                fiscal_year: *fiscal_year,
                closed: false,
            }),
            (Some(mut state), PeriodEvent::PeriodClosed { .. }) => {
                state.closed = true;
                Some(state)
            }
            (Some(mut state), PeriodEvent::PeriodReopened { .. }) => {
                state.closed = false;
                Some(state)
            }
            (None, _) => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Journal entries
// ---------------------------------------------------------------------------------------------

/// One side of a line: exactly one of debit or credit, a positive amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Debit(Decimal),
    Credit(Decimal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInput {
    pub account: AccountNumber,
    pub side: Side,
    pub currency: Currency,
    pub cost_center: Option<String>,
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostJournalEntry {
    pub entry_id: Uuid,
    pub company: CompanyCode,
    pub posting_date: NaiveDate,
    pub document_date: Option<NaiveDate>,
    pub reference: Option<String>,
    pub text: Option<String>,
    pub lines: Vec<LineInput>,
}

/// A stored line. Exactly one of `debit` and `credit` is non-zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalLine {
    pub line_no: u32,
    pub account: AccountNumber,
    pub debit: Decimal,
    pub credit: Decimal,
    pub currency: Currency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_center: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalEntryEvent {
    JournalEntryPosted {
        entry_id: Uuid,
        company: CompanyCode,
        posting_date: NaiveDate,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document_date: Option<NaiveDate>,
        period: Period,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        lines: Vec<JournalLine>,
        /// Set on a reversal: the entry it reverses.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reversal_of: Option<Uuid>,
    },
    /// Links the original to its reversal; the original's lines stay as they were.
    JournalEntryReversed {
        entry_id: Uuid,
        company: CompanyCode,
        reversal_entry_id: Uuid,
        reversal_date: NaiveDate,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub entry_id: Uuid,
    pub company: CompanyCode,
    pub posting_date: NaiveDate,
    pub document_date: Option<NaiveDate>,
    pub period: Period,
    pub reference: Option<String>,
    pub text: Option<String>,
    pub lines: Vec<JournalLine>,
    pub reversal_of: Option<Uuid>,
    pub reversed_by: Option<Uuid>,
}

/// What a posting decision may look at besides the command: the accounts its lines name and
/// the period of its posting date (as found in the event store at decision time).
#[derive(Debug, Clone, Default)]
pub struct LedgerView {
    pub accounts: HashMap<AccountNumber, Account>,
    pub period: Option<PostingPeriod>,
}

impl JournalEntry {
    /// Validates and records a posting. Every broken rule is reported.
    pub fn decide_post(
        command: PostJournalEntry,
        ledger: &LedgerView,
    ) -> Result<Vec<JournalEntryEvent>, Vec<Violation>> {
        let lines =
            Self::check_lines(&command.lines, command.posting_date, "posting_date", ledger)?;
        Ok(vec![JournalEntryEvent::JournalEntryPosted {
            entry_id: command.entry_id,
            company: command.company,
            posting_date: command.posting_date,
            document_date: command.document_date,
            period: Period::of(command.posting_date),
            reference: command.reference,
            text: command.text,
            lines,
            reversal_of: None,
        }])
    }

    /// Reverses this entry on `reversal_date`: the new entry swaps every debit and credit; this
    /// one only gains a link. Returns (events for this entry, events for the reversal entry).
    pub fn decide_reverse(
        &self,
        reversal_entry_id: Uuid,
        reversal_date: NaiveDate,
        ledger: &LedgerView,
    ) -> Result<(Vec<JournalEntryEvent>, Vec<JournalEntryEvent>), Vec<Violation>> {
        if let Some(reversal_entry_id) = self.reversed_by {
            return reject(Violation::EntryAlreadyReversed {
                entry_id: self.entry_id,
                reversal_entry_id,
            });
        }
        if let Some(original) = self.reversal_of {
            return reject(Violation::ReversalOfReversal {
                entry_id: self.entry_id,
                original,
            });
        }
        if reversal_date < self.posting_date {
            return reject(Violation::ReversalBeforePosting {
                reversal_date,
                posting_date: self.posting_date,
            });
        }
        let inputs: Vec<LineInput> = self
            .lines
            .iter()
            .map(|line| LineInput {
                account: line.account.clone(),
                side: if line.debit > Decimal::ZERO {
                    Side::Credit(line.debit)
                } else {
                    Side::Debit(line.credit)
                },
                currency: line.currency.clone(),
                cost_center: line.cost_center.clone(),
                text: line.text.clone(),
            })
            .collect();
        let lines = Self::check_lines(&inputs, reversal_date, "posting_date", ledger)?;
        let original = vec![JournalEntryEvent::JournalEntryReversed {
            entry_id: self.entry_id,
            company: self.company.clone(),
            reversal_entry_id,
            reversal_date,
        }];
        let reversal = vec![JournalEntryEvent::JournalEntryPosted {
            entry_id: reversal_entry_id,
            company: self.company.clone(),
            posting_date: reversal_date,
            document_date: Some(reversal_date),
            period: Period::of(reversal_date),
            reference: self.reference.clone(),
            text: Some(format!("Reversal of {}", self.entry_id)),
            lines,
            reversal_of: Some(self.entry_id),
        }];
        Ok((original, reversal))
    }

    fn check_lines(
        inputs: &[LineInput],
        posting_date: NaiveDate,
        date_field: &'static str,
        ledger: &LedgerView,
    ) -> Result<Vec<JournalLine>, Vec<Violation>> {
        let mut violations = Vec::new();
        if !(ENTRY_LINES_MIN..=ENTRY_LINES_MAX).contains(&inputs.len()) {
            violations.push(Violation::LineCount {
                count: inputs.len(),
            });
        }
        let period = Period::of(posting_date);
        match &ledger.period {
            None => violations.push(Violation::PeriodNotDefined {
                field: date_field,
                period,
            }),
            Some(state) if state.closed => violations.push(Violation::PeriodClosed {
                field: date_field,
                period,
            }),
            Some(state) => assert_eq!(
                state.period, period,
                "the ledger view holds the posting date's period"
            ),
        }
        let mut totals: BTreeMap<Currency, (Decimal, Decimal)> = BTreeMap::new();
        let mut lines = Vec::with_capacity(inputs.len());
        for (index, input) in inputs.iter().enumerate() {
            match ledger.accounts.get(&input.account) {
                None => violations.push(Violation::AccountNotFound {
                    line: index,
                    account: input.account.clone(),
                }),
                Some(account) => {
                    if account.blocked {
                        violations.push(Violation::AccountBlocked {
                            line: index,
                            account: input.account.clone(),
                        });
                    }
                    if account.currency != input.currency {
                        violations.push(Violation::CurrencyMismatch {
                            line: index,
                            account: input.account.clone(),
                            account_currency: account.currency.clone(),
                            line_currency: input.currency.clone(),
                        });
                    }
                }
            }
            let (debit, credit) = match input.side {
                Side::Debit(amount) => (amount, Decimal::ZERO),
                Side::Credit(amount) => (Decimal::ZERO, amount),
            };
            assert!(
                debit >= Decimal::ZERO && credit >= Decimal::ZERO,
                "amounts are parsed positive"
            );
            let total = totals.entry(input.currency.clone()).or_default();
            total.0 += debit;
            total.1 += credit;
            lines.push(JournalLine {
                line_no: u32::try_from(index + 1).unwrap_or(u32::MAX),
                account: input.account.clone(),
                debit,
                credit,
                currency: input.currency.clone(),
                cost_center: input.cost_center.clone(),
                text: input.text.clone(),
            });
        }
        for (currency, (debit, credit)) in totals {
            if debit != credit {
                violations.push(Violation::EntryNotBalanced {
                    currency,
                    debit,
                    credit,
                });
            }
        }
        if violations.is_empty() {
            Ok(lines)
        } else {
            Err(violations)
        }
    }

    pub fn apply(state: Option<JournalEntry>, event: &JournalEntryEvent) -> Option<JournalEntry> {
        match (state, event) {
            (
                _,
                JournalEntryEvent::JournalEntryPosted {
                    entry_id,
                    company,
                    posting_date,
                    document_date,
                    period,
                    reference,
                    text,
                    lines,
                    reversal_of,
                },
            ) => Some(JournalEntry {
                entry_id: *entry_id,
                company: company.clone(),
                posting_date: *posting_date,
                document_date: *document_date,
                period: *period,
                reference: reference.clone(),
                text: text.clone(),
                lines: lines.clone(),
                reversal_of: *reversal_of,
                reversed_by: None,
            }),
            (
                Some(mut entry),
                JournalEntryEvent::JournalEntryReversed {
                    reversal_entry_id, ..
                },
            ) => {
                entry.reversed_by = Some(*reversal_entry_id);
                Some(entry)
            }
            (None, JournalEntryEvent::JournalEntryReversed { .. }) => None,
        }
    }
}
