//! Given/when/then on the materials domain's pure decisions.

use crate::aggregates::*;
use crate::domain::*;
use crate::valuation::ValuationMethod;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use tributary_kernel::Aggregate;
use tributary_kernel::master::{CompanyCode, Currency, UnitOfMeasure};
use uuid::Uuid;

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn company() -> CompanyCode {
    CompanyCode::parse("MAIN").unwrap()
}

fn plant() -> Plant {
    let mut state = None;
    for event in Plant::decide_create(
        None,
        company(),
        PlantCode::parse("P100").unwrap(),
        "Main plant".into(),
        Currency::parse("EUR").unwrap(),
    )
    .unwrap()
    {
        <Plant as Aggregate>::apply(&mut state, &event);
    }
    for location in ["RAW", "FG"] {
        let events = state
            .as_ref()
            .unwrap()
            .decide_add_location(LocationCode::parse(location).unwrap(), location.into())
            .unwrap();
        for event in events {
            <Plant as Aggregate>::apply(&mut state, &event);
        }
    }
    state.unwrap()
}

fn material() -> Material {
    let new = NewMaterial {
        company: company(),
        number: MaterialNumber::parse("BOLT-M8").unwrap(),
        description: "Bolt".into(),
        base_unit: UnitOfMeasure::parse("PC").unwrap(),
        alternative_units: vec![UnitConversion {
            unit: UnitOfMeasure::parse("BOX").unwrap(),
            factor: d("12"),
        }],
        material_type: MaterialType::Raw,
        material_group: None,
        valuation_class: ValuationClass::parse("3000").unwrap(),
    };
    let mut state = None;
    for event in <Material as Aggregate>::decide(&None, MaterialCommand::Create(new)).unwrap() {
        <Material as Aggregate>::apply(&mut state, &event);
    }
    state.unwrap()
}

/// A stock and the events it was built from, replayed.
struct Given {
    state: Option<Stock>,
}

impl Given {
    fn stock(method: ValuationMethod) -> Given {
        let mut state = None;
        let command = StockCommand::Open {
            material: material(),
            plant: plant(),
            valuation_method: method,
        };
        for event in <Stock as Aggregate>::decide(&state, command).unwrap() {
            <Stock as Aggregate>::apply(&mut state, &event);
        }
        Given { state }
    }

    /// Posts a movement; the state after it comes from applying its event.
    fn post(
        &mut self,
        location: &str,
        kind: MovementKind,
        quantity: &str,
        value: &str,
    ) -> Result<Vec<Movement>, Vec<Violation>> {
        let command = PostMovement {
            movement_id: Uuid::now_v7(),
            posting_date: date("2026-03-02"),
            location: LocationCode::parse(location).unwrap(),
            kind,
            quantity: d(quantity),
            receipt_value: d(value),
        };
        let events = <Stock as Aggregate>::decide(&self.state, StockCommand::Post(command))?;
        let mut movements = Vec::new();
        for event in &events {
            if let StockEvent::GoodsMovementPosted {
                movements: posted, ..
            } = event
            {
                movements.extend(posted.clone());
            }
            <Stock as Aggregate>::apply(&mut self.state, event);
        }
        Ok(movements)
    }

    fn stock_now(&self) -> &Stock {
        self.state.as_ref().unwrap()
    }
}

fn receipt() -> MovementKind {
    MovementKind::Receipt {
        purchase_order: None,
        line: None,
        vendor: None,
    }
}

fn issue() -> MovementKind {
    MovementKind::Issue {
        cost_center: "CC1".into(),
    }
}

#[test]
fn golden_event_fixtures_read_back_as_their_event_types() {
    let problems = crate::module().fixture_problems();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn moving_average_changes_with_each_receipt_and_issues_leave_at_it() {
    let mut given = Given::stock(ValuationMethod::MovingAverage);
    given.post("RAW", receipt(), "100", "200.00").unwrap();
    let second = given.post("RAW", receipt(), "50", "130.00").unwrap();
    assert_eq!(second[0].moving_average_after, d("2.200000"));
    let out = given.post("RAW", issue(), "30", "0").unwrap();
    assert_eq!(out[0].quantity, d("-30"));
    assert_eq!(out[0].value, d("-66.00"));
    assert_eq!(out[0].stock_value_after, d("264.00"));
    assert_eq!(given.stock_now().valuation.value, d("264.00"));
    assert_eq!(
        given
            .stock_now()
            .on_hand(&LocationCode::parse("RAW").unwrap()),
        d("120")
    );
}

#[test]
fn stock_never_goes_negative_in_a_location_or_in_total() {
    let mut given = Given::stock(ValuationMethod::Fifo);
    given.post("RAW", receipt(), "10", "25.00").unwrap();
    let refused = given.post("FG", issue(), "1", "0").unwrap_err();
    assert_eq!(refused[0].rule(), "stock_short");
    assert_eq!(refused[0].field(), "quantity");
    let refused = given.post("RAW", issue(), "10.5", "0").unwrap_err();
    assert_eq!(refused[0].rule(), "stock_short");
    let refused = given.post("RAW", issue(), "0", "0").unwrap_err();
    assert_eq!(refused[0].rule(), "positive");
    assert_eq!(
        given.stock_now().valuation.quantity,
        d("10"),
        "nothing changed"
    );
}

#[test]
fn transfers_move_quantity_not_value_and_counts_post_the_difference() {
    let mut given = Given::stock(ValuationMethod::MovingAverage);
    given.post("RAW", receipt(), "20", "50.00").unwrap();
    let moved = given
        .post(
            "RAW",
            MovementKind::TransferOut {
                to_location: LocationCode::parse("FG").unwrap(),
            },
            "5",
            "0",
        )
        .unwrap();
    assert_eq!(moved.len(), 2);
    assert_eq!((moved[0].quantity, moved[1].quantity), (d("-5"), d("5")));
    assert!(moved.iter().all(|m| m.value.is_zero()));
    let stock = given.stock_now();
    assert_eq!(stock.on_hand(&LocationCode::parse("FG").unwrap()), d("5"));
    assert_eq!(stock.valuation.value, d("50.00"));
    // Counted 13 where the book says 15: 2 missing, at the average 2.50.
    let counted = given
        .post(
            "RAW",
            MovementKind::CountDifference {
                counted: d("13"),
                book: Decimal::ZERO,
            },
            "13",
            "0",
        )
        .unwrap();
    assert_eq!(
        (counted[0].quantity, counted[0].value),
        (d("-2"), d("-5.00"))
    );
    assert_eq!(
        counted[0].kind,
        MovementKind::CountDifference {
            counted: d("13"),
            book: d("15")
        }
    );
    let self_transfer = given
        .post(
            "RAW",
            MovementKind::TransferOut {
                to_location: LocationCode::parse("RAW").unwrap(),
            },
            "1",
            "0",
        )
        .unwrap_err();
    assert_eq!(self_transfer[0].rule(), "transfer_to_itself");
}

#[test]
fn alternative_units_convert_to_the_base_unit_and_others_are_refused() {
    let material = material();
    assert_eq!(
        material.to_base(d("2"), &UnitOfMeasure::parse("BOX").unwrap()),
        Some(d("24"))
    );
    assert_eq!(
        material.to_base(d("2"), &UnitOfMeasure::parse("KG").unwrap()),
        None
    );
    let mut twice = NewMaterial {
        company: company(),
        number: MaterialNumber::parse("X").unwrap(),
        description: "x".into(),
        base_unit: UnitOfMeasure::parse("PC").unwrap(),
        alternative_units: vec![UnitConversion {
            unit: UnitOfMeasure::parse("PC").unwrap(),
            factor: d("1"),
        }],
        material_type: MaterialType::Trading,
        material_group: None,
        valuation_class: ValuationClass::parse("3100").unwrap(),
    };
    let refused = Material::decide_create(None, twice.clone()).unwrap_err();
    assert_eq!(refused[0].field(), "alternative_units[0].unit");
    twice.alternative_units.clear();
    assert!(
        Material::decide_create(Some(&material), twice).unwrap_err()[0].rule() == "material_exists"
    );
}

#[test]
fn payment_terms_give_the_discount_within_the_period_only() {
    let terms = PaymentTerms {
        discount_percent: d("2"),
        discount_days: 10,
        net_days: 30,
    };
    let invoiced = date("2026-03-01");
    assert_eq!(terms.due_date(invoiced), date("2026-03-31"));
    assert_eq!(
        terms.discount(d("1234.56"), invoiced, date("2026-03-11")),
        d("24.69")
    );
    assert_eq!(
        terms.discount(d("1234.56"), invoiced, date("2026-03-12")),
        Decimal::ZERO
    );
}

/// Hermanson, Edwards & Ivancevich, *Accounting Principles: A Business Perspective* (CC BY 3.0),
/// chapter 7 "Measuring and reporting inventories", Exhibit 49 (the year's purchases and
/// sales), Exhibit 56 (perpetual FIFO: ending inventory $179, cost of goods sold $511 = 690 -
/// 179) and Exhibit 59 (perpetual moving average: ending inventory 20 @ $8.929 = $178.58, cost
/// of goods sold $511.42 = 82.50 + 167.00 + 86.75 + 175.17). The book values each sale at the
/// unrounded average and rounds the amount to the cent (Nov 22: 20 × 262.75 / 30 = 175.1666… →
/// 175.17, "rounding difference"), which is this valuation's rule.
#[test]
fn a_textbook_perpetual_inventory_gives_the_published_figures_with_fifo_and_moving_average() {
    // (receipt units, unit cost) or (sale units); the beginning inventory is the first receipt.
    let year: &[(&str, &str)] = &[
        ("10", "8.00"),
        ("10", "8.50"),
        ("-10", ""),
        ("20", "8.40"),
        ("-20", ""),
        ("10", "9.00"),
        ("-10", ""),
        ("20", "8.80"),
        ("-20", ""),
        ("10", "9.10"),
    ];
    for (method, ending, cost_of_goods_sold, sales) in [
        (
            ValuationMethod::Fifo,
            "179.00",
            "511.00",
            vec!["80.00", "169.00", "84.00", "178.00"],
        ),
        (
            ValuationMethod::MovingAverage,
            "178.58",
            "511.42",
            vec!["82.50", "167.00", "86.75", "175.17"],
        ),
    ] {
        let mut given = Given::stock(method);
        let mut sold = Vec::new();
        for (units, cost) in year {
            if let Some(units) = units.strip_prefix('-') {
                let out = given.post("RAW", issue(), units, "0").unwrap();
                sold.push(-out[0].value);
            } else {
                let value = (d(units) * d(cost)).to_string();
                given.post("RAW", receipt(), units, &value).unwrap();
            }
        }
        let stock = &given.stock_now().valuation;
        assert_eq!(stock.quantity, d("20"), "{method:?}");
        assert_eq!(stock.value, d(ending), "{method:?}: ending inventory");
        let expected: Vec<Decimal> = sales.iter().map(|s| d(s)).collect();
        assert_eq!(sold, expected, "{method:?}: each sale's cost");
        assert_eq!(
            sold.iter().sum::<Decimal>(),
            d(cost_of_goods_sold),
            "{method:?}: cost of goods sold"
        );
    }
    // The moving average after the year: 178.58 / 20 = 8.929 (the book's unit cost).
    let mut given = Given::stock(ValuationMethod::MovingAverage);
    given.post("RAW", receipt(), "20", "178.58").unwrap();
    assert_eq!(given.stock_now().valuation.average_price(), d("8.929000"));
}

fn vendor() -> Vendor {
    Vendor {
        company: company(),
        number: VendorNumber::parse("V-ACME").unwrap(),
        name: "Acme".into(),
        currency: Currency::parse("EUR").unwrap(),
        bank_account: None,
        payment_terms: PaymentTerms {
            discount_percent: d("2"),
            discount_days: 10,
            net_days: 30,
        },
    }
}

/// An order for one box of 12 at 10.00 (a price per piece of 0.8333…), received in pieces.
fn order_of_one_box() -> PurchaseOrder {
    let mut material = material();
    material
        .plants
        .insert(plant().code, ValuationMethod::MovingAverage);
    let view = PurchasingView {
        vendor: Some(vendor()),
        materials: [(material.number.clone(), material)].into(),
        plants: [(plant().code, plant())].into(),
    };
    let new = NewPurchaseOrder {
        company: company(),
        number: PurchaseOrderNumber::parse("4500000001").unwrap(),
        vendor: vendor().number,
        currency: None,
        order_date: date("2026-03-01"),
        over_delivery_percent: Decimal::ZERO,
        lines: vec![NewOrderLine {
            line: 10,
            material: MaterialNumber::parse("BOLT-M8").unwrap(),
            plant: plant().code,
            location: LocationCode::parse("RAW").unwrap(),
            quantity: d("1"),
            unit: Some(UnitOfMeasure::parse("BOX").unwrap()),
            unit_price: d("10.00"),
            delivery_date: date("2026-03-02"),
        }],
    };
    let mut state = None;
    for event in PurchaseOrder::decide_create(None, new, &view).unwrap() {
        state = PurchaseOrder::apply(state, &event);
    }
    state.unwrap()
}

#[test]
fn partial_receipts_are_valued_cumulatively_and_add_up_to_the_order_value() {
    let mut order = order_of_one_box();
    let mut values = Vec::new();
    // 5 + 5 + 2 pieces: 4.17 + 4.16 + 1.67 = 10.00, not 4.17 + 4.17 + 1.67 = 10.01.
    for pieces in ["5", "5", "2"] {
        let events = order
            .decide_receive(10, Uuid::nil(), date("2026-03-02"), d(pieces))
            .unwrap();
        let PurchaseOrderEvent::PurchaseOrderReceived { value, .. } = &events[0] else {
            panic!("a receipt");
        };
        values.push(*value);
        order = PurchaseOrder::apply(Some(order), &events[0]).unwrap();
    }
    assert_eq!(values, vec![d("4.17"), d("4.16"), d("1.67")]);
    assert_eq!(order.lines[&10].received_value, d("10.00"));
    assert_eq!(order.status(), OrderStatus::Received);
    // Nothing beyond the ordered box (no tolerance): refused, naming the rule.
    let refused = order
        .decide_receive(10, Uuid::nil(), date("2026-03-03"), d("1"))
        .unwrap_err();
    assert_eq!(refused[0].rule(), "over_delivery_tolerance");
    // A return takes back what the last pieces added.
    let events = order
        .decide_receive(10, Uuid::nil(), date("2026-03-04"), d("-2"))
        .unwrap();
    let PurchaseOrderEvent::PurchaseOrderReceived { value, .. } = &events[0] else {
        panic!("a return");
    };
    assert_eq!(*value, d("-1.67"));
}

#[test]
fn a_cash_discount_is_taken_within_the_discount_days_only() {
    let terms = vendor().payment_terms;
    let invoiced = date("2026-03-03");
    assert_eq!(terms.due_date(invoiced), date("2026-04-02"));
    assert_eq!(
        terms.discount(d("54.20"), invoiced, date("2026-03-13")),
        d("1.08")
    );
    assert_eq!(
        terms.discount(d("54.20"), invoiced, date("2026-03-14")),
        Decimal::ZERO
    );
}

/// Two orders for 10 pieces at 1.00 each received; 10 pieces issued (FIFO: the first order's);
/// the first order's invoice says 1.20 a piece. Moving average: the 10 on hand take the whole
/// 2.00. FIFO: nothing of the first order is left, so it is all a price difference; an invoice
/// of the second order revalues that order's layer only.
#[test]
fn price_differences_follow_the_valuation_method() {
    let po = |n: &str, line: u32| MovementKind::Receipt {
        purchase_order: Some(n.into()),
        line: Some(line),
        vendor: None,
    };
    for (method, first_share, second_share) in [
        (ValuationMethod::MovingAverage, "2.00", "1.00"),
        (ValuationMethod::Fifo, "0", "1.00"),
    ] {
        let mut given = Given::stock(method);
        given.post("RAW", po("PO1", 10), "10", "10.00").unwrap();
        given.post("RAW", po("PO2", 10), "10", "10.00").unwrap();
        given.post("RAW", issue(), "10", "0").unwrap();
        let order = |number: &str| {
            let mut order = order_of_one_box();
            order.number = PurchaseOrderNumber::parse(number).unwrap();
            let line = order.lines.get_mut(&10).unwrap();
            line.ordered.quantity = d("10");
            line.ordered.unit = UnitOfMeasure::parse("PC").unwrap();
            line.ordered.factor = d("1");
            line.ordered.unit_price = d("1.00");
            line.received = d("10");
            line.received_value = d("10.00");
            order
        };
        let stock = given.stock_now().clone();
        let mut material = material();
        material.plants.insert(plant().code, method);
        let view = InvoicingView {
            vendor: Some(vendor()),
            orders: [
                (order("PO1").number.clone(), order("PO1")),
                (order("PO2").number.clone(), order("PO2")),
            ]
            .into(),
            materials: [(material.number.clone(), material)].into(),
            stocks: [((stock.material.clone(), stock.plant.clone()), stock)].into(),
        };
        let invoice = |number: &str, po: &str, amount: &str| NewInvoice {
            company: company(),
            vendor: vendor().number,
            number: InvoiceNumber::parse(number).unwrap(),
            kind: InvoiceKind::Invoice,
            invoice_date: date("2026-03-05"),
            posting_date: date("2026-03-05"),
            currency: None,
            lines: vec![NewInvoiceLine {
                purchase_order: PurchaseOrderNumber::parse(po).unwrap(),
                line: 10,
                quantity: d("10"),
                unit: None,
                amount: d(amount),
            }],
        };
        let lines = |decision: &InvoiceDecision| match &decision.invoice {
            VendorInvoiceEvent::VendorInvoicePosted { lines, .. } => lines[0].clone(),
            other => panic!("{other:?}"),
        };
        let first =
            VendorInvoice::decide_post(None, invoice("I-1", "PO1", "12.00"), &view).unwrap();
        let line = lines(&first);
        assert_eq!(
            (line.stock_share, line.price_difference),
            (d(first_share), d("2.00") - d(first_share)),
            "{method:?}, first order"
        );
        let second =
            VendorInvoice::decide_post(None, invoice("I-2", "PO2", "11.00"), &view).unwrap();
        assert_eq!(lines(&second).stock_share, d(second_share), "{method:?}");
        // The revaluation lands on the second order's layer (FIFO) and the value follows.
        let (source, amount) = second.revaluations.values().next().unwrap()[0].clone();
        given
            .post(
                "RAW",
                MovementKind::Revaluation {
                    vendor: vendor().number,
                    invoice: InvoiceNumber::parse("I-2").unwrap(),
                    source,
                },
                "0",
                &amount.to_string(),
            )
            .unwrap();
        let valuation = &given.stock_now().valuation;
        assert_eq!(valuation.value, d("11.00"), "{method:?}");
        if method == ValuationMethod::Fifo {
            assert_eq!(valuation.layers[0].source.as_deref(), Some("PO2/10"));
            assert_eq!(valuation.layers[0].value, d("11.00"));
        }
    }
}

#[test]
fn ibans_are_checked_by_their_check_digits() {
    assert_eq!(
        parse_iban("de89 3704 0044 0532 0130 00").unwrap(),
        "DE89370400440532013000"
    );
    assert_eq!(
        parse_iban("GB82 WEST 1234 5698 7654 32").unwrap(),
        "GB82WEST12345698765432"
    );
    for (bad, rule) in [
        ("DE89 3704 0044 0532 0130 01", "check digits do not match"),
        ("DE89", "15 to 34"),
        ("1289370400440532013000", "country code"),
        ("DE89-3704-0044-0532-0130", "letters and digits"),
    ] {
        let error = parse_iban(bad).unwrap_err();
        assert!(error.contains(rule), "{bad}: {error}");
    }
}
