//! Given/when/then tests of the finance rules on the pure domain: each rule and its rejection.

#![allow(clippy::unwrap_used)]

use crate::domain::*;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::str::FromStr;
use tributary_kernel::money::Currency;
use uuid::Uuid;

fn company() -> CompanyCode {
    CompanyCode::parse("MAIN").unwrap()
}
fn number(n: &str) -> AccountNumber {
    AccountNumber::parse(n).unwrap()
}
fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}
fn usd() -> Currency {
    Currency::parse("USD").unwrap()
}
fn date(text: &str) -> NaiveDate {
    NaiveDate::from_str(text).unwrap()
}
fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// Given these account and period events, the ledger a posting sees.
fn given(account_events: &[AccountEvent], period_events: &[PeriodEvent]) -> LedgerView {
    let mut accounts: HashMap<AccountNumber, Option<Account>> = HashMap::new();
    for event in account_events {
        let key = match event {
            AccountEvent::AccountCreated { number, .. }
            | AccountEvent::AccountRenamed { number, .. }
            | AccountEvent::AccountBlocked { number, .. }
            | AccountEvent::AccountUnblocked { number, .. } => number.clone(),
        };
        let state = accounts.remove(&key).flatten();
        accounts.insert(key, Account::apply(state, event));
    }
    let period = period_events.iter().fold(None, PostingPeriod::apply);
    LedgerView {
        accounts: accounts
            .into_iter()
            .filter_map(|(k, v)| v.map(|a| (k, a)))
            .collect(),
        period,
    }
}

fn created(n: &str, account_type: AccountType, currency: Currency) -> AccountEvent {
    AccountEvent::AccountCreated {
        company: company(),
        number: number(n),
        name: format!("Account {n}"),
        account_type,
        currency,
    }
}

fn opened(period: &str) -> PeriodEvent {
    let period = Period::parse(period).unwrap();
    PeriodEvent::PeriodOpened {
        company: company(),
        period,
        fiscal_year: period.year,
        start_date: period.first_day(),
        end_date: period.last_day(),
    }
}

fn standard_ledger() -> LedgerView {
    given(
        &[
            created("1000", AccountType::Asset, eur()),
            created("4000", AccountType::Revenue, eur()),
            created("1100", AccountType::Asset, usd()),
        ],
        &[opened("2026-01")],
    )
}

fn line(account: &str, side: Side, currency: Currency) -> LineInput {
    LineInput {
        account: number(account),
        side,
        currency,
        cost_center: None,
        text: None,
    }
}

fn entry(lines: Vec<LineInput>) -> PostJournalEntry {
    PostJournalEntry {
        entry_id: Uuid::from_u128(1),
        company: company(),
        posting_date: date("2026-01-15"),
        document_date: None,
        reference: Some("INV-1".into()),
        text: None,
        lines,
    }
}

fn balanced() -> Vec<LineInput> {
    vec![
        line("1000", Side::Debit(dec("1250.00")), eur()),
        line("4000", Side::Credit(dec("1250.00")), eur()),
    ]
}

fn rules(result: Result<Vec<JournalEntryEvent>, Vec<Violation>>) -> Vec<&'static str> {
    result
        .expect_err("the command must be rejected")
        .iter()
        .map(Violation::rule)
        .collect()
}

#[test]
fn a_balanced_entry_in_an_open_period_is_posted_with_numbered_lines() {
    let events = JournalEntry::decide_post(entry(balanced()), &standard_ledger()).unwrap();
    let [JournalEntryEvent::JournalEntryPosted { lines, period, .. }] = events.as_slice() else {
        panic!("one posting expected: {events:?}")
    };
    assert_eq!(period.to_string(), "2026-01");
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0].line_no, lines[0].debit, lines[0].credit),
        (1, dec("1250.00"), Decimal::ZERO)
    );
    assert_eq!(
        (lines[1].line_no, lines[1].debit, lines[1].credit),
        (2, Decimal::ZERO, dec("1250.00"))
    );
}

#[test]
fn an_unbalanced_entry_is_rejected_with_both_totals() {
    let lines = vec![
        line("1000", Side::Debit(dec("100.00")), eur()),
        line("4000", Side::Credit(dec("99.99")), eur()),
    ];
    let violations = JournalEntry::decide_post(entry(lines), &standard_ledger()).unwrap_err();
    assert_eq!(
        violations,
        vec![Violation::EntryNotBalanced {
            currency: eur(),
            debit: dec("100.00"),
            credit: dec("99.99")
        }]
    );
}

#[test]
fn balance_is_checked_per_currency() {
    let ledger = given(
        &[
            created("1000", AccountType::Asset, eur()),
            created("1100", AccountType::Asset, usd()),
            created("4000", AccountType::Revenue, eur()),
            created("4100", AccountType::Revenue, usd()),
        ],
        &[opened("2026-01")],
    );
    // Totals balance across currencies (100 + 50 = 150) but not within each one.
    let lines = vec![
        line("1000", Side::Debit(dec("100")), eur()),
        line("1100", Side::Debit(dec("50")), usd()),
        line("4000", Side::Credit(dec("50")), eur()),
        line("4100", Side::Credit(dec("100")), usd()),
    ];
    assert_eq!(
        rules(JournalEntry::decide_post(entry(lines), &ledger)),
        vec!["entry_not_balanced", "entry_not_balanced"]
    );
}

#[test]
fn fewer_than_two_or_more_than_a_thousand_lines_are_rejected() {
    assert_eq!(
        rules(JournalEntry::decide_post(entry(vec![]), &standard_ledger())),
        vec!["line_count"]
    );
    let one = vec![line("1000", Side::Debit(dec("1")), eur())];
    assert!(
        rules(JournalEntry::decide_post(entry(one), &standard_ledger())).contains(&"line_count")
    );
    let mut many: Vec<LineInput> = (0..500).flat_map(|_| balanced()).collect();
    assert!(
        JournalEntry::decide_post(entry(many.clone()), &standard_ledger()).is_ok(),
        "1,000 lines are allowed"
    );
    many.push(line("1000", Side::Debit(dec("0")), eur()));
    assert_eq!(
        rules(JournalEntry::decide_post(entry(many), &standard_ledger())),
        vec!["line_count"]
    );
}

#[test]
fn unknown_blocked_and_wrong_currency_accounts_are_rejected_per_line() {
    let ledger = given(
        &[
            created("1000", AccountType::Asset, eur()),
            created("4000", AccountType::Revenue, eur()),
            AccountEvent::AccountBlocked {
                company: company(),
                number: number("4000"),
            },
        ],
        &[opened("2026-01")],
    );
    let lines = vec![
        line("1000", Side::Debit(dec("10")), usd()),
        line("4000", Side::Credit(dec("5")), eur()),
        line("9999", Side::Credit(dec("5")), eur()),
    ];
    let violations = JournalEntry::decide_post(entry(lines), &ledger).unwrap_err();
    let fields: Vec<(String, &str)> = violations.iter().map(|v| (v.field(), v.rule())).collect();
    assert!(
        fields.contains(&("lines[0].currency".into(), "currency_mismatch")),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("lines[1].account".into(), "account_blocked")),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("lines[2].account".into(), "account_not_found")),
        "{fields:?}"
    );
}

#[test]
fn unblocking_makes_an_account_postable_again() {
    let ledger = given(
        &[
            created("1000", AccountType::Asset, eur()),
            created("4000", AccountType::Revenue, eur()),
            AccountEvent::AccountBlocked {
                company: company(),
                number: number("4000"),
            },
            AccountEvent::AccountUnblocked {
                company: company(),
                number: number("4000"),
            },
        ],
        &[opened("2026-01")],
    );
    assert!(JournalEntry::decide_post(entry(balanced()), &ledger).is_ok());
}

#[test]
fn postings_into_closed_or_undefined_periods_are_rejected() {
    let closed = given(
        &[
            created("1000", AccountType::Asset, eur()),
            created("4000", AccountType::Revenue, eur()),
        ],
        &[
            opened("2026-01"),
            PeriodEvent::PeriodClosed {
                company: company(),
                period: Period::parse("2026-01").unwrap(),
            },
        ],
    );
    assert_eq!(
        rules(JournalEntry::decide_post(entry(balanced()), &closed)),
        vec!["period_closed"]
    );
    let undefined = given(
        &[
            created("1000", AccountType::Asset, eur()),
            created("4000", AccountType::Revenue, eur()),
        ],
        &[],
    );
    assert_eq!(
        rules(JournalEntry::decide_post(entry(balanced()), &undefined)),
        vec!["period_not_defined"]
    );
    let reopened = given(
        &[
            created("1000", AccountType::Asset, eur()),
            created("4000", AccountType::Revenue, eur()),
        ],
        &[
            opened("2026-01"),
            PeriodEvent::PeriodClosed {
                company: company(),
                period: Period::parse("2026-01").unwrap(),
            },
            PeriodEvent::PeriodReopened {
                company: company(),
                period: Period::parse("2026-01").unwrap(),
            },
        ],
    );
    assert!(JournalEntry::decide_post(entry(balanced()), &reopened).is_ok());
}

#[test]
fn closing_twice_and_reopening_an_open_period_are_rejected() {
    let open = [opened("2026-03")]
        .iter()
        .fold(None, PostingPeriod::apply)
        .unwrap();
    assert_eq!(
        open.decide_reopen().unwrap_err()[0].rule(),
        "period_not_closed"
    );
    let events = open.decide_close().unwrap();
    let closed = events
        .iter()
        .fold(Some(open), PostingPeriod::apply)
        .unwrap();
    assert!(closed.closed);
    assert_eq!(
        closed.decide_close().unwrap_err()[0].rule(),
        "period_already_closed"
    );
}

#[test]
fn a_reversal_swaps_debits_and_credits_and_links_both_entries() {
    let ledger = standard_ledger();
    let posted = JournalEntry::decide_post(entry(balanced()), &ledger).unwrap();
    let original = posted.iter().fold(None, JournalEntry::apply).unwrap();
    let reversal_id = Uuid::from_u128(2);
    let (link, reversal) = original
        .decide_reverse(reversal_id, date("2026-01-31"), &ledger)
        .unwrap();
    assert_eq!(
        link,
        vec![JournalEntryEvent::JournalEntryReversed {
            entry_id: original.entry_id,
            company: company(),
            reversal_entry_id: reversal_id,
            reversal_date: date("2026-01-31")
        }]
    );
    let reversed = reversal.iter().fold(None, JournalEntry::apply).unwrap();
    assert_eq!(reversed.reversal_of, Some(original.entry_id));
    for (a, b) in original.lines.iter().zip(&reversed.lines) {
        assert_eq!((a.debit, a.credit), (b.credit, b.debit));
        assert_eq!(a.account, b.account);
    }
    // The original keeps its lines and gains only the link.
    let linked = link
        .iter()
        .fold(Some(original.clone()), JournalEntry::apply)
        .unwrap();
    assert_eq!(linked.lines, original.lines);
    assert_eq!(linked.reversed_by, Some(reversal_id));
    // And cannot be reversed twice.
    assert_eq!(
        linked
            .decide_reverse(Uuid::from_u128(3), date("2026-01-31"), &ledger)
            .unwrap_err()[0]
            .rule(),
        "entry_already_reversed"
    );
    assert_eq!(
        reversed
            .decide_reverse(Uuid::from_u128(4), date("2026-01-31"), &ledger)
            .unwrap_err()[0]
            .rule(),
        "reversal_of_reversal"
    );
}

#[test]
fn a_reversal_needs_an_open_period_on_its_own_date() {
    let ledger = standard_ledger();
    let original = JournalEntry::decide_post(entry(balanced()), &ledger)
        .unwrap()
        .iter()
        .fold(None, JournalEntry::apply)
        .unwrap();
    let no_february = given(
        &[
            created("1000", AccountType::Asset, eur()),
            created("4000", AccountType::Revenue, eur()),
        ],
        &[],
    );
    let rejected = original
        .decide_reverse(Uuid::from_u128(2), date("2026-02-01"), &no_february)
        .unwrap_err();
    assert_eq!(rejected[0].rule(), "period_not_defined");
    let early = original
        .decide_reverse(Uuid::from_u128(2), date("2026-01-01"), &ledger)
        .unwrap_err();
    assert_eq!(early[0].rule(), "reversal_before_posting");
}

#[test]
fn accounts_are_created_once_renamed_and_blocked() {
    let events = Account::decide_create(
        None,
        company(),
        number("1000"),
        "Cash".into(),
        AccountType::Asset,
        eur(),
    )
    .unwrap();
    let account = events.iter().fold(None, Account::apply).unwrap();
    let again = Account::decide_create(
        Some(&account),
        company(),
        number("1000"),
        "Cash".into(),
        AccountType::Asset,
        eur(),
    );
    assert_eq!(again.unwrap_err()[0].rule(), "account_exists");
    let change = account
        .decide_change(ChangeAccount {
            name: Some("Cash at bank".into()),
            blocked: Some(true),
        })
        .unwrap();
    assert_eq!(change.len(), 2);
    let changed = change
        .iter()
        .fold(Some(account.clone()), Account::apply)
        .unwrap();
    assert_eq!(
        (changed.name.as_str(), changed.blocked),
        ("Cash at bank", true)
    );
    // Setting what is already there stores nothing.
    assert!(
        changed
            .decide_change(ChangeAccount {
                name: Some("Cash at bank".into()),
                blocked: Some(true)
            })
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_fiscal_year_has_twelve_monthly_periods_from_its_start_month() {
    let calendar = fiscal_year_periods(2026, 1);
    assert_eq!(calendar.len(), 12);
    assert_eq!(
        (
            calendar[0].period.to_string(),
            calendar[11].period.to_string()
        ),
        ("2026-01".into(), "2026-12".into())
    );
    assert_eq!(calendar[1].end_date, date("2026-02-28"));
    let april = fiscal_year_periods(2026, 4);
    assert_eq!(
        (april[0].period.to_string(), april[11].period.to_string()),
        ("2026-04".into(), "2027-03".into())
    );
    assert_eq!(
        decide_create_fiscal_year(true, &[], company(), 2026, 1).unwrap_err()[0].rule(),
        "fiscal_year_exists"
    );
    let overlap = decide_create_fiscal_year(
        false,
        &[Period::parse("2027-01").unwrap()],
        company(),
        2026,
        4,
    )
    .unwrap_err();
    assert_eq!(
        overlap,
        vec![Violation::PeriodAlreadyDefined {
            period: Period::parse("2027-01").unwrap()
        }]
    );
    let (_, openings) = decide_create_fiscal_year(false, &[], company(), 2026, 1).unwrap();
    assert_eq!(openings.len(), 12);
}

#[test]
fn a_company_is_created_once() {
    let mut state = Company::default();
    let events = state.decide_create(company(), "Main".into()).unwrap();
    events.iter().for_each(|e| state.apply(e));
    assert_eq!(
        state.decide_create(company(), "Main".into()).unwrap_err()[0].rule(),
        "company_exists"
    );
}

#[test]
fn golden_event_fixtures_read_back_as_their_event_types() {
    // One fixture per event type and version (fixtures/events/<aggregate type>/); a change
    // that breaks one needs an upcaster, a new event type needs its fixture.
    let problems = crate::module().fixture_problems();
    assert!(problems.is_empty(), "{problems:#?}");
}
