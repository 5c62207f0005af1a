//! Finance's reactions to other contexts' events: the automatic GL postings.
//!
//! `finance.materials-postings` follows materials' stock (goods movements, valued when
//! decided) and posts one journal entry per movement event, accounts found by the company's
//! [account determination](crate::determination) for the material's valuation class:
//!
//! ```text
//!  receipt            Dr inventory              Cr GR/IR clearing         (value)
//!  goods issue        Dr consumption (cost ctr) Cr inventory              (value)
//!  scrap              Dr scrap                  Cr inventory              (value)
//!  return to vendor   Dr GR/IR (order value)    Cr inventory (valuation)  ± price difference
//!  count difference   Dr inventory              Cr inventory difference   (surplus; reversed
//!                                                                          for a shortage)
//!  transfer           nothing: quantity moves, value does not
//! ```
//! The entry's id derives from the movement event (a repeat stores nothing new); a posting
//! finance refuses (closed period, blocked account, no account determined) waits in suspense.

use crate::commands::{self, CONTEXT, FinanceError};
use crate::determination::{self, AccountDetermination, AccountKey};
use crate::domain::{LineInput, PostJournalEntry, Side};
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::BTreeSet;
use tributary_kernel::Platform;
use tributary_kernel::event::decode;
use tributary_kernel::master::Currency;
use tributary_kernel::reactor::{Cause, Reaction, Reactor, ReactorError};
use tributary_materials::events::{Movement, MovementKind, StockEvent};

/// Posts a journal entry as the reaction to `cause`: stored once, or into suspense with the
/// rules finance found broken.
pub async fn post(
    platform: &Platform,
    cause: &Cause<'_>,
    command: PostJournalEntry,
) -> Result<Reaction, ReactorError> {
    match commands::post_journal_entry(&platform.store, command).await {
        Ok(decision) => Ok(cause.commit(&platform.store, CONTEXT, decision).await?),
        Err(FinanceError::Rejected(violations)) => Ok(Reaction::Rejected {
            reason: violations
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("; "),
            problem: json!({"errors": violations.iter().map(|v| json!({
                "field": v.field(), "rule": v.rule(), "detail": v.to_string()
            })).collect::<Vec<_>>()}),
        }),
        Err(FinanceError::Store(error)) => Err(error.into()),
        Err(other) => Err(ReactorError::Failed {
            reactor: cause.reactor,
            reason: other.to_string(),
        }),
    }
}

/// The lines of one posting, accounts determined as they are added.
struct Lines<'a> {
    determination: &'a AccountDetermination,
    valuation_class: &'a str,
    currency: Currency,
    lines: Vec<LineInput>,
    missing: BTreeSet<AccountKey>,
}

impl Lines<'_> {
    /// Adds `amount` on the account determined for `key`: positive debits, negative credits.
    fn add(&mut self, key: AccountKey, amount: Decimal, cost_center: Option<&str>) {
        if amount.is_zero() {
            return;
        }
        let Some(account) = self.determination.account(key, self.valuation_class) else {
            self.missing.insert(key);
            return;
        };
        self.lines.push(LineInput {
            account: account.clone(),
            side: if amount > Decimal::ZERO {
                Side::Debit(amount)
            } else {
                Side::Credit(-amount)
            },
            currency: self.currency.clone(),
            cost_center: cost_center.map(str::to_owned),
            text: None,
        });
    }

    /// A movement's value (signed: into stock positive) and its counter-postings.
    fn movement(&mut self, movement: &Movement) {
        let value = movement.value;
        match &movement.kind {
            MovementKind::Receipt { .. } => {
                self.add(AccountKey::Inventory, value, None);
                self.add(AccountKey::GrIrClearing, -value, None);
            }
            MovementKind::Issue { cost_center } => {
                self.add(AccountKey::Inventory, value, None);
                self.add(AccountKey::Consumption, -value, Some(cost_center));
            }
            MovementKind::Scrap { .. } => {
                self.add(AccountKey::Inventory, value, None);
                self.add(AccountKey::Scrap, -value, None);
            }
            MovementKind::ReturnToVendor { order_value, .. } => {
                let order_value = order_value.unwrap_or(-value);
                self.add(AccountKey::Inventory, value, None);
                self.add(AccountKey::GrIrClearing, order_value, None);
                self.add(AccountKey::PriceDifference, -(value + order_value), None);
            }
            MovementKind::CountDifference { .. } => {
                self.add(AccountKey::Inventory, value, None);
                self.add(AccountKey::InventoryDifference, -value, None);
            }
            MovementKind::TransferOut { .. } | MovementKind::TransferIn { .. } => {}
        }
    }
}

fn describe(movement: &Movement, material: &str, plant: &str) -> String {
    let what = match &movement.kind {
        MovementKind::Receipt {
            purchase_order: Some(order),
            line: Some(line),
            ..
        } => format!("Goods receipt, PO {order}/{line}"),
        MovementKind::Receipt { .. } => "Goods receipt".to_owned(),
        MovementKind::Issue { cost_center } => format!("Goods issue to {cost_center}"),
        MovementKind::Scrap { reason } => format!("Scrap: {reason}"),
        MovementKind::ReturnToVendor {
            purchase_order,
            line,
            ..
        } => format!("Return to vendor, PO {purchase_order}/{line}"),
        MovementKind::CountDifference { .. } => "Physical inventory difference".to_owned(),
        MovementKind::TransferOut { .. } | MovementKind::TransferIn { .. } => "Transfer".to_owned(),
    };
    format!("{what}: {material} in {plant}")
}

/// Goods movements to the ledger.
pub struct MaterialsPostings;

#[async_trait::async_trait]
impl Reactor for MaterialsPostings {
    fn name(&self) -> &'static str {
        "finance.materials-postings"
    }

    fn follows(&self) -> &'static [&'static str] {
        &["materials.stock"]
    }

    async fn react(
        &self,
        platform: &Platform,
        cause: &Cause<'_>,
    ) -> Result<Reaction, ReactorError> {
        let event = match decode::<StockEvent>(cause.event) {
            Ok(event) => event,
            Err(error) => {
                return Ok(Reaction::Rejected {
                    reason: format!("the event cannot be read: {error}"),
                    problem: json!({"errors": [{"field": "", "rule": "unreadable_event",
                                                "detail": error.to_string()}]}),
                });
            }
        };
        let StockEvent::GoodsMovementPosted {
            company,
            material,
            plant,
            valuation_class,
            movements,
        } = event
        else {
            return Ok(Reaction::Ignored);
        };
        let Some(first) = movements.first() else {
            return Ok(Reaction::Ignored);
        };
        let determination = match determination::load(&platform.store, &company).await {
            Ok(loaded) => loaded.state,
            Err(FinanceError::Store(error)) => return Err(error.into()),
            Err(other) => {
                return Err(ReactorError::Failed {
                    reactor: cause.reactor,
                    reason: other.to_string(),
                });
            }
        };
        let mut lines = Lines {
            determination: &determination,
            valuation_class: valuation_class.as_str(),
            currency: first.currency.clone(),
            lines: Vec::new(),
            missing: BTreeSet::new(),
        };
        for movement in &movements {
            lines.movement(movement);
        }
        if !lines.missing.is_empty() {
            let keys: Vec<&str> = lines.missing.iter().map(|k| k.as_str()).collect();
            return Ok(Reaction::Rejected {
                reason: format!(
                    "no account determined for {} in company {company}, valuation class {valuation_class}: \
                     set them with PUT /api/v1/account-determination/materials",
                    keys.join(", ")
                ),
                problem: json!({"errors": keys.iter().map(|key| json!({
                    "field": format!("defaults.{key}"), "rule": "account_not_determined",
                    "detail": format!("no {key} account for valuation class {valuation_class}")
                })).collect::<Vec<_>>()}),
            });
        }
        if lines.lines.is_empty() {
            return Ok(Reaction::Ignored);
        }
        let command = PostJournalEntry {
            entry_id: cause.command_id(),
            company,
            posting_date: first.posting_date,
            document_date: Some(first.posting_date),
            reference: Some(format!("MM {}", first.movement_id)),
            text: Some(describe(first, material.as_str(), plant.as_str())),
            lines: lines.lines,
        };
        post(platform, cause, command).await
    }
}
