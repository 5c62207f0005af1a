//! Materials commands: load what a command needs, decide, and plan the append (the API
//! commits it with the idempotency record).

use crate::aggregates::*;
use crate::domain::*;
use crate::valuation::ValuationMethod;
use tributary_kernel::aggregate::{self, Loaded};
use tributary_kernel::master::{CompanyCode, Currency};
use tributary_kernel::store::{Decision, EventStore, StoreError};
use tributary_kernel::{Aggregate, RepositoryError};

#[derive(Debug, thiserror::Error)]
pub enum MaterialsError {
    #[error("rejected: {0:?}")]
    Rejected(Vec<Violation>),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Vec<Violation>> for MaterialsError {
    fn from(violations: Vec<Violation>) -> Self {
        MaterialsError::Rejected(violations)
    }
}

pub fn plant_id(company: &CompanyCode, plant: &PlantCode) -> String {
    format!("{company}/{plant}")
}

pub fn material_id(company: &CompanyCode, material: &MaterialNumber) -> String {
    format!("{company}/{material}")
}

pub fn vendor_id(company: &CompanyCode, vendor: &VendorNumber) -> String {
    format!("{company}/{vendor}")
}

pub fn stock_id(company: &CompanyCode, material: &MaterialNumber, plant: &PlantCode) -> String {
    format!("{company}/{material}/{plant}")
}

/// The aggregates among `loaded` that exist, keyed by what `key` takes of their state.
fn existing<'a, A, T, K>(
    loaded: impl IntoIterator<Item = &'a Loaded<A>>,
    key: impl Fn(&T) -> K,
) -> std::collections::HashMap<K, T>
where
    A: Aggregate<State = Option<T>>,
    T: Clone + 'a,
    K: Eq + std::hash::Hash,
{
    loaded
        .into_iter()
        .filter_map(|l| l.state.clone())
        .map(|state| (key(&state), state))
        .collect()
}

/// One decided aggregate's writes, answering with its state after the events.
fn decision<A: Aggregate<State = Option<T>>, T>(
    loaded: &Loaded<A>,
    command: A::Command,
    what: &'static str,
    id: String,
) -> Result<Decision<T>, MaterialsError>
where
    MaterialsError: From<A::Rejection>,
{
    loaded
        .decide(command)?
        .decision(vec![], |state| state)
        .ok_or(MaterialsError::NotFound { what, id })
}

pub async fn plant(
    store: &EventStore,
    company: &CompanyCode,
    plant: &PlantCode,
) -> Result<Loaded<Plant>, MaterialsError> {
    Ok(aggregate::load::<Plant>(store, &plant_id(company, plant)).await?)
}

pub async fn create_plant(
    store: &EventStore,
    company: CompanyCode,
    code: PlantCode,
    name: String,
    currency: Currency,
) -> Result<Decision<Plant>, MaterialsError> {
    let loaded = plant(store, &company, &code).await?;
    let id = code.to_string();
    let command = PlantCommand::Create {
        company,
        plant: code,
        name,
        currency,
    };
    decision(&loaded, command, "plant", id)
}

pub async fn add_storage_location(
    store: &EventStore,
    company: CompanyCode,
    code: PlantCode,
    location: LocationCode,
    name: String,
) -> Result<Decision<Plant>, MaterialsError> {
    let loaded = plant(store, &company, &code).await?;
    if loaded.state.is_none() {
        return Err(MaterialsError::NotFound {
            what: "plant",
            id: code.to_string(),
        });
    }
    decision(
        &loaded,
        PlantCommand::AddLocation { location, name },
        "plant",
        code.to_string(),
    )
}

pub async fn material(
    store: &EventStore,
    company: &CompanyCode,
    number: &MaterialNumber,
) -> Result<Loaded<Material>, MaterialsError> {
    Ok(aggregate::load::<Material>(store, &material_id(company, number)).await?)
}

/// Creates a material and values it in the given plants (each opening its stock), at once.
pub async fn create_material(
    store: &EventStore,
    new: NewMaterial,
    plants: Vec<(String, PlantCode, ValuationMethod)>,
) -> Result<Decision<Material>, MaterialsError> {
    let (company, number) = (new.company.clone(), new.number.clone());
    let loaded = material(store, &company, &number).await?;
    let mut decided = loaded.decide(MaterialCommand::Create(new))?;
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    let mut violations = Vec::new();
    let mut events = decided.events.clone();
    for (field, code, method) in plants {
        let plant_stream = plant(store, &company, &code).await?;
        let Some(plant_state) = plant_stream.state.clone() else {
            violations.push(Violation::PlantNotFound { field, plant: code });
            continue;
        };
        reads.push(plant_stream.pin());
        let Some(material_state) = decided.state.clone() else {
            continue;
        };
        match material_state.decide_extend(&plant_state, method) {
            Ok(extension) => {
                for event in &extension {
                    <Material as Aggregate>::apply(&mut decided.state, event);
                }
                events.extend(extension);
                let stock = Loaded::<Stock>::new(stock_id(&company, &number, &code));
                let opened = stock.decide(StockCommand::Open {
                    material: material_state,
                    plant: plant_state,
                    valuation_method: method,
                })?;
                writes.extend(opened.writes());
            }
            Err(refused) => violations.extend(refused),
        }
    }
    if !violations.is_empty() {
        return Err(MaterialsError::Rejected(violations));
    }
    writes.insert(0, loaded.write(&events));
    let outcome = decided.state.ok_or(MaterialsError::NotFound {
        what: "material",
        id: number.to_string(),
    })?;
    Ok(Decision {
        writes,
        reads,
        outcome,
    })
}

pub async fn vendor(
    store: &EventStore,
    company: &CompanyCode,
    number: &VendorNumber,
) -> Result<Loaded<Vendor>, MaterialsError> {
    Ok(aggregate::load::<Vendor>(store, &vendor_id(company, number)).await?)
}

pub async fn create_vendor(
    store: &EventStore,
    new: Vendor,
) -> Result<Decision<Vendor>, MaterialsError> {
    let loaded = vendor(store, &new.company, &new.number).await?;
    let id = new.number.to_string();
    decision(&loaded, new, "vendor", id)
}

// ----- purchase orders ------------------------------------------------------------------------

pub fn purchase_order_id(company: &CompanyCode, number: &PurchaseOrderNumber) -> String {
    format!("{company}/{number}")
}

pub async fn purchase_order(
    store: &EventStore,
    company: &CompanyCode,
    number: &PurchaseOrderNumber,
) -> Result<Loaded<PurchaseOrder>, MaterialsError> {
    Ok(aggregate::load::<PurchaseOrder>(store, &purchase_order_id(company, number)).await?)
}

/// The vendor, materials and plants a purchase order names, loaded for its decision. Master
/// data is not pinned: what an order checks (units, plants a material is valued in, storage
/// locations, currencies) is only ever added to, never changed.
async fn purchasing_view(
    store: &EventStore,
    company: &CompanyCode,
    vendor_number: &VendorNumber,
    lines: &[NewOrderLine],
) -> Result<PurchasingView, MaterialsError> {
    let mut material_ids: Vec<String> = lines
        .iter()
        .map(|l| material_id(company, &l.material))
        .collect();
    material_ids.sort();
    material_ids.dedup();
    let mut plant_ids: Vec<String> = lines.iter().map(|l| plant_id(company, &l.plant)).collect();
    plant_ids.sort();
    plant_ids.dedup();
    Ok(PurchasingView {
        vendor: vendor(store, company, vendor_number).await?.state,
        materials: existing(
            aggregate::load_many::<Material>(store, &material_ids)
                .await?
                .values(),
            |m| m.number.clone(),
        ),
        plants: existing(
            aggregate::load_many::<Plant>(store, &plant_ids)
                .await?
                .values(),
            |p| p.code.clone(),
        ),
    })
}

pub async fn create_purchase_order(
    store: &EventStore,
    new: NewPurchaseOrder,
) -> Result<Decision<PurchaseOrder>, MaterialsError> {
    let loaded = purchase_order(store, &new.company, &new.number).await?;
    let view = purchasing_view(store, &new.company, &new.vendor, &new.lines).await?;
    let id = new.number.to_string();
    decision(
        &loaded,
        PurchaseOrderCommand::Create {
            new: Box::new(new),
            view: Box::new(view),
        },
        "purchase order",
        id,
    )
}

/// A change to an order named in the path: 404 when it does not exist.
pub async fn change_purchase_order(
    store: &EventStore,
    company: &CompanyCode,
    number: &PurchaseOrderNumber,
    command: PurchaseOrderCommand,
) -> Result<Decision<PurchaseOrder>, MaterialsError> {
    let loaded = purchase_order(store, company, number).await?;
    let not_found = || MaterialsError::NotFound {
        what: "purchase order",
        id: number.to_string(),
    };
    if loaded.state.is_none() {
        return Err(not_found());
    }
    decision(&loaded, command, "purchase order", number.to_string())
}

// ----- goods movements ------------------------------------------------------------------------

/// A goods movement as requested: the quantity in `unit` (the base unit when `None`).
#[derive(Debug, Clone)]
pub struct MovementRequest {
    pub company: CompanyCode,
    pub material: MaterialNumber,
    pub plant: PlantCode,
    pub location: LocationCode,
    pub quantity: rust_decimal::Decimal,
    pub unit: Option<tributary_kernel::master::UnitOfMeasure>,
    pub posting_date: chrono::NaiveDate,
    pub movement_id: uuid::Uuid,
    pub kind: MovementKind,
    /// What goods coming back enter at (a customer return: the value of their issue).
    pub value: Option<rust_decimal::Decimal>,
}

/// A receipt against a purchase order line, or a return of it to the vendor.
#[derive(Debug, Clone)]
pub struct ReceiptRequest {
    pub company: CompanyCode,
    pub purchase_order: PurchaseOrderNumber,
    pub line: u32,
    pub quantity: rust_decimal::Decimal,
    /// Defaults to the line's order unit.
    pub unit: Option<tributary_kernel::master::UnitOfMeasure>,
    /// Defaults to the line's storage location.
    pub location: Option<LocationCode>,
    pub posting_date: chrono::NaiveDate,
    pub movement_id: uuid::Uuid,
    pub returning: bool,
}

/// What a posted goods movement answers: the stock and its movements as decided.
#[derive(Debug, Clone)]
pub struct PostedMovements {
    pub stock: Stock,
    pub movements: Vec<Movement>,
}

fn rejected(violation: Violation) -> MaterialsError {
    MaterialsError::Rejected(vec![violation])
}

/// The plant, checked to hold each of `locations` (field name, location).
async fn plant_with_locations(
    store: &EventStore,
    company: &CompanyCode,
    code: &PlantCode,
    locations: &[(&str, &LocationCode)],
) -> Result<Plant, MaterialsError> {
    let Some(found) = plant(store, company, code).await?.state else {
        return Err(rejected(Violation::PlantNotFound {
            field: "plant".into(),
            plant: code.clone(),
        }));
    };
    let missing: Vec<Violation> = locations
        .iter()
        .filter(|(_, location)| !found.locations.contains_key(*location))
        .map(|(field, location)| Violation::LocationNotFound {
            field: (*field).into(),
            plant: code.clone(),
            location: (*location).clone(),
        })
        .collect();
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(MaterialsError::Rejected(missing))
    }
}

/// Decides a movement on the stock of a material in a plant, appended with `writes`.
async fn decide_stock(
    store: &EventStore,
    company: &CompanyCode,
    material: &MaterialNumber,
    plant: &PlantCode,
    movement: PostMovement,
    mut writes: Vec<tributary_kernel::StreamWrite>,
) -> Result<Decision<PostedMovements>, MaterialsError> {
    let loaded =
        aggregate::load_snapshotted::<Stock>(store, &stock_id(company, material, plant)).await?;
    if loaded.state.is_none() {
        return Err(rejected(Violation::MaterialNotInPlant {
            field: "plant".into(),
            material: material.clone(),
            plant: plant.clone(),
        }));
    }
    let decided = loaded.decide(StockCommand::Post(movement))?;
    let movements = decided
        .events
        .iter()
        .flat_map(|event| match event {
            StockEvent::GoodsMovementPosted { movements, .. } => movements.clone(),
            StockEvent::StockOpened { .. } => Vec::new(),
        })
        .collect();
    let stock = decided.state.clone().ok_or(MaterialsError::NotFound {
        what: "stock",
        id: stock_id(company, material, plant),
    })?;
    writes.extend(decided.writes());
    Ok(Decision {
        writes,
        reads: vec![],
        outcome: PostedMovements { stock, movements },
    })
}

/// An issue, scrap, transfer or count: checked against the material master and the plant,
/// converted to the base unit, decided on the stock.
pub async fn post_movement(
    store: &EventStore,
    request: MovementRequest,
) -> Result<Decision<PostedMovements>, MaterialsError> {
    let company = &request.company;
    let Some(found) = material(store, company, &request.material).await?.state else {
        return Err(rejected(Violation::MaterialNotFound {
            field: "material".into(),
            material: request.material,
        }));
    };
    let unit = request.unit.unwrap_or_else(|| found.base_unit.clone());
    let quantity_field = match request.kind {
        MovementKind::CountDifference { .. } => "counted_quantity",
        _ => "quantity",
    };
    let quantity = found
        .base_quantity(
            request.quantity,
            &unit,
            "unit".into(),
            quantity_field.into(),
        )
        .map_err(rejected)?;
    let mut locations = vec![("storage_location", &request.location)];
    if let MovementKind::TransferOut { to_location } = &request.kind {
        locations.push(("to_storage_location", to_location));
    }
    plant_with_locations(store, company, &request.plant, &locations).await?;
    // A count gives the counted quantity: the stock decides the difference.
    let kind = match request.kind {
        MovementKind::CountDifference { book, .. } => MovementKind::CountDifference {
            counted: quantity,
            book,
        },
        kind => kind,
    };
    let movement = PostMovement {
        movement_id: request.movement_id,
        posting_date: request.posting_date,
        location: request.location,
        kind,
        quantity,
        receipt_value: request.value.unwrap_or_default(),
    };
    decide_stock(
        store,
        company,
        &request.material,
        &request.plant,
        movement,
        vec![],
    )
    .await
}

/// A goods receipt against a purchase order line (or its return to the vendor): the order
/// records it at the order price, the stock takes it in (or gives it up) in one append.
pub async fn receive(
    store: &EventStore,
    request: ReceiptRequest,
) -> Result<Decision<PostedMovements>, MaterialsError> {
    let company = &request.company;
    let loaded = purchase_order(store, company, &request.purchase_order).await?;
    let Some(order) = &loaded.state else {
        return Err(rejected(Violation::PurchaseOrderNotFound {
            field: "purchase_order".into(),
            number: request.purchase_order,
        }));
    };
    let Some(line) = order.lines.get(&request.line) else {
        return Err(rejected(Violation::LineNotFound {
            field: "line".into(),
            number: order.number.clone(),
            line: request.line,
        }));
    };
    let ordered = line.ordered.clone();
    let Some(found) = material(store, company, &ordered.material).await?.state else {
        return Err(rejected(Violation::MaterialNotFound {
            field: "line".into(),
            material: ordered.material,
        }));
    };
    let unit = request.unit.unwrap_or_else(|| ordered.unit.clone());
    let quantity = found
        .base_quantity(request.quantity, &unit, "unit".into(), "quantity".into())
        .map_err(rejected)?;
    let location = request.location.unwrap_or_else(|| ordered.location.clone());
    plant_with_locations(
        store,
        company,
        &ordered.plant,
        &[("storage_location", &location)],
    )
    .await?;
    let signed = if request.returning {
        -quantity
    } else {
        quantity
    };
    let decided = loaded.decide(PurchaseOrderCommand::Receive {
        line: request.line,
        movement_id: request.movement_id,
        posting_date: request.posting_date,
        quantity: signed,
    })?;
    let value = decided
        .events
        .iter()
        .find_map(|event| match event {
            PurchaseOrderEvent::PurchaseOrderReceived { value, .. } => Some(*value),
            _ => None,
        })
        .unwrap_or_default();
    let kind = if request.returning {
        MovementKind::ReturnToVendor {
            purchase_order: order.number.to_string(),
            line: request.line,
            vendor: order.vendor.clone(),
            order_value: Some(-value),
        }
    } else {
        MovementKind::Receipt {
            purchase_order: Some(order.number.to_string()),
            line: Some(request.line),
            vendor: Some(order.vendor.clone()),
        }
    };
    let movement = PostMovement {
        movement_id: request.movement_id,
        posting_date: request.posting_date,
        location,
        kind,
        quantity,
        receipt_value: value,
    };
    decide_stock(
        store,
        company,
        &ordered.material,
        &ordered.plant,
        movement,
        decided.writes(),
    )
    .await
}

/// The stock of a material in a plant as the write model holds it.
pub async fn stock(
    store: &EventStore,
    company: &CompanyCode,
    material: &MaterialNumber,
    plant: &PlantCode,
) -> Result<Option<Stock>, MaterialsError> {
    Ok(
        aggregate::load_snapshotted::<Stock>(store, &stock_id(company, material, plant))
            .await?
            .state,
    )
}

// ----- vendor invoices and payments -----------------------------------------------------------

pub fn invoice_id(company: &CompanyCode, vendor: &VendorNumber, number: &InvoiceNumber) -> String {
    format!("{company}/{vendor}/{number}")
}

pub fn payment_id(company: &CompanyCode, payment: uuid::Uuid) -> String {
    format!("{company}/{payment}")
}

pub async fn invoice(
    store: &EventStore,
    company: &CompanyCode,
    vendor: &VendorNumber,
    number: &InvoiceNumber,
) -> Result<Loaded<VendorInvoice>, MaterialsError> {
    Ok(aggregate::load::<VendorInvoice>(store, &invoice_id(company, vendor, number)).await?)
}

/// Matches an invoice or credit memo against its orders and stock: the invoice, each order
/// line's invoiced quantity and each stock's revaluation are appended at once; the stocks it
/// read and did not revalue are pinned (their quantity decided the split of the difference).
pub async fn post_invoice(
    store: &EventStore,
    new: NewInvoice,
) -> Result<Decision<VendorInvoice>, MaterialsError> {
    let company = new.company.clone();
    let loaded = invoice(store, &company, &new.vendor, &new.number).await?;
    let mut order_ids: Vec<String> = new
        .lines
        .iter()
        .map(|l| purchase_order_id(&company, &l.purchase_order))
        .collect();
    order_ids.sort();
    order_ids.dedup();
    let loaded_orders = aggregate::load_many::<PurchaseOrder>(store, &order_ids).await?;
    let orders = existing(loaded_orders.values(), |o: &PurchaseOrder| o.number.clone());
    let mut keys: Vec<(MaterialNumber, PlantCode, LocationCode)> = new
        .lines
        .iter()
        .filter_map(|l| orders.get(&l.purchase_order)?.lines.get(&l.line))
        .map(|l| {
            let o = &l.ordered;
            (o.material.clone(), o.plant.clone(), o.location.clone())
        })
        .collect();
    keys.sort();
    keys.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let mut material_ids: Vec<String> = keys.iter().map(|k| material_id(&company, &k.0)).collect();
    material_ids.dedup();
    let materials = existing(
        aggregate::load_many::<Material>(store, &material_ids)
            .await?
            .values(),
        |m: &Material| m.number.clone(),
    );
    let mut stocks = std::collections::HashMap::new();
    let mut loaded_stocks = std::collections::HashMap::new();
    for (material, plant, location) in &keys {
        let stream =
            aggregate::load_snapshotted::<Stock>(store, &stock_id(&company, material, plant))
                .await?;
        if let Some(state) = &stream.state {
            stocks.insert((material.clone(), plant.clone()), state.clone());
        }
        loaded_stocks.insert(
            (material.clone(), plant.clone()),
            (stream, location.clone()),
        );
    }
    let view = InvoicingView {
        vendor: vendor(store, &company, &new.vendor).await?.state,
        orders,
        materials,
        stocks,
    };
    let (vendor_number, number, posting_date) =
        (new.vendor.clone(), new.number.clone(), new.posting_date);
    let decided = VendorInvoice::decide_post(loaded.state.as_ref(), new, &view)?;
    let mut writes = vec![loaded.write(std::slice::from_ref(&decided.invoice))];
    for (order, events) in &decided.orders {
        if let Some(stream) = loaded_orders.get(&purchase_order_id(&company, order)) {
            writes.push(stream.write(events));
        }
    }
    let mut reads = Vec::new();
    for (key, (stream, location)) in loaded_stocks {
        let Some(amounts) = decided.revaluations.get(&key) else {
            reads.push(stream.pin());
            continue;
        };
        // One movement per order line whose layers take a share, decided in turn.
        let mut state = stream.state.clone();
        let mut events = Vec::new();
        for (source, amount) in amounts {
            let movement = PostMovement {
                movement_id: uuid::Uuid::now_v7(),
                posting_date,
                location: location.clone(),
                kind: MovementKind::Revaluation {
                    vendor: vendor_number.clone(),
                    invoice: number.clone(),
                    source: source.clone(),
                },
                quantity: rust_decimal::Decimal::ZERO,
                receipt_value: *amount,
            };
            for event in <Stock as Aggregate>::decide(&state, StockCommand::Post(movement))? {
                <Stock as Aggregate>::apply(&mut state, &event);
                events.push(event);
            }
        }
        if !events.is_empty() {
            writes.push(stream.write(&events));
        }
    }
    let outcome = VendorInvoice::apply(None, &decided.invoice).ok_or(MaterialsError::NotFound {
        what: "invoice",
        id: number.to_string(),
    })?;
    Ok(Decision {
        writes,
        reads,
        outcome,
    })
}

/// Releases a blocked invoice for payment: 404 when it does not exist.
pub async fn release_invoice(
    store: &EventStore,
    company: &CompanyCode,
    vendor_number: &VendorNumber,
    number: &InvoiceNumber,
) -> Result<Decision<VendorInvoice>, MaterialsError> {
    let loaded = invoice(store, company, vendor_number, number).await?;
    let id = format!("{vendor_number}/{number}");
    if loaded.state.is_none() {
        return Err(MaterialsError::NotFound {
            what: "invoice",
            id,
        });
    }
    decision(&loaded, VendorInvoiceCommand::Release, "invoice", id)
}

/// Pays a vendor's documents: the payment and each document's settlement in one append.
pub async fn pay(
    store: &EventStore,
    new: NewPayment,
) -> Result<Decision<VendorPayment>, MaterialsError> {
    let company = new.company.clone();
    let ids: Vec<String> = new
        .documents
        .iter()
        .map(|d| invoice_id(&company, &new.vendor, &d.invoice))
        .collect();
    let loaded_documents = aggregate::load_many::<VendorInvoice>(store, &ids).await?;
    let documents = existing(loaded_documents.values(), |d: &VendorInvoice| {
        d.number.clone()
    });
    let found_vendor = vendor(store, &company, &new.vendor).await?.state;
    let payment = Loaded::<VendorPayment>::new(payment_id(&company, new.payment_id));
    let decided = VendorPayment::decide(new, found_vendor.as_ref(), &documents)?;
    let mut writes = payment.decide(decided.payment.clone())?.writes();
    for settlement in decided.settlements {
        let VendorInvoiceEvent::VendorInvoiceSettled { vendor, number, .. } = &settlement else {
            continue;
        };
        if let Some(stream) = loaded_documents.get(&invoice_id(&company, vendor, number)) {
            writes.extend(
                stream
                    .decide(VendorInvoiceCommand::Settle(settlement.clone()))?
                    .writes(),
            );
        }
    }
    let outcome = VendorPayment::apply(None, &decided.payment).ok_or(MaterialsError::NotFound {
        what: "payment",
        id: payment.id.clone(),
    })?;
    Ok(Decision {
        writes,
        reads: vec![],
        outcome,
    })
}
