//! Materials' aggregates on the kernel's [`Aggregate`] abstraction. The stock of a material in
//! a plant takes every goods movement, so it is [`Snapshotted`].

use crate::domain::*;
use crate::valuation::ValuationMethod;
use tributary_kernel::Aggregate;
use tributary_kernel::aggregate::Snapshotted;
use tributary_kernel::event::DomainEvent;
use tributary_kernel::master::{CompanyCode, Currency};

impl DomainEvent for PlantEvent {}
impl DomainEvent for MaterialEvent {}
impl DomainEvent for VendorEvent {
    fn upcasters() -> &'static [tributary_kernel::event::Upcaster] {
        &[VENDOR_CREATED_V1]
    }
}
impl DomainEvent for StockEvent {}
impl DomainEvent for PurchaseOrderEvent {}
impl DomainEvent for VendorInvoiceEvent {}
impl DomainEvent for VendorPaymentEvent {}

pub enum PlantCommand {
    Create {
        company: CompanyCode,
        plant: PlantCode,
        name: String,
        currency: Currency,
    },
    AddLocation {
        location: LocationCode,
        name: String,
    },
}

impl Aggregate for Plant {
    const TYPE: &'static str = "materials.plant";
    type State = Option<Plant>;
    type Event = PlantEvent;
    type Command = PlantCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<Plant>,
        command: PlantCommand,
    ) -> Result<Vec<PlantEvent>, Vec<Violation>> {
        match (state, command) {
            (
                existing,
                PlantCommand::Create {
                    company,
                    plant,
                    name,
                    currency,
                },
            ) => Plant::decide_create(existing.as_ref(), company, plant, name, currency),
            (Some(plant), PlantCommand::AddLocation { location, name }) => {
                plant.decide_add_location(location, name)
            }
            (None, PlantCommand::AddLocation { .. }) => Ok(Vec::new()),
        }
    }

    fn apply(state: &mut Option<Plant>, event: &PlantEvent) {
        *state = Plant::apply(state.take(), event);
    }
}

pub enum MaterialCommand {
    Create(NewMaterial),
    Extend {
        plant: Plant,
        valuation_method: ValuationMethod,
    },
}

impl Aggregate for Material {
    const TYPE: &'static str = "materials.material";
    type State = Option<Material>;
    type Event = MaterialEvent;
    type Command = MaterialCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<Material>,
        command: MaterialCommand,
    ) -> Result<Vec<MaterialEvent>, Vec<Violation>> {
        match (state, command) {
            (existing, MaterialCommand::Create(new)) => {
                Material::decide_create(existing.as_ref(), new)
            }
            (
                Some(material),
                MaterialCommand::Extend {
                    plant,
                    valuation_method,
                },
            ) => material.decide_extend(&plant, valuation_method),
            (None, MaterialCommand::Extend { .. }) => Ok(Vec::new()),
        }
    }

    fn apply(state: &mut Option<Material>, event: &MaterialEvent) {
        *state = Material::apply(state.take(), event);
    }
}

impl Aggregate for Vendor {
    const TYPE: &'static str = "materials.vendor";
    type State = Option<Vendor>;
    type Event = VendorEvent;
    type Command = Vendor;
    type Rejection = Vec<Violation>;

    fn decide(state: &Option<Vendor>, vendor: Vendor) -> Result<Vec<VendorEvent>, Vec<Violation>> {
        Vendor::decide_create(state.as_ref(), vendor)
    }

    fn apply(state: &mut Option<Vendor>, event: &VendorEvent) {
        *state = Vendor::apply(state.take(), event);
    }
}

pub enum StockCommand {
    Open {
        material: Material,
        plant: Plant,
        valuation_method: ValuationMethod,
    },
    Post(PostMovement),
}

impl Aggregate for Stock {
    const TYPE: &'static str = "materials.stock";
    type State = Option<Stock>;
    type Event = StockEvent;
    type Command = StockCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<Stock>,
        command: StockCommand,
    ) -> Result<Vec<StockEvent>, Vec<Violation>> {
        match (state, command) {
            (
                None,
                StockCommand::Open {
                    material,
                    plant,
                    valuation_method,
                },
            ) => Ok(vec![Stock::open(&material, &plant, valuation_method)]),
            (
                Some(_),
                StockCommand::Open {
                    material, plant, ..
                },
            ) => Err(vec![Violation::MaterialAlreadyInPlant {
                material: material.number,
                plant: plant.code,
            }]),
            (Some(stock), StockCommand::Post(movement)) => stock.decide_post(movement),
            (None, StockCommand::Post(_)) => Ok(Vec::new()),
        }
    }

    fn apply(state: &mut Option<Stock>, event: &StockEvent) {
        *state = Stock::apply(state.take(), event);
    }
}

pub enum PurchaseOrderCommand {
    Create {
        new: Box<NewPurchaseOrder>,
        view: Box<PurchasingView>,
    },
    ChangeLine {
        line: u32,
        change: LineChange,
    },
    CancelLine {
        line: u32,
    },
    Close,
    /// A receipt (positive base quantity) or a return to the vendor (negative).
    Receive {
        line: u32,
        movement_id: uuid::Uuid,
        posting_date: chrono::NaiveDate,
        quantity: rust_decimal::Decimal,
    },
}

impl Aggregate for PurchaseOrder {
    const TYPE: &'static str = "materials.purchase_order";
    type State = Option<PurchaseOrder>;
    type Event = PurchaseOrderEvent;
    type Command = PurchaseOrderCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<PurchaseOrder>,
        command: PurchaseOrderCommand,
    ) -> Result<Vec<PurchaseOrderEvent>, Vec<Violation>> {
        let Some(order) = state else {
            return match command {
                PurchaseOrderCommand::Create { new, view } => {
                    PurchaseOrder::decide_create(None, *new, &view)
                }
                _ => Ok(Vec::new()),
            };
        };
        match command {
            PurchaseOrderCommand::Create { new, view } => {
                PurchaseOrder::decide_create(Some(order), *new, &view)
            }
            PurchaseOrderCommand::ChangeLine { line, change } => {
                order.decide_change_line(line, change)
            }
            PurchaseOrderCommand::CancelLine { line } => order.decide_cancel_line(line),
            PurchaseOrderCommand::Close => order.decide_close(),
            PurchaseOrderCommand::Receive {
                line,
                movement_id,
                posting_date,
                quantity,
            } => order.decide_receive(line, movement_id, posting_date, quantity),
        }
    }

    fn apply(state: &mut Option<PurchaseOrder>, event: &PurchaseOrderEvent) {
        *state = PurchaseOrder::apply(state.take(), event);
    }
}

/// An invoice is decided across aggregates (see [`VendorInvoice::decide_post`]); on its own
/// stream it is released and settled.
pub enum VendorInvoiceCommand {
    Release,
    Settle(VendorInvoiceEvent),
}

impl Aggregate for VendorInvoice {
    const TYPE: &'static str = "materials.vendor_invoice";
    type State = Option<VendorInvoice>;
    type Event = VendorInvoiceEvent;
    type Command = VendorInvoiceCommand;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<VendorInvoice>,
        command: VendorInvoiceCommand,
    ) -> Result<Vec<VendorInvoiceEvent>, Vec<Violation>> {
        match (state, command) {
            (Some(invoice), VendorInvoiceCommand::Release) => invoice.decide_release(),
            (Some(_), VendorInvoiceCommand::Settle(event)) => Ok(vec![event]),
            (None, _) => Ok(Vec::new()),
        }
    }

    fn apply(state: &mut Option<VendorInvoice>, event: &VendorInvoiceEvent) {
        *state = VendorInvoice::apply(state.take(), event);
    }
}

/// A payment is decided with the documents it settles (see [`VendorPayment::decide`]).
impl Aggregate for VendorPayment {
    const TYPE: &'static str = "materials.vendor_payment";
    type State = Option<VendorPayment>;
    type Event = VendorPaymentEvent;
    type Command = VendorPaymentEvent;
    type Rejection = Vec<Violation>;

    fn decide(
        state: &Option<VendorPayment>,
        made: VendorPaymentEvent,
    ) -> Result<Vec<VendorPaymentEvent>, Vec<Violation>> {
        Ok(if state.is_some() {
            Vec::new()
        } else {
            vec![made]
        })
    }

    fn apply(state: &mut Option<VendorPayment>, event: &VendorPaymentEvent) {
        *state = VendorPayment::apply(state.take(), event);
    }
}

impl Snapshotted for Stock {
    /// 2: FIFO layers name the order line they came from.
    const SNAPSHOT_VERSION: i32 = 2;
    const SNAPSHOT_EVERY: i64 = 1_000;
}
