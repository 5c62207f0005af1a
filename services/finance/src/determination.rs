//! Account determination for the postings finance makes on other contexts' behalf: which
//! account takes which part of a goods movement or a vendor invoice, per company and valuation
//! class. The other contexts know nothing of accounts.
//!
//! ```text
//!  key (inventory, gr_ir_clearing, …) + valuation class ──► the class's account, else the
//!                                                          company's default for the key
//! ```
//! Stream `finance.account_determination`, one per company; each change replaces the whole
//! determination (`MaterialsAccountsSet`). REST: `PUT/GET /api/v1/account-determination/materials`.

use crate::api::CompanyQuery;
use crate::commands::{self, CONTEXT, FinanceError};
use crate::domain::{Account, AccountNumber, CompanyCode};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tributary_kernel::aggregate::{self, Loaded};
use tributary_kernel::auth::{Access::Permission, Auth, Routes};
use tributary_kernel::command::{Checks, Command};
use tributary_kernel::event::DomainEvent;
use tributary_kernel::http::ApiError;
use tributary_kernel::store::Decision;
use tributary_kernel::{Aggregate, EventStore, Platform};
use tributary_materials::events::ValuationClass;

/// What an account is determined for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKey {
    /// Stock value (per valuation class).
    Inventory,
    /// Goods received not yet invoiced, invoiced not yet received.
    GrIrClearing,
    /// Invoice or return prices that differ from the order price, where stock cannot take them.
    PriceDifference,
    /// Goods issued to a cost centre.
    Consumption,
    Scrap,
    /// Physical count differences.
    InventoryDifference,
    /// The vendors' reconciliation account.
    AccountsPayable,
    /// Cash discount taken on payment.
    CashDiscount,
    /// Where vendor payments leave from, unless the payment names an account.
    Bank,
    /// Goods delivered to customers (and back, with their returns).
    CostOfGoodsSold,
    /// The customers' reconciliation account.
    Receivable,
    /// Sales revenue (net of tax).
    Revenue,
    /// Credit memos for returns, a contra-revenue account.
    SalesReturns,
    /// Output tax owed on sales.
    TaxPayable,
    /// Cash discounts customers took.
    SalesDiscount,
    /// Production orders' costs until their output is received or their variance settled.
    WorkInProcess,
    /// What settling a production order leaves: actual less what its receipts took.
    ProductionVariance,
    /// Work centres' activity charged to production orders, credited to their cost centres.
    ActivityAllocation,
}

impl AccountKey {
    pub const ALL: [AccountKey; 18] = [
        AccountKey::Inventory,
        AccountKey::GrIrClearing,
        AccountKey::PriceDifference,
        AccountKey::Consumption,
        AccountKey::Scrap,
        AccountKey::InventoryDifference,
        AccountKey::AccountsPayable,
        AccountKey::CashDiscount,
        AccountKey::Bank,
        AccountKey::CostOfGoodsSold,
        AccountKey::Receivable,
        AccountKey::Revenue,
        AccountKey::SalesReturns,
        AccountKey::TaxPayable,
        AccountKey::SalesDiscount,
        AccountKey::WorkInProcess,
        AccountKey::ProductionVariance,
        AccountKey::ActivityAllocation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKey::Inventory => "inventory",
            AccountKey::GrIrClearing => "gr_ir_clearing",
            AccountKey::PriceDifference => "price_difference",
            AccountKey::Consumption => "consumption",
            AccountKey::Scrap => "scrap",
            AccountKey::InventoryDifference => "inventory_difference",
            AccountKey::AccountsPayable => "accounts_payable",
            AccountKey::CashDiscount => "cash_discount",
            AccountKey::Bank => "bank",
            AccountKey::CostOfGoodsSold => "cost_of_goods_sold",
            AccountKey::Receivable => "receivable",
            AccountKey::Revenue => "revenue",
            AccountKey::SalesReturns => "sales_returns",
            AccountKey::TaxPayable => "tax_payable",
            AccountKey::SalesDiscount => "sales_discount",
            AccountKey::WorkInProcess => "work_in_process",
            AccountKey::ProductionVariance => "production_variance",
            AccountKey::ActivityAllocation => "activity_allocation",
        }
    }

    pub fn parse(text: &str) -> Result<AccountKey, String> {
        AccountKey::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "must be one of {}",
                    AccountKey::ALL.map(AccountKey::as_str).join(", ")
                )
            })
    }
}

pub type Accounts = BTreeMap<AccountKey, AccountNumber>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeterminationEvent {
    MaterialsAccountsSet {
        company: CompanyCode,
        defaults: Accounts,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        valuation_classes: BTreeMap<String, Accounts>,
    },
}

impl DomainEvent for DeterminationEvent {}

/// A company's account determination for materials postings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountDetermination {
    pub company: Option<CompanyCode>,
    pub defaults: Accounts,
    pub valuation_classes: BTreeMap<String, Accounts>,
}

impl AccountDetermination {
    /// The account for `key` in `valuation_class`, else the company's default.
    pub fn account(&self, key: AccountKey, valuation_class: &str) -> Option<&AccountNumber> {
        self.valuation_classes
            .get(valuation_class)
            .and_then(|accounts| accounts.get(&key))
            .or_else(|| self.defaults.get(&key))
    }
}

/// A new determination, with the accounts of the company's chart it names.
pub struct SetAccounts {
    pub company: CompanyCode,
    pub defaults: Accounts,
    pub valuation_classes: BTreeMap<String, Accounts>,
    pub chart: BTreeMap<AccountNumber, Account>,
}

/// An account the determination names that the chart does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAccount {
    pub field: String,
    pub account: AccountNumber,
}

impl Aggregate for AccountDetermination {
    const TYPE: &'static str = "finance.account_determination";
    type State = AccountDetermination;
    type Event = DeterminationEvent;
    type Command = SetAccounts;
    type Rejection = Vec<UnknownAccount>;

    fn decide(
        state: &AccountDetermination,
        command: SetAccounts,
    ) -> Result<Vec<DeterminationEvent>, Vec<UnknownAccount>> {
        let mut unknown = Vec::new();
        let named = command
            .defaults
            .iter()
            .map(|(key, account)| (format!("defaults.{}", key.as_str()), account))
            .chain(
                command
                    .valuation_classes
                    .iter()
                    .flat_map(|(class, accounts)| {
                        accounts.iter().map(move |(key, account)| {
                            (
                                format!("valuation_classes.{class}.{}", key.as_str()),
                                account,
                            )
                        })
                    }),
            );
        for (field, account) in named {
            if !command.chart.contains_key(account) {
                unknown.push(UnknownAccount {
                    field,
                    account: account.clone(),
                });
            }
        }
        if !unknown.is_empty() {
            return Err(unknown);
        }
        if state.company.is_some()
            && state.defaults == command.defaults
            && state.valuation_classes == command.valuation_classes
        {
            return Ok(Vec::new());
        }
        Ok(vec![DeterminationEvent::MaterialsAccountsSet {
            company: command.company,
            defaults: command.defaults,
            valuation_classes: command.valuation_classes,
        }])
    }

    fn apply(state: &mut AccountDetermination, event: &DeterminationEvent) {
        let DeterminationEvent::MaterialsAccountsSet {
            company,
            defaults,
            valuation_classes,
        } = event;
        state.company = Some(company.clone());
        state.defaults = defaults.clone();
        state.valuation_classes = valuation_classes.clone();
    }
}

pub async fn load(
    store: &EventStore,
    company: &CompanyCode,
) -> Result<Loaded<AccountDetermination>, FinanceError> {
    Ok(aggregate::load::<AccountDetermination>(store, company.as_str()).await?)
}

// ----- REST -----------------------------------------------------------------------------------

pub fn router() -> Routes {
    use crate::permissions::{ACCOUNT_DETERMINATION_READ, ACCOUNT_DETERMINATION_WRITE};
    Routes::new()
        .put(
            "/api/v1/account-determination/materials",
            Permission(&ACCOUNT_DETERMINATION_WRITE),
            set_accounts,
        )
        .accepts::<SetAccountsBody>()
        .get(
            "/api/v1/account-determination/materials",
            Permission(&ACCOUNT_DETERMINATION_READ),
            get_accounts,
        )
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SetAccountsBody {
    company: Option<String>,
    defaults: BTreeMap<String, String>,
    #[serde(default)]
    valuation_classes: BTreeMap<String, BTreeMap<String, String>>,
}

fn accounts_json(accounts: &Accounts) -> Value {
    accounts
        .iter()
        .map(|(key, account)| (key.as_str().to_owned(), json!(account)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn determination_json(determination: &AccountDetermination) -> Value {
    json!({
        "company": determination.company,
        "defaults": accounts_json(&determination.defaults),
        "valuation_classes": determination.valuation_classes.iter()
            .map(|(class, accounts)| (class.clone(), accounts_json(accounts)))
            .collect::<serde_json::Map<_, _>>(),
    })
}

fn parse_accounts(checks: &mut Checks, prefix: &str, given: &BTreeMap<String, String>) -> Accounts {
    let mut accounts = Accounts::new();
    for (key, account) in given {
        let field = format!("{prefix}.{key}");
        let key = checks.check(&field, "account_key", AccountKey::parse(key));
        let account = checks.check(&field, "account_number", AccountNumber::parse(account));
        if let (Some(key), Some(account)) = (key, account) {
            accounts.insert(key, account);
        }
    }
    accounts
}

async fn set_accounts(
    State(Platform { store, .. }): State<Platform>,
    Command { body, request }: Command<SetAccountsBody>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let defaults = parse_accounts(&mut checks, "defaults", &body.defaults);
    let mut valuation_classes = BTreeMap::new();
    for (class, accounts) in &body.valuation_classes {
        let field = format!("valuation_classes.{class}");
        let accounts = parse_accounts(&mut checks, &field, accounts);
        // A valuation class as materials writes it (its published type).
        let parsed = ValuationClass::parse(class).map(|c| c.to_string());
        if let Some(class) = checks.check(&field, "valuation_class", parsed) {
            valuation_classes.insert(class, accounts);
        }
    }
    if body.defaults.is_empty() && body.valuation_classes.values().all(BTreeMap::is_empty) {
        checks.fail(
            "defaults",
            "required",
            "name at least one account (an empty determination would determine nothing)",
        );
    }
    checks.finish()?;
    let company =
        crate::api::authorized_company(&store, &request.auth, body.company.as_deref()).await?;
    let scope = company.clone();
    let numbers: Vec<AccountNumber> = defaults
        .values()
        .chain(valuation_classes.values().flat_map(|a| a.values()))
        .cloned()
        .collect();
    let chart = commands::load_accounts(&store, &company, &numbers)
        .await?
        .into_iter()
        .map(|(number, (account, _))| (number, account))
        .collect();
    let loaded = load(&store, &company).await?;
    let decided = loaded
        .decide(SetAccounts {
            company,
            defaults,
            valuation_classes,
            chart,
        })
        .map_err(|unknown| {
            ApiError::validation(
                unknown
                    .into_iter()
                    .map(|u| {
                        tributary_kernel::http::FieldError::new(
                            u.field,
                            "account_not_found",
                            format!("account {} does not exist", u.account),
                        )
                    })
                    .collect(),
            )
        })?;
    let decision = Decision {
        writes: decided.clone().writes(),
        reads: vec![],
        outcome: decided.state,
    };
    request
        .commit(
            &store,
            CONTEXT,
            scope.as_str(),
            decision,
            StatusCode::OK,
            determination_json,
        )
        .await
}

async fn get_accounts(
    State(Platform { store, .. }): State<Platform>,
    auth: Auth,
    Query(query): Query<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let company = crate::api::authorized_company(&store, &auth, query.company.as_deref()).await?;
    let loaded = load(&store, &company).await?;
    if !loaded.exists() {
        return Err(ApiError::not_found(format!(
            "company {company} has no account determination for materials yet"
        )));
    }
    Ok(Json(determination_json(&loaded.state)))
}
