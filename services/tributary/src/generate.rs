//! `tributary generate`: a realistic finance history for one company, the same for the same
//! seed.
//!
//! The company, chart of accounts and fiscal years go through the normal commands. Journal
//! entries are decided by the domain (`decide_journal_entry` against the month's ledger view,
//! so every entry balances, names open accounts and an open period) and appended straight to
//! the event store in batches of 1,000, which is what makes 10M journal lines reachable here.
//! Volumes follow the season (December high, August low) and grow from year to year; sales,
//! purchases, payments and financing have their own line patterns.
//!
//! Entry ids derive from the seed: generating again into the same store conflicts at the first
//! batch and appends nothing.

use anyhow::{Context, bail};
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tributary_finance::commands::{self, CONTEXT, FISCAL_YEAR};
use tributary_finance::domain::{
    AccountNumber, AccountType, CompanyCode, LedgerView, LineInput, PostJournalEntry, Side,
};
use tributary_kernel::EventStore;
use tributary_kernel::money::Currency;
use tributary_kernel::store::{AppendBatch, Decision};

#[derive(clap::Args, Debug, Clone)]
pub struct GenerateArgs {
    /// Directory of the embedded event store (as for `up`).
    #[arg(long, env = "TRIBUTARY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Event store: postgres://…; default SQLite under --data-dir.
    #[arg(long, env = "TRIBUTARY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Journal entries to generate (2 to 6 lines each, about 3.1 on average).
    #[arg(long, default_value_t = 100_000)]
    pub entries: usize,
    /// Accounts in the chart of accounts (at least 10).
    #[arg(long, default_value_t = 60)]
    pub accounts: usize,
    /// Fiscal years of history, ending with --last-year.
    #[arg(long, default_value_t = 3)]
    pub years: u32,
    #[arg(long, default_value_t = 2026)]
    pub last_year: i32,
    /// Seed: the same seed gives the same history.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Company code (created when missing).
    #[arg(long, default_value = "MAIN")]
    pub company: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// What a run generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generated {
    pub entries: usize,
    pub lines: usize,
}

/// Relative volume per calendar month (January first).
const SEASON: [u32; 12] = [80, 85, 95, 100, 100, 90, 75, 60, 105, 110, 120, 150];
/// Volume growth per year, in percent.
const GROWTH_PERCENT: u32 = 12;
const BATCH_ENTRIES: usize = 1_000;

/// SplitMix64: small, fast, and the same on every platform and version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn uuid(&mut self) -> uuid::Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// An amount in cents, log-uniform from 10.00 to 100,000.00.
    fn cents(&mut self) -> i64 {
        let decade = 3 + self.below(5) as u32; // 10^3 .. 10^7 cents
        let low = 10i64.pow(decade);
        low + self.below((low * 9) as u64) as i64
    }

    /// `total` cents split into `parts` positive amounts.
    fn split(&mut self, total: i64, parts: usize) -> Vec<i64> {
        let parts = parts.clamp(1, total.max(1) as usize);
        let mut cuts: Vec<i64> = (1..parts)
            .map(|_| 1 + self.below((total - 1).max(1) as u64) as i64)
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut amounts = Vec::with_capacity(parts);
        let mut previous = 0;
        for cut in cuts {
            amounts.push(cut - previous);
            previous = cut;
        }
        amounts.push(total - previous);
        amounts
    }
}

/// The chart: account numbers by type, with names.
struct Chart {
    by_type: Vec<(AccountType, Vec<AccountNumber>)>,
}

impl Chart {
    fn of(&self, kind: AccountType) -> &[AccountNumber] {
        self.by_type
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(&[], |(_, numbers)| numbers.as_slice())
    }

    fn all(&self) -> Vec<AccountNumber> {
        self.by_type
            .iter()
            .flat_map(|(_, n)| n.iter().cloned())
            .collect()
    }
}

/// An account to create: number, name, type.
type AccountDefinition = (AccountNumber, String, AccountType);
/// Amounts in cents on accounts, one side of an entry.
type Legs<'a> = Vec<(&'a AccountNumber, i64)>;

fn chart(accounts: usize) -> anyhow::Result<(Chart, Vec<AccountDefinition>)> {
    // Share of the chart per type, in percent, and the first number of each range.
    let plan = [
        (AccountType::Asset, 20, 1000, "Asset"),
        (AccountType::Liability, 10, 2000, "Liability"),
        (AccountType::Equity, 5, 3000, "Equity"),
        (AccountType::Revenue, 20, 4000, "Revenue"),
        (AccountType::Expense, 45, 5000, "Expense"),
    ];
    let mut by_type = Vec::new();
    let mut definitions = Vec::new();
    for (kind, share, base, label) in plan {
        let count = (accounts * share / 100).max(1);
        let mut numbers = Vec::with_capacity(count);
        for k in 0..count {
            let number = format!("{}", base + 10 * k);
            let number = AccountNumber::parse(&number).map_err(anyhow::Error::msg)?;
            let name =
                account_name(kind, k).map_or_else(|| format!("{label} {}", k + 1), str::to_owned);
            definitions.push((number.clone(), name, kind));
            numbers.push(number);
        }
        by_type.push((kind, numbers));
    }
    Ok((Chart { by_type }, definitions))
}

/// The usual first accounts of each type (dashboards find cash and bank accounts by name).
fn account_name(kind: AccountType, index: usize) -> Option<&'static str> {
    let names: &[&str] = match kind {
        AccountType::Asset => &[
            "Cash",
            "Bank",
            "Bank savings",
            "Accounts receivable",
            "Inventory",
        ],
        AccountType::Liability => &["Accounts payable", "VAT payable", "Bank loan"],
        AccountType::Equity => &["Share capital", "Retained earnings"],
        AccountType::Revenue => &["Product sales", "Service revenue"],
        AccountType::Expense => &["Cost of goods sold", "Salaries", "Rent", "Utilities"],
    };
    names.get(index).copied()
}

/// Entries per (year, month): seasonal weights times yearly growth, summing to `entries`.
fn volumes(entries: usize, first_year: i32, years: u32) -> Vec<(i32, u32, usize)> {
    let mut weights = Vec::new();
    let mut growth = 100u64;
    for y in 0..years {
        for (m, season) in SEASON.iter().enumerate() {
            weights.push((
                first_year + y as i32,
                m as u32 + 1,
                growth * u64::from(*season),
            ));
        }
        growth = growth * u64::from(100 + GROWTH_PERCENT) / 100;
    }
    let total: u64 = weights.iter().map(|(_, _, w)| w).sum();
    let mut out: Vec<(i32, u32, usize)> = weights
        .iter()
        .map(|(y, m, w)| (*y, *m, (entries as u64 * w / total) as usize))
        .collect();
    let assigned: usize = out.iter().map(|(_, _, n)| n).sum();
    if let Some(last) = out.last_mut() {
        last.2 += entries - assigned;
    }
    out
}

/// One entry's lines: a sale, a purchase, a payment or financing.
fn lines(rng: &mut Rng, chart: &Chart, eur: &Currency) -> Vec<LineInput> {
    let line = |account: &AccountNumber, side| LineInput {
        account: account.clone(),
        side,
        currency: eur.clone(),
        cost_center: None,
        text: None,
    };
    let cents = rng.cents();
    let amount = |c: i64| Decimal::new(c, 2);
    let (assets, liabilities, equity, revenue, expense) = (
        chart.of(AccountType::Asset),
        chart.of(AccountType::Liability),
        chart.of(AccountType::Equity),
        chart.of(AccountType::Revenue),
        chart.of(AccountType::Expense),
    );
    let kind = rng.below(100);
    let (debits, credits): (Legs, Legs) = if kind < 40 {
        // Sale: receivable or bank against one to three revenue lines.
        let parts = 1 + rng.below(3) as usize;
        let split = rng.split(cents, parts);
        (
            vec![(rng.pick(assets), cents)],
            split.into_iter().map(|c| (rng.pick(revenue), c)).collect(),
        )
    } else if kind < 85 {
        // Purchase: one to four expense lines against bank or payables.
        let parts = 1 + rng.below(4) as usize;
        let split = rng.split(cents, parts);
        let credit = if rng.below(2) == 0 {
            rng.pick(assets)
        } else {
            rng.pick(liabilities)
        };
        (
            split.into_iter().map(|c| (rng.pick(expense), c)).collect(),
            vec![(credit, cents)],
        )
    } else if kind < 95 {
        // Payment of a liability.
        (
            vec![(rng.pick(liabilities), cents)],
            vec![(rng.pick(assets), cents)],
        )
    } else {
        // Financing: cash in from equity or a loan.
        let credit = if rng.below(2) == 0 {
            rng.pick(equity)
        } else {
            rng.pick(liabilities)
        };
        (vec![(rng.pick(assets), cents)], vec![(credit, cents)])
    };
    debits
        .into_iter()
        .map(|(a, c)| line(a, Side::Debit(amount(c))))
        .chain(
            credits
                .into_iter()
                .map(|(a, c)| line(a, Side::Credit(amount(c)))),
        )
        .collect()
}

/// Creates what is missing of the company, its chart and its fiscal years (normal commands).
async fn set_up(
    store: &EventStore,
    company: &CompanyCode,
    definitions: &[AccountDefinition],
    first_year: i32,
    last_year: i32,
    eur: &Currency,
) -> anyhow::Result<()> {
    tributary_finance::ensure_company(store, company, &format!("Company {company}"))
        .await
        .map_err(anyhow::Error::msg)?;
    let existing = commands::list_accounts(store, company).await?;
    for (number, name, kind) in definitions {
        if existing.iter().any(|a| &a.number == number) {
            continue;
        }
        let decision = commands::create_account(
            store,
            company.clone(),
            number.clone(),
            name.clone(),
            *kind,
            eur.clone(),
        )
        .await?;
        commit(store, decision).await?;
    }
    for year in first_year..=last_year {
        let id = format!("{company}/{year}");
        if store
            .load(FISCAL_YEAR, std::slice::from_ref(&id))
            .await?
            .contains_key(&id)
        {
            continue;
        }
        let decision = commands::create_fiscal_year(store, company.clone(), year, 1).await?;
        commit(store, decision).await?;
    }
    Ok(())
}

/// Appends a setup command's decision.
async fn commit<T>(store: &EventStore, decision: Decision<T>) -> anyhow::Result<()> {
    store
        .append(decision.into_batch(CONTEXT, Default::default(), None).0)
        .await?;
    Ok(())
}

fn progress(done: usize, total: usize, lines: usize, started: Instant) {
    const WIDTH: usize = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    let seconds = started.elapsed().as_secs().max(1);
    let rate = lines as u64 / seconds;
    let remaining = (total - done) as u64 * seconds / (done as u64).max(1);
    eprint!(
        "\rgenerating [{}{}] {done}/{total} entries, {lines} lines, {rate} lines/s, ETA {remaining} s   ",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
    );
    let _ = std::io::stderr().flush();
}

pub async fn run(args: GenerateArgs) -> anyhow::Result<Generated> {
    if args.accounts < 10 {
        bail!(
            "--accounts must be at least 10 (one range per account type); got {}",
            args.accounts
        );
    }
    if args.years == 0 {
        bail!("--years must be at least 1");
    }
    let company = CompanyCode::parse(&args.company)
        .map_err(|rule| anyhow::anyhow!("--company {:?} {rule}", args.company))?;
    let eur = Currency::parse("EUR").map_err(anyhow::Error::msg)?;
    if args.database_url.is_none() {
        std::fs::create_dir_all(&args.data_dir).with_context(|| {
            format!("while creating data directory {}", args.data_dir.display())
        })?;
    }
    let database_url = crate::store_url(&args.data_dir, args.database_url.as_deref());
    let store = EventStore::connect(&database_url, 4)
        .await
        .with_context(|| {
            format!(
                "while connecting the event store at {}",
                crate::redact(&database_url)
            )
        })?;
    let first_year = args.last_year - args.years as i32 + 1;
    let (chart, definitions) = chart(args.accounts)?;
    set_up(
        &store,
        &company,
        &definitions,
        first_year,
        args.last_year,
        &eur,
    )
    .await?;

    let numbers = chart.all();
    let mut rng = Rng(args.seed);
    let started = Instant::now();
    let mut last_drawn = Instant::now();
    let (mut done, mut lines_total) = (0usize, 0usize);
    let mut batch = Vec::with_capacity(BATCH_ENTRIES);
    for (year, month, count) in volumes(args.entries, first_year, args.years) {
        let first = NaiveDate::from_ymd_opt(year, month, 1).context("month start")?;
        let days = (first + chrono::Months::new(1) - first).num_days() as u64;
        // The month's accounts and open period, read once through the normal command path.
        let (_, view, _): (_, LedgerView, _) =
            commands::ledger_view(&store, Some(company.as_str()), first, &numbers).await?;
        let mut dates: Vec<NaiveDate> = (0..count)
            .map(|_| first.with_day(1 + rng.below(days) as u32).unwrap_or(first))
            .collect();
        dates.sort_unstable();
        for date in dates {
            let command = PostJournalEntry {
                entry_id: rng.uuid(),
                company: company.clone(),
                posting_date: date,
                document_date: Some(date),
                reference: Some(format!("GEN-{}", done + 1)),
                text: None,
                lines: lines(&mut rng, &chart, &eur),
            };
            lines_total += command.lines.len();
            let decision = commands::decide_journal_entry(command, &view, Vec::new())
                .with_context(|| format!("generated entry {} was refused", done + 1))?;
            batch.extend(decision.writes);
            done += 1;
            if batch.len() >= BATCH_ENTRIES {
                append(&store, &mut batch).await?;
                if !args.quiet && last_drawn.elapsed() > Duration::from_millis(200) {
                    progress(done, args.entries, lines_total, started);
                    last_drawn = Instant::now();
                }
            }
        }
    }
    append(&store, &mut batch).await?;
    if !args.quiet {
        progress(done, args.entries, lines_total, started);
        eprintln!();
    }
    Ok(Generated {
        entries: done,
        lines: lines_total,
    })
}

async fn append(
    store: &EventStore,
    writes: &mut Vec<tributary_kernel::StreamWrite>,
) -> anyhow::Result<()> {
    if writes.is_empty() {
        return Ok(());
    }
    store
        .append(AppendBatch {
            context: CONTEXT.into(),
            writes: std::mem::take(writes),
            reads: vec![],
            metadata: Default::default(),
            idempotency: None,
            time: chrono::Utc::now(),
        })
        .await
        .context(
            "appending generated entries (the same seed generated into this store already?)",
        )?;
    Ok(())
}
