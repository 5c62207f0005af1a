//! Quotations and sales orders: lines checked against the material master and priced, order
//! lines confirmed by the availability check (demand written on each material's demand
//! stream at the version the check read), the customer's credit exposure checked.

use super::*;
use crate::atp::Timeline;
use crate::demand::{MaterialDemand, MaterialDemandEvent, SalesIndexes, demand_id};
use crate::order::*;
use std::collections::BTreeMap;
use tributary_kernel::availability::Availability;
use tributary_kernel::master::UnitOfMeasure;
use tributary_kernel::store::StreamWrite;
use tributary_materials::domain::PlantCode;

/// What order commands read besides the event store.
pub struct OrderContext<'a> {
    pub store: &'a EventStore,
    pub indexes: &'a SalesIndexes,
    pub availability: &'a dyn Availability,
}

/// A line as a command gives it.
#[derive(Debug, Clone)]
pub struct NewLine {
    pub line: u32,
    pub material: MaterialNumber,
    pub quantity: Decimal,
    /// The material's base unit without.
    pub unit: Option<UnitOfMeasure>,
    pub plant: PlantCode,
    pub requested_date: NaiveDate,
}

/// A quotation or an order as a command gives it.
#[derive(Clone)]
pub struct NewDocument {
    pub company: CompanyCode,
    pub number: DocumentNumber,
    pub customer: CustomerNumber,
    pub currency: Option<Currency>,
    pub document_date: NaiveDate,
    pub lines: Vec<NewLine>,
}

pub fn document_id(company: &CompanyCode, number: &DocumentNumber) -> String {
    format!("{company}/{number}")
}

pub async fn document(
    store: &EventStore,
    company: &CompanyCode,
    number: &DocumentNumber,
) -> Result<Loaded<SalesDocument>, SalesError> {
    Ok(aggregate::load::<SalesDocument>(store, &document_id(company, number)).await?)
}

pub(super) fn rejected(
    field: impl Into<String>,
    rule: &'static str,
    detail: impl Into<String>,
) -> SalesError {
    SalesError::Rejected(vec![violation(field, rule, detail)])
}

/// The customer an order is for: it exists, is not blocked, and buys in `currency` if named.
async fn ordering_customer(
    store: &EventStore,
    company: &CompanyCode,
    number: &CustomerNumber,
    currency: Option<&Currency>,
) -> Result<Customer, SalesError> {
    let customer = existing_customer(store, company, number, "customer").await?;
    if let Some(reason) = &customer.blocked {
        return Err(rejected(
            "customer",
            "customer_blocked",
            format!("customer {number} is blocked: {reason}"),
        ));
    }
    if let Some(currency) = currency.filter(|c| **c != customer.currency) {
        return Err(rejected(
            "currency",
            "currency_mismatch",
            format!(
                "customer {number} buys in {}, not {currency}",
                customer.currency
            ),
        ));
    }
    Ok(customer)
}

/// The most of a material one line may have, in its base unit: what keeps every value of an
/// order (quantity × price, summed over its lines) far inside the decimal range.
pub const LINE_QUANTITY_MAX: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// `quantity` in the base unit: more than zero, at most [`LINE_QUANTITY_MAX`], with no more
/// decimals than materials keeps.
pub fn base_quantity(
    quantity: Decimal,
    factor: Decimal,
) -> Result<Decimal, (&'static str, String)> {
    if quantity <= Decimal::ZERO {
        return Err(("positive", "must be more than zero".into()));
    }
    match quantity.checked_mul(factor) {
        Some(base) if base <= LINE_QUANTITY_MAX => {
            if base.normalize().scale() > tributary_materials::domain::QUANTITY_DECIMALS {
                Err((
                    "max_4_decimal_places",
                    format!(
                        "is {base} in the base unit: at most {} decimals",
                        tributary_materials::domain::QUANTITY_DECIMALS
                    ),
                ))
            } else {
                Ok(base)
            }
        }
        _ => Err((
            "out_of_range",
            format!("at most {LINE_QUANTITY_MAX} in the base unit"),
        )),
    }
}

/// The lines checked against the material master and priced on `date`; every broken rule of
/// every line at once.
async fn priced_lines(
    store: &EventStore,
    company: &CompanyCode,
    customer: &Customer,
    lines: &[NewLine],
    date: NaiveDate,
) -> Result<Vec<LineEntry>, SalesError> {
    let conditions = company_conditions(store, company).await?.state;
    let mut violations = Vec::new();
    let mut entries = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{index}].{name}");
        let material =
            match existing_material(store, company, &line.material, &field("material")).await {
                Ok(material) => material,
                Err(SalesError::Rejected(v)) => {
                    violations.extend(v);
                    continue;
                }
                Err(other) => return Err(other),
            };
        let unit = line.unit.clone().unwrap_or(material.base_unit.clone());
        let Some(factor) = material.to_base(Decimal::ONE, &unit) else {
            violations.push(violation(
                field("unit"),
                "unit_not_of_material",
                format!(
                    "{unit} is not a unit of material {} (base unit {})",
                    material.number, material.base_unit
                ),
            ));
            continue;
        };
        if !material.plants.contains_key(&line.plant) {
            violations.push(violation(
                field("plant"),
                "material_not_in_plant",
                format!(
                    "material {} is not kept in plant {}",
                    material.number, line.plant
                ),
            ));
            continue;
        }
        let base = match base_quantity(line.quantity, factor) {
            Ok(base) => base,
            Err((rule, detail)) => {
                violations.push(violation(field("quantity"), rule, detail));
                continue;
            }
        };
        let pricing = material_pricing(store, company, &material.number)
            .await?
            .state;
        let priced = PricedLine {
            customer,
            material: &material,
            pricing: pricing.as_ref(),
            quantity: base,
            date,
        }
        .price(conditions.as_ref(), &field("material"));
        match priced {
            Ok(price) => entries.push(LineEntry {
                line: line.line,
                material: material.number.clone(),
                material_group: material.material_group.as_ref().map(|g| g.to_string()),
                plant: line.plant.clone(),
                quantity: line.quantity,
                unit,
                factor,
                requested_date: line.requested_date,
                price,
                schedule: Vec::new(),
            }),
            Err(v) => violations.push(v),
        }
    }
    if violations.is_empty() {
        Ok(entries)
    } else {
        Err(SalesError::Rejected(violations))
    }
}

/// The availability of `material` in `plant`: the confirmed demand (read first, so that an
/// issue between the two reads can only make a check stricter) and materials' supply.
async fn timeline(
    context: &OrderContext<'_>,
    company: &CompanyCode,
    material: &str,
    plant: &str,
) -> Result<(crate::demand::KeyView, Timeline), SalesError> {
    let view = context
        .indexes
        .demand(&demand_id(company.as_str(), material, plant))
        .await?;
    let supply = context
        .availability
        .supply(company, material, plant)
        .await
        .map_err(|error| SalesError::Unavailable(error.to_string()))?;
    // What production orders reserved is demand like confirmed sales.
    let mut demand = view.demand.clone();
    for (date, quantity) in supply.reserved {
        *demand.entry(date).or_default() += quantity;
    }
    let timeline = Timeline {
        on_hand: supply.on_hand,
        receipts: supply.receipts.into_iter().collect(),
        demand,
    };
    Ok((view, timeline))
}

/// The availability check of `quantity` (base unit) of `material` in `plant` for `requested`,
/// as of `today`, confirming nothing: what an order line would be confirmed now.
pub async fn check_availability(
    context: &OrderContext<'_>,
    company: &CompanyCode,
    (material, plant): (&str, &str),
    today: NaiveDate,
    requested: NaiveDate,
    quantity: Decimal,
) -> Result<crate::atp::Confirmation, SalesError> {
    let (_, timeline) = timeline(context, company, material, plant).await?;
    Ok(timeline.check(today, requested, quantity))
}

/// Confirms `lines` of `order` as of `today` (less `delivered` of each: a changed line's
/// deliveries are no longer demand): per material and plant, the demand (read first,
/// so that an issue between the two reads can only make the check stricter), then the supply;
/// the lines' own earlier confirmations do not count against them. The writes put each line's
/// new schedule on its demand stream at the version read.
async fn confirm(
    context: &OrderContext<'_>,
    company: &CompanyCode,
    order: &DocumentNumber,
    lines: &mut [LineEntry],
    today: NaiveDate,
    delivered: Decimal,
) -> Result<Vec<StreamWrite>, SalesError> {
    let mut keys: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, line) in lines.iter().enumerate() {
        keys.entry(demand_id(
            company.as_str(),
            line.material.as_str(),
            line.plant.as_str(),
        ))
        .or_default()
        .push(index);
    }
    let mut writes = Vec::new();
    for (id, indexes) in keys {
        let first = &lines[indexes[0]];
        let (view, mut timeline) = timeline(
            context,
            company,
            first.material.as_str(),
            first.plant.as_str(),
        )
        .await?;
        for index in &indexes {
            let own = (order.to_string(), lines[*index].line);
            for s in view.lines.get(&own).into_iter().flatten() {
                *timeline.demand.entry(s.date).or_default() -= s.quantity;
            }
        }
        let mut events = Vec::new();
        for index in indexes {
            let line = &mut lines[index];
            let confirmation =
                timeline.check(today, line.requested_date, line.base_quantity() - delivered);
            timeline.confirm(&confirmation);
            line.schedule = confirmation.schedule;
            events.push(MaterialDemandEvent::DemandChanged {
                order: order.to_string(),
                line: line.line,
                schedule: line.schedule.clone(),
            });
        }
        let stream = Loaded::<MaterialDemand> {
            id,
            state: (),
            version: view.version,
        };
        writes.push(stream.write(&events));
    }
    Ok(writes)
}

/// The credit check of `value` more for `customer`: open receivables and open orders against
/// the limit.
async fn credit_check(
    context: &OrderContext<'_>,
    customer: &Customer,
    value: Decimal,
) -> Result<CreditCheck, SalesError> {
    let (company, number) = (customer.company.as_str(), customer.number.as_str());
    let orders = context.indexes.open_orders(company, number).await?;
    let items: Decimal = context
        .indexes
        .open_items(company, number)
        .await?
        .iter()
        .map(|item| item.open)
        .sum();
    let exposure = orders + items;
    Ok(CreditCheck {
        limit: customer.credit_limit,
        exposure,
        order_value: value,
    })
}

/// The decision of a command on a document, with the other writes it makes.
fn decided(
    loaded: &Loaded<SalesDocument>,
    command: SalesDocumentCommand,
    mut writes: Vec<StreamWrite>,
) -> Result<Decision<SalesDocument>, SalesError> {
    let mut decision = decision(loaded, command, "sales document", loaded.id.clone())?;
    decision.writes.append(&mut writes);
    Ok(decision)
}

pub async fn create_quotation(
    store: &EventStore,
    new: NewDocument,
    valid_to: NaiveDate,
) -> Result<Decision<SalesDocument>, SalesError> {
    let customer =
        ordering_customer(store, &new.company, &new.customer, new.currency.as_ref()).await?;
    let loaded = document(store, &new.company, &new.number).await?;
    if loaded.exists() {
        return Err(rejected(
            "number",
            "document_exists",
            format!("sales document {} exists", new.number),
        ));
    }
    let lines = priced_lines(
        store,
        &new.company,
        &customer,
        &new.lines,
        new.document_date,
    )
    .await?;
    let command = SalesDocumentCommand::CreateQuotation {
        company: new.company,
        number: new.number,
        customer: customer.number,
        currency: customer.currency,
        document_date: new.document_date,
        valid_to,
        lines,
    };
    decided(&loaded, command, Vec::new())
}

/// An order from its lines, or from a quotation (its lines and prices as quoted, checked for
/// availability now).
pub async fn create_order(
    context: &OrderContext<'_>,
    new: NewDocument,
    quotation: Option<DocumentNumber>,
) -> Result<Decision<SalesDocument>, SalesError> {
    let store = context.store;
    let customer =
        ordering_customer(store, &new.company, &new.customer, new.currency.as_ref()).await?;
    let loaded = document(store, &new.company, &new.number).await?;
    if loaded.exists() {
        return Err(rejected(
            "number",
            "document_exists",
            format!("sales document {} exists", new.number),
        ));
    }
    let mut writes = Vec::new();
    let mut lines = match &quotation {
        Some(number) => {
            let quoted = document(store, &new.company, number).await?;
            let Some(document) = &quoted.state else {
                return Err(rejected(
                    "quotation",
                    "quotation_not_found",
                    format!("quotation {number} does not exist"),
                ));
            };
            if document.customer != customer.number {
                return Err(rejected(
                    "quotation",
                    "other_customer",
                    format!("quotation {number} is for customer {}", document.customer),
                ));
            }
            if !new.lines.is_empty() {
                return Err(rejected(
                    "lines",
                    "lines_from_quotation",
                    "an order from a quotation takes the quotation's lines",
                ));
            }
            let accepted = quoted.decide(SalesDocumentCommand::Accept {
                order: new.number.clone(),
                date: new.document_date,
            })?;
            let lines = document.lines.iter().map(|l| l.entry.clone()).collect();
            writes.extend(accepted.writes());
            lines
        }
        None => {
            priced_lines(
                store,
                &new.company,
                &customer,
                &new.lines,
                new.document_date,
            )
            .await?
        }
    };
    writes.extend(
        confirm(
            context,
            &new.company,
            &new.number,
            &mut lines,
            new.document_date,
            Decimal::ZERO,
        )
        .await?,
    );
    let value = lines.iter().map(|l| l.price.gross_value).sum();
    let credit = credit_check(context, &customer, value).await?;
    let command = SalesDocumentCommand::CreateOrder {
        company: new.company,
        number: new.number,
        customer: customer.number.clone(),
        currency: customer.currency.clone(),
        document_date: new.document_date,
        payment_terms: customer.payment_terms.clone(),
        quotation,
        lines,
        credit,
    };
    decided(&loaded, command, writes)
}

/// An existing sales order (404 otherwise).
async fn existing_order(
    store: &EventStore,
    company: &CompanyCode,
    number: &DocumentNumber,
) -> Result<(Loaded<SalesDocument>, SalesDocument), SalesError> {
    let loaded = document(store, company, number).await?;
    match loaded.state.clone() {
        Some(state) => Ok((loaded, state)),
        None => Err(SalesError::NotFound {
            what: "sales order",
            id: number.to_string(),
        }),
    }
}

/// A line's new quantity (in its unit or another of the material's) and requested date.
pub struct LineChange {
    pub quantity: Option<(Decimal, Option<UnitOfMeasure>)>,
    pub requested_date: Option<NaiveDate>,
}

/// Re-enters an open line: priced again on the order's date for the new quantity, confirmed
/// again without its own earlier confirmation, the credit checked for what it adds.
pub async fn change_line(
    context: &OrderContext<'_>,
    company: &CompanyCode,
    number: &DocumentNumber,
    line: u32,
    change: LineChange,
) -> Result<Decision<SalesDocument>, SalesError> {
    let store = context.store;
    let (loaded, order) = existing_order(store, company, number).await?;
    if order.kind != DocumentKind::Order {
        return Err(rejected(
            "order",
            "not_an_order",
            format!("{number} is a quotation; accept it into an order first"),
        ));
    }
    let Some(existing) = order.line(line) else {
        return Err(rejected(
            "line",
            "line_not_found",
            format!("order {number} has no line {line}"),
        ));
    };
    let quantity_changes = change.quantity.is_some();
    let customer = existing_customer(store, company, &order.customer, "customer").await?;
    let (quantity, unit) = match change.quantity {
        Some((quantity, unit)) => (quantity, unit.or(Some(existing.entry.unit.clone()))),
        None => (existing.entry.quantity, Some(existing.entry.unit.clone())),
    };
    let new_line = NewLine {
        line,
        material: existing.entry.material.clone(),
        quantity,
        unit,
        plant: existing.entry.plant.clone(),
        requested_date: change
            .requested_date
            .unwrap_or(existing.entry.requested_date),
    };
    let mut lines = priced_lines(store, company, &customer, &[new_line], order.document_date)
        .await
        .map_err(|error| match error {
            SalesError::Rejected(violations) => SalesError::Rejected(
                violations
                    .into_iter()
                    .map(|v| violation(v.field.replacen("lines[0].", "", 1), v.rule, v.detail))
                    .collect(),
            ),
            other => other,
        })?;
    let writes = confirm(
        context,
        company,
        number,
        &mut lines,
        order.document_date,
        existing.delivered,
    )
    .await?;
    let mut entry = lines.remove(0);
    if !quantity_changes {
        // A new date alone keeps the price the line was given (quoted prices too).
        entry.price = existing.entry.price.clone();
    }
    if entry.base_quantity() > existing.entry.base_quantity()
        && let Some(reason) = &customer.blocked
    {
        return Err(rejected(
            "quantity",
            "customer_blocked",
            format!("customer {} is blocked: {reason}", customer.number),
        ));
    }
    // What was delivered stays confirmed where it was; the rest as confirmed now.
    let (mut schedule, _) =
        crate::atp::split_schedule(&existing.entry.schedule, existing.delivered);
    for line in entry.schedule.drain(..) {
        match schedule.last_mut() {
            Some(last) if last.date == line.date => last.quantity += line.quantity,
            _ => schedule.push(line),
        }
    }
    entry.schedule = schedule;
    let added = entry.price.gross_value - existing.entry.price.gross_value;
    let credit = if added > Decimal::ZERO {
        Some(credit_check(context, &customer, added).await?)
    } else {
        None
    };
    decided(
        &loaded,
        SalesDocumentCommand::ChangeLine {
            line: entry,
            credit,
        },
        writes,
    )
}

/// Cancels an open line and gives its confirmed quantity back.
pub async fn cancel_line(
    context: &OrderContext<'_>,
    company: &CompanyCode,
    number: &DocumentNumber,
    line: u32,
) -> Result<Decision<SalesDocument>, SalesError> {
    let (loaded, order) = existing_order(context.store, company, number).await?;
    let mut writes = Vec::new();
    if let Some(existing) = order.line(line).filter(|l| !l.entry.schedule.is_empty()) {
        let id = demand_id(
            company.as_str(),
            existing.entry.material.as_str(),
            existing.entry.plant.as_str(),
        );
        let view = context.indexes.demand(&id).await?;
        let stream = Loaded::<MaterialDemand> {
            id,
            state: (),
            version: view.version,
        };
        writes.push(stream.write(&[MaterialDemandEvent::DemandChanged {
            order: number.to_string(),
            line,
            schedule: Vec::new(),
        }]));
    }
    decided(&loaded, SalesDocumentCommand::CancelLine { line }, writes)
}

pub async fn release_credit(
    store: &EventStore,
    company: &CompanyCode,
    number: &DocumentNumber,
    by: String,
) -> Result<Decision<SalesDocument>, SalesError> {
    let (loaded, _) = existing_order(store, company, number).await?;
    decided(
        &loaded,
        SalesDocumentCommand::ReleaseCredit { by },
        Vec::new(),
    )
}
