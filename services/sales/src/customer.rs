//! The customer (business partner) master: who is sold to, where, in which currency, on which
//! payment terms, up to which credit limit, with which tax classification; blocked customers
//! get no new orders. Pure: bank details arrive sealed, times as data.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tributary_kernel::Aggregate;
use tributary_kernel::code;
use tributary_kernel::event::DomainEvent;
use tributary_kernel::master::{CompanyCode, Currency};
use tributary_kernel::sealed::Sealed;
use tributary_materials::domain::PaymentTerms;

code!(
    CustomerNumber,
    20,
    "must be 1 to 20 characters A-Z, 0-9, '-' or '_'",
    b"-_"
);

/// The field name customers' bank accounts are sealed under.
pub const BANK_ACCOUNT_FIELD: &str = "sales.customer.bank_account";
/// The longest name and address line accepted.
pub const TEXT_LENGTH_MAX: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressKind {
    /// Where invoices go (sold-to and bill-to).
    Billing,
    /// Where goods go.
    Shipping,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub kind: AddressKind,
    pub street: String,
    pub postal_code: String,
    pub city: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// How a customer is taxed: the customer half of the tax rate's key in pricing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxClassification {
    Full,
    Reduced,
    Exempt,
}

impl AddressKind {
    pub fn parse(text: &str) -> Result<AddressKind, String> {
        match text {
            "billing" => Ok(AddressKind::Billing),
            "shipping" => Ok(AddressKind::Shipping),
            _ => Err(format!(
                "{text:?} is not an address kind: billing or shipping"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AddressKind::Billing => "billing",
            AddressKind::Shipping => "shipping",
        }
    }
}

impl TaxClassification {
    pub const ALL: [TaxClassification; 3] = [
        TaxClassification::Full,
        TaxClassification::Reduced,
        TaxClassification::Exempt,
    ];

    pub fn parse(text: &str) -> Result<TaxClassification, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| format!("{text:?} is not a tax classification: full, reduced or exempt"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaxClassification::Full => "full",
            TaxClassification::Reduced => "reduced",
            TaxClassification::Exempt => "exempt",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomerEvent {
    CustomerCreated {
        company: CompanyCode,
        customer: CustomerNumber,
        name: String,
        addresses: Vec<Address>,
        currency: Currency,
        payment_terms: PaymentTerms,
        credit_limit: Decimal,
        tax_classification: TaxClassification,
        bank_account: Option<Sealed>,
    },
    CreditLimitChanged {
        credit_limit: Decimal,
    },
    CustomerBlocked {
        reason: String,
    },
    CustomerUnblocked {},
}

impl DomainEvent for CustomerEvent {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub company: CompanyCode,
    pub number: CustomerNumber,
    pub name: String,
    pub addresses: Vec<Address>,
    pub currency: Currency,
    pub payment_terms: PaymentTerms,
    pub credit_limit: Decimal,
    pub tax_classification: TaxClassification,
    pub bank_account: Option<Sealed>,
    /// Why no new orders are taken, while blocked.
    pub blocked: Option<String>,
}

/// A rule a command breaks, with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub rule: &'static str,
    pub detail: String,
}

pub(crate) fn violation(
    field: impl Into<String>,
    rule: &'static str,
    detail: impl Into<String>,
) -> Violation {
    Violation {
        field: field.into(),
        rule,
        detail: detail.into(),
    }
}

#[derive(Debug)]
pub enum CustomerCommand {
    Create(Box<Customer>),
    SetCreditLimit(Decimal),
    Block { reason: String },
    Unblock,
}

/// What a new customer's data breaks (beyond the parsing of its fields).
fn check_new(customer: &Customer) -> Vec<Violation> {
    let mut violations = Vec::new();
    if customer.credit_limit.is_sign_negative() {
        violations.push(violation(
            "credit_limit",
            "not_negative",
            "must be zero or more",
        ));
    }
    if !customer
        .addresses
        .iter()
        .any(|a| a.kind == AddressKind::Billing)
    {
        violations.push(violation(
            "addresses",
            "billing_address_required",
            "a customer needs a billing address",
        ));
    }
    for address in &customer.addresses {
        if !(address.country.len() == 2 && address.country.bytes().all(|b| b.is_ascii_uppercase()))
        {
            violations.push(violation(
                "addresses.country",
                "country_code",
                format!(
                    "{:?} is not an ISO 3166 country code (two capital letters)",
                    address.country
                ),
            ));
        }
    }
    violations
}

impl Aggregate for Customer {
    const TYPE: &'static str = "sales.customer";
    type State = Option<Customer>;
    type Event = CustomerEvent;
    type Command = CustomerCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<Customer>,
        command: CustomerCommand,
    ) -> Result<Vec<CustomerEvent>, Vec<Violation>> {
        let existing = |state: &Option<Customer>| {
            state.clone().ok_or_else(|| {
                vec![violation(
                    "customer",
                    "customer_not_found",
                    "no such customer",
                )]
            })
        };
        match command {
            CustomerCommand::Create(customer) => {
                if let Some(old) = state {
                    return Err(vec![violation(
                        "number",
                        "customer_exists",
                        format!("customer {} exists", old.number),
                    )]);
                }
                let violations = check_new(&customer);
                if !violations.is_empty() {
                    return Err(violations);
                }
                let customer = *customer;
                Ok(vec![CustomerEvent::CustomerCreated {
                    company: customer.company,
                    customer: customer.number,
                    name: customer.name,
                    addresses: customer.addresses,
                    currency: customer.currency,
                    payment_terms: customer.payment_terms,
                    credit_limit: customer.credit_limit,
                    tax_classification: customer.tax_classification,
                    bank_account: customer.bank_account,
                }])
            }
            CustomerCommand::SetCreditLimit(credit_limit) => {
                let customer = existing(state)?;
                if credit_limit.is_sign_negative() {
                    return Err(vec![violation(
                        "credit_limit",
                        "not_negative",
                        "must be zero or more",
                    )]);
                }
                Ok((customer.credit_limit != credit_limit)
                    .then_some(CustomerEvent::CreditLimitChanged { credit_limit })
                    .into_iter()
                    .collect())
            }
            CustomerCommand::Block { reason } => match existing(state)?.blocked {
                Some(_) => Err(vec![violation(
                    "blocked",
                    "already_blocked",
                    "the customer is blocked already",
                )]),
                None if reason.trim().is_empty() => Err(vec![violation(
                    "reason",
                    "required",
                    "name why the customer is blocked",
                )]),
                None => Ok(vec![CustomerEvent::CustomerBlocked { reason }]),
            },
            CustomerCommand::Unblock => match existing(state)?.blocked {
                Some(_) => Ok(vec![CustomerEvent::CustomerUnblocked {}]),
                None => Err(vec![violation(
                    "blocked",
                    "not_blocked",
                    "the customer is not blocked",
                )]),
            },
        }
    }

    fn apply(state: &mut Option<Customer>, event: &CustomerEvent) {
        match (state.as_mut(), event) {
            (
                None,
                CustomerEvent::CustomerCreated {
                    company,
                    customer,
                    name,
                    addresses,
                    currency,
                    payment_terms,
                    credit_limit,
                    tax_classification,
                    bank_account,
                },
            ) => {
                *state = Some(Customer {
                    company: company.clone(),
                    number: customer.clone(),
                    name: name.clone(),
                    addresses: addresses.clone(),
                    currency: currency.clone(),
                    payment_terms: payment_terms.clone(),
                    credit_limit: *credit_limit,
                    tax_classification: *tax_classification,
                    bank_account: bank_account.clone(),
                    blocked: None,
                });
            }
            (Some(customer), CustomerEvent::CreditLimitChanged { credit_limit }) => {
                customer.credit_limit = *credit_limit;
            }
            (Some(customer), CustomerEvent::CustomerBlocked { reason }) => {
                customer.blocked = Some(reason.clone());
            }
            (Some(customer), CustomerEvent::CustomerUnblocked {}) => customer.blocked = None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn customer() -> Customer {
        Customer {
            company: CompanyCode::parse("MAIN").unwrap(),
            number: CustomerNumber::parse("C-100").unwrap(),
            name: "Harbour Hardware".into(),
            addresses: vec![Address {
                kind: AddressKind::Billing,
                street: "1 Quay Street".into(),
                postal_code: "20457".into(),
                city: "Hamburg".into(),
                country: "DE".into(),
            }],
            currency: Currency::parse("EUR").unwrap(),
            payment_terms: PaymentTerms {
                discount_percent: Decimal::TWO,
                discount_days: 10,
                net_days: 30,
            },
            credit_limit: Decimal::from_str("50000").unwrap(),
            tax_classification: TaxClassification::Full,
            bank_account: None,
            blocked: None,
        }
    }

    fn run(state: &mut Option<Customer>, command: CustomerCommand) -> Result<(), Vec<Violation>> {
        for event in Customer::decide(state, command)? {
            Customer::apply(state, &event);
        }
        Ok(())
    }

    /// `field/rule` of each violation.
    fn rules(result: Result<(), Vec<Violation>>) -> Vec<String> {
        result
            .unwrap_err()
            .into_iter()
            .map(|v| format!("{}/{}", v.field, v.rule))
            .collect()
    }

    #[test]
    fn a_customer_is_created_once_blocked_with_a_reason_and_unblocked() {
        let mut state = None;
        run(&mut state, CustomerCommand::Create(Box::new(customer()))).unwrap();
        assert_eq!(state.as_ref().unwrap().name, "Harbour Hardware");
        assert_eq!(
            rules(run(
                &mut state,
                CustomerCommand::Create(Box::new(customer()))
            )),
            ["number/customer_exists"]
        );
        assert_eq!(
            rules(run(
                &mut state,
                CustomerCommand::Block { reason: " ".into() }
            )),
            ["reason/required"]
        );
        run(
            &mut state,
            CustomerCommand::Block {
                reason: "overdue for 120 days".into(),
            },
        )
        .unwrap();
        assert_eq!(
            state.as_ref().unwrap().blocked.as_deref(),
            Some("overdue for 120 days")
        );
        assert_eq!(
            rules(run(
                &mut state,
                CustomerCommand::Block {
                    reason: "again".into()
                }
            )),
            ["blocked/already_blocked"]
        );
        run(&mut state, CustomerCommand::Unblock).unwrap();
        assert_eq!(
            rules(run(&mut state, CustomerCommand::Unblock)),
            ["blocked/not_blocked"]
        );
        // The same limit again changes nothing; a negative one is refused.
        let limit = state.as_ref().unwrap().credit_limit;
        assert!(
            Customer::decide(&state, CustomerCommand::SetCreditLimit(limit))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            rules(run(
                &mut state,
                CustomerCommand::SetCreditLimit(Decimal::NEGATIVE_ONE)
            )),
            ["credit_limit/not_negative"]
        );
    }

    #[test]
    fn a_new_customer_needs_a_billing_address_a_country_code_and_no_negative_limit() {
        let mut bad = customer();
        bad.credit_limit = Decimal::NEGATIVE_ONE;
        bad.addresses[0].kind = AddressKind::Shipping;
        bad.addresses[0].country = "Germany".into();
        assert_eq!(
            rules(run(&mut None, CustomerCommand::Create(Box::new(bad)))),
            [
                "credit_limit/not_negative",
                "addresses/billing_address_required",
                "addresses.country/country_code"
            ]
        );
        assert_eq!(
            rules(run(&mut None, CustomerCommand::Unblock)),
            ["customer/customer_not_found"]
        );
        assert!(CustomerNumber::parse("c-100").is_err());
    }

    #[test]
    fn every_event_type_has_a_golden_fixture() {
        let problems = tributary_kernel::event::check_fixtures::<CustomerEvent>(
            std::path::Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/events/sales.customer"
            )),
        );
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
