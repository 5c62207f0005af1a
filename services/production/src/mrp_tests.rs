//! MRP against published textbook problems (every figure of each record checked), lot sizing,
//! exception messages, and net change against a full run over random structures.

use super::*;
use std::str::FromStr;

macro_rules! dec {
    ($value:literal) => {
        Decimal::from_str(stringify!($value)).expect("a decimal literal")
    };
}

/// A Monday: week 1 of the textbooks' records is the bucket starting here.
fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 1, 4).expect("a date")
}

fn weeks(count: u32) -> Horizon {
    Horizon {
        start: start(),
        size: BucketSize::Week,
        count,
    }
}

/// The first day of textbook week `week` (1-based).
fn week(week: usize) -> NaiveDate {
    weeks(60).date_of(week - 1)
}

fn planning(lead_weeks: u32, lot_sizing: LotSizing) -> Option<PlanningData> {
    Some(PlanningData {
        procurement: Procurement::Make,
        lead_time_days: lead_weeks * 7,
        lot_sizing,
        safety_stock: Decimal::ZERO,
    })
}

fn multiples(of: Decimal) -> LotSizing {
    LotSizing {
        rounding: of,
        ..LotSizing::LOT_FOR_LOT
    }
}

fn component(material: &str, quantity: Decimal) -> Component {
    Component {
        material: material.to_owned(),
        quantity,
        scrap_percent: Decimal::ZERO,
        valid_from: None,
        valid_to: None,
        backflush: false,
    }
}

fn demand(at_week: usize, quantity: Decimal) -> Requirement {
    Requirement {
        date: week(at_week),
        quantity,
        kind: "planned_independent".into(),
        source: format!("MPS week {at_week}"),
    }
}

fn receipt(at_week: usize, quantity: Decimal) -> Receipt {
    Receipt {
        date: week(at_week),
        quantity,
        kind: "purchase_order".into(),
        source: format!("PO week {at_week}"),
    }
}

/// A row of the record by textbook week (1-based), over `count` weeks.
fn row(plan: &MaterialPlan, field: fn(&BucketRecord) -> Decimal) -> Vec<Decimal> {
    plan.records.iter().map(field).collect()
}

fn releases(plan: &MaterialPlan) -> Vec<Decimal> {
    row(plan, |r| r.planned_releases)
}

/// `[(week, quantity)]` as a row of `count` weeks.
fn at(count: usize, entries: &[(usize, Decimal)]) -> Vec<Decimal> {
    let mut row = vec![Decimal::ZERO; count];
    for (week, quantity) in entries {
        row[week - 1] += *quantity;
    }
    row
}

/// Heizer, Render & Munson, *Operations Management* (Pearson), chapter "Material Requirements
/// Planning (MRP) and ERP", problem: one A is two B and three C; B is one F; C is one D, one E
/// and two F. On hand A 20, B 50, C 60, D 25; B has a scheduled receipt of 30 in period 1.
/// A, B, C lot for lot; D, E, F in multiples of 50, 100, 100. Lead times: A, B, D one period;
/// C, E, F two. Gross requirements of A: 20 in period 1, 20 in 2, 60 in 6, 50 in 8. Published
/// planned order releases (as reproduced with the worked solution at
/// https://www.edu.com/homework-helper/math/question/1098717): A 20 in P1, 60 in P5, 50 in P7;
/// B 80 in P4, 100 in P6; C 180 in P3, 150 in P5; D 200 in P2, 150 in P4; E 200 in P1, 200 in P3;
/// F 400 in P1, 100 in P2, 300 in P3, 100 in P4. F is a component on two levels (low-level
/// code 2), so it is netted once, after both B and C.
#[test]
fn multi_level_with_stock_receipts_and_multiples_heizer() {
    let mut planner = Planner::new(weeks(8));
    planner.set(
        "A",
        MaterialInputs {
            planning: planning(1, LotSizing::LOT_FOR_LOT),
            on_hand: dec!(20),
            requirements: vec![
                demand(1, dec!(20)),
                demand(2, dec!(20)),
                demand(6, dec!(60)),
                demand(8, dec!(50)),
            ],
            receipts: vec![],
            components: vec![component("B", dec!(2)), component("C", dec!(3))],
        },
    );
    planner.set(
        "B",
        MaterialInputs {
            planning: planning(1, LotSizing::LOT_FOR_LOT),
            on_hand: dec!(50),
            receipts: vec![receipt(1, dec!(30))],
            components: vec![component("F", dec!(1))],
            ..MaterialInputs::default()
        },
    );
    planner.set(
        "C",
        MaterialInputs {
            planning: planning(2, LotSizing::LOT_FOR_LOT),
            on_hand: dec!(60),
            components: vec![
                component("D", dec!(1)),
                component("E", dec!(1)),
                component("F", dec!(2)),
            ],
            ..MaterialInputs::default()
        },
    );
    for (material, on_hand, lead, lot) in [
        ("D", dec!(25), 1, dec!(50)),
        ("E", dec!(0), 2, dec!(100)),
        ("F", dec!(0), 2, dec!(100)),
    ] {
        planner.set(
            material,
            MaterialInputs {
                planning: planning(lead, multiples(lot)),
                on_hand,
                ..MaterialInputs::default()
            },
        );
    }
    planner.plan_all().expect("no cycle");
    let plan = |m: &str| planner.plan(m).expect("planned").clone();
    let expected = [
        ("A", vec![(1, dec!(20)), (5, dec!(60)), (7, dec!(50))]),
        ("B", vec![(4, dec!(80)), (6, dec!(100))]),
        ("C", vec![(3, dec!(180)), (5, dec!(150))]),
        ("D", vec![(2, dec!(200)), (4, dec!(150))]),
        ("E", vec![(1, dec!(200)), (3, dec!(200))]),
        (
            "F",
            vec![
                (1, dec!(400)),
                (2, dec!(100)),
                (3, dec!(300)),
                (4, dec!(100)),
            ],
        ),
    ];
    for (material, entries) in expected {
        assert_eq!(
            releases(&plan(material)),
            at(8, &entries),
            "releases of {material}"
        );
    }
    // The records behind them, figure by figure where the solution shows them.
    let f = plan("F");
    assert_eq!(f.low_level_code, 2, "F is below C and below B");
    assert_eq!(
        row(&f, |r| r.gross_requirements),
        at(
            8,
            &[
                (3, dec!(360)),
                (4, dec!(80)),
                (5, dec!(300)),
                (6, dec!(100))
            ]
        )
    );
    assert_eq!(
        row(&f, |r| r.net_requirements),
        at(
            8,
            &[(3, dec!(360)), (4, dec!(40)), (5, dec!(240)), (6, dec!(40))]
        )
    );
    assert_eq!(
        row(&f, |r| r.projected_on_hand),
        vec![
            dec!(0),
            dec!(0),
            dec!(40),
            dec!(60),
            dec!(60),
            dec!(60),
            dec!(60),
            dec!(60)
        ]
    );
    let b = plan("B");
    assert_eq!(
        row(&b, |r| r.projected_on_hand),
        vec![
            dec!(40),
            dec!(40),
            dec!(40),
            dec!(40),
            dec!(0),
            dec!(0),
            dec!(0),
            dec!(0)
        ]
    );
    assert_eq!(row(&b, |r| r.scheduled_receipts), at(8, &[(1, dec!(30))]));
    let d = plan("D");
    assert_eq!(
        row(&d, |r| r.planned_receipts),
        at(8, &[(3, dec!(200)), (5, dec!(150))])
    );
    assert_eq!(
        row(&d, |r| r.projected_on_hand),
        vec![
            dec!(25),
            dec!(25),
            dec!(45),
            dec!(45),
            dec!(45),
            dec!(45),
            dec!(45),
            dec!(45)
        ]
    );
    let e = plan("E");
    assert_eq!(
        row(&e, |r| r.projected_on_hand),
        vec![
            dec!(0),
            dec!(0),
            dec!(20),
            dec!(20),
            dec!(70),
            dec!(70),
            dec!(70),
            dec!(70)
        ]
    );
    // Each proposal's dates: receipt in the week of its record, release a lead time earlier.
    let proposal = &d.proposals[0];
    assert_eq!(
        (
            proposal.receipt_date,
            proposal.release_date,
            proposal.quantity
        ),
        (week(3), week(2), dec!(200))
    );
    // B's receipt of 30 in period 1 is not needed before period 5.
    assert_eq!(
        b.exceptions
            .iter()
            .map(|e| (e.kind, e.suggested_date))
            .collect::<Vec<_>>(),
        vec![(ExceptionKind::RescheduleOut, Some(week(5)))]
    );
}

/// Heizer, Render & Munson, *Operations Management*, chapter "Material Requirements Planning
/// (MRP) and ERP", Examples 1-4 (Speaker Kits, Inc.): an Awesome speaker kit A is two B and
/// three C; B is two D and two E; C is two F and five E; F is one D and three G. Lead times A 1,
/// B 2, C 1, D 1, E 2, F 3, G 2 weeks; nothing on hand. The published gross requirements plan
/// for 50 A in week 8 releases A 50 in week 7, B 100 in 5, C 150 in 6, E 200 in 3 and 750 in 4,
/// F 300 in 3, D 300 in 2 and 200 in 4, G 900 in 1. D is needed on two levels (below B and
/// below F): netted once, at low-level code 3.
#[test]
fn zero_stock_explosion_over_four_levels_heizer_speaker_kits() {
    let mut planner = Planner::new(weeks(8));
    let structure = [
        (
            "A",
            1,
            vec![component("B", dec!(2)), component("C", dec!(3))],
        ),
        (
            "B",
            2,
            vec![component("D", dec!(2)), component("E", dec!(2))],
        ),
        (
            "C",
            1,
            vec![component("F", dec!(2)), component("E", dec!(5))],
        ),
        (
            "F",
            3,
            vec![component("D", dec!(1)), component("G", dec!(3))],
        ),
        ("D", 1, vec![]),
        ("E", 2, vec![]),
        ("G", 2, vec![]),
    ];
    for (material, lead, components) in structure {
        planner.set(
            material,
            MaterialInputs {
                planning: planning(lead, LotSizing::LOT_FOR_LOT),
                requirements: if material == "A" {
                    vec![demand(8, dec!(50))]
                } else {
                    vec![]
                },
                components,
                ..MaterialInputs::default()
            },
        );
    }
    planner.plan_all().expect("no cycle");
    let expected = [
        ("A", vec![(7, dec!(50))]),
        ("B", vec![(5, dec!(100))]),
        ("C", vec![(6, dec!(150))]),
        ("E", vec![(3, dec!(200)), (4, dec!(750))]),
        ("F", vec![(3, dec!(300))]),
        ("D", vec![(2, dec!(300)), (4, dec!(200))]),
        ("G", vec![(1, dec!(900))]),
    ];
    for (material, entries) in expected {
        let plan = planner.plan(material).expect("planned");
        assert_eq!(releases(plan), at(8, &entries), "releases of {material}");
        // Nothing on hand: every gross requirement is a net requirement and a receipt.
        assert_eq!(
            row(plan, |r| r.gross_requirements),
            row(plan, |r| r.planned_receipts),
            "receipts of {material}"
        );
        assert!(plan.records.iter().all(|r| r.projected_on_hand.is_zero()));
    }
    let d = planner.plan("D").expect("planned");
    assert_eq!(d.low_level_code, 3);
    assert_eq!(
        row(d, |r| r.gross_requirements),
        at(8, &[(3, dec!(300)), (5, dec!(200))])
    );
}

/// Krajewski, Ritzman & Malhotra, *Operations Management: Processes and Supply Chains*
/// (Pearson), chapter "Resource Planning", the inventory record of item C, the seat
/// subassembly: fixed order quantity 230, lead time 2 weeks, 37 on hand, a scheduled receipt of
/// 230 in week 1, gross requirements 150, 0, 0, 120, 0, 150, 120, 0. Published record: projected
/// on hand 117, 117, 117, 227, 227, 77, 187, 187; planned receipts of 230 in weeks 4 and 7,
/// released in weeks 2 and 5.
#[test]
fn single_item_fixed_order_quantity_krajewski_seat_subassembly() {
    let mut planner = Planner::new(weeks(8));
    planner.set(
        "C",
        MaterialInputs {
            planning: planning(
                2,
                LotSizing {
                    procedure: LotProcedure::FixedOrderQuantity {
                        quantity: dec!(230),
                    },
                    ..LotSizing::LOT_FOR_LOT
                },
            ),
            on_hand: dec!(37),
            requirements: vec![
                demand(1, dec!(150)),
                demand(4, dec!(120)),
                demand(6, dec!(150)),
                demand(7, dec!(120)),
            ],
            receipts: vec![receipt(1, dec!(230))],
            components: vec![],
        },
    );
    planner.plan_all().expect("no cycle");
    let plan = planner.plan("C").expect("planned");
    assert_eq!(
        row(plan, |r| r.projected_on_hand),
        vec![
            dec!(117),
            dec!(117),
            dec!(117),
            dec!(227),
            dec!(227),
            dec!(77),
            dec!(187),
            dec!(187)
        ]
    );
    assert_eq!(
        row(plan, |r| r.planned_receipts),
        at(8, &[(4, dec!(230)), (7, dec!(230))])
    );
    assert_eq!(releases(plan), at(8, &[(2, dec!(230)), (5, dec!(230))]));
    assert_eq!(
        row(plan, |r| r.net_requirements),
        at(8, &[(4, dec!(3)), (7, dec!(43))])
    );
    assert!(plan.exceptions.is_empty(), "{:?}", plan.exceptions);
}

fn single(inputs: MaterialInputs, count: u32) -> MaterialPlan {
    let mut planner = Planner::new(weeks(count));
    planner.set("M", inputs);
    planner.plan_all().expect("no cycle");
    planner.plan("M").expect("planned").clone()
}

#[test]
fn lot_sizing_minimum_rounding_periods_and_safety_stock() {
    let requirements = vec![
        demand(2, dec!(30)),
        demand(3, dec!(20)),
        demand(4, dec!(25)),
        demand(6, dec!(10)),
    ];
    let with = |lot_sizing, safety_stock| MaterialInputs {
        planning: Some(PlanningData {
            procurement: Procurement::Buy,
            lead_time_days: 7,
            lot_sizing,
            safety_stock,
        }),
        on_hand: dec!(10),
        requirements: requirements.clone(),
        ..MaterialInputs::default()
    };
    // Three periods of supply from the first short one: weeks 2-4 in week 2, week 6 in week 6.
    let plan = single(
        with(
            LotSizing {
                procedure: LotProcedure::FixedPeriods { periods: 3 },
                ..LotSizing::LOT_FOR_LOT
            },
            Decimal::ZERO,
        ),
        6,
    );
    assert_eq!(
        row(&plan, |r| r.planned_receipts),
        at(6, &[(2, dec!(65)), (6, dec!(10))])
    );
    assert_eq!(
        plan.proposals[0].proposal_type,
        ProposalType::PurchaseRequisition
    );
    // A minimum of 40, rounded up to multiples of 15: 20 short → 45.
    let plan = single(
        with(
            LotSizing {
                procedure: LotProcedure::LotForLot,
                minimum: dec!(40),
                rounding: dec!(15),
            },
            Decimal::ZERO,
        ),
        6,
    );
    assert_eq!(
        row(&plan, |r| r.planned_receipts),
        at(6, &[(2, dec!(45)), (4, dec!(45))])
    );
    assert_eq!(
        row(&plan, |r| r.projected_on_hand),
        vec![dec!(10), dec!(25), dec!(5), dec!(25), dec!(25), dec!(15)]
    );
    // Safety stock 5: nothing may fall below it; week 1 is already short by nothing.
    let plan = single(with(LotSizing::LOT_FOR_LOT, dec!(5)), 6);
    assert_eq!(
        row(&plan, |r| r.net_requirements),
        at(
            6,
            &[(2, dec!(25)), (3, dec!(20)), (4, dec!(25)), (6, dec!(10))]
        )
    );
    assert!(
        plan.records
            .iter()
            .all(|r| r.projected_on_hand == dec!(5) || r.projected_on_hand == dec!(10))
    );
    // Fixed order quantity below the shortage: as many lots as cover it, one proposal each.
    let plan = single(
        with(
            LotSizing {
                procedure: LotProcedure::FixedOrderQuantity { quantity: dec!(12) },
                ..LotSizing::LOT_FOR_LOT
            },
            Decimal::ZERO,
        ),
        2,
    );
    assert_eq!(
        plan.proposals.len(),
        1,
        "20 short: two lots of 12 in one proposal"
    );
    assert_eq!(row(&plan, |r| r.planned_receipts), at(2, &[(2, dec!(24))]));
    // Lots are shaped before they are counted: lots of 30 rounded to 100 cover 90 with one.
    let plan = single(
        MaterialInputs {
            requirements: vec![demand(1, dec!(90))],
            ..with(
                LotSizing {
                    procedure: LotProcedure::FixedOrderQuantity { quantity: dec!(30) },
                    minimum: Decimal::ZERO,
                    rounding: dec!(100),
                },
                Decimal::ZERO,
            )
        },
        2,
    );
    assert_eq!(row(&plan, |r| r.planned_receipts), at(2, &[(1, dec!(100))]));
}

#[test]
fn exceptions_reschedule_cancel_past_due_and_no_planning_data() {
    let inputs = MaterialInputs {
        planning: Some(PlanningData {
            procurement: Procurement::Buy,
            lead_time_days: 14,
            lot_sizing: LotSizing::LOT_FOR_LOT,
            safety_stock: Decimal::ZERO,
        }),
        on_hand: dec!(0),
        requirements: vec![demand(1, dec!(10)), demand(4, dec!(5))],
        receipts: vec![
            receipt(3, dec!(10)),
            Receipt {
                source: "PO late".into(),
                ..receipt(2, dec!(5))
            },
            Receipt {
                source: "PO spare".into(),
                ..receipt(5, dec!(8))
            },
        ],
        components: vec![],
    };
    let plan = single(inputs, 6);
    let kinds: Vec<(ExceptionKind, String, Option<NaiveDate>)> = plan
        .exceptions
        .iter()
        .map(|e| (e.kind, e.source.clone(), e.suggested_date))
        .collect();
    assert_eq!(
        kinds,
        vec![
            // Week 1 is short by 10 before anything comes: a proposal due in week 1, released two
            // weeks before the horizon.
            (ExceptionKind::PastDueRelease, String::new(), Some(start())),
            // The week-2 receipt is the first in line for week 1's shortage: bring it in.
            (ExceptionKind::RescheduleIn, "PO late".into(), Some(week(1))),
            (
                ExceptionKind::RescheduleIn,
                "PO week 3".into(),
                Some(week(1))
            ),
            (ExceptionKind::Cancel, "PO spare".into(), None),
        ]
    );
    assert_eq!(plan.proposals[0].release_date, week(1) - Duration::days(14));
    // Requirements without planning data: shown, not planned, named.
    let plan = single(
        MaterialInputs {
            requirements: vec![demand(2, dec!(3))],
            ..MaterialInputs::default()
        },
        4,
    );
    assert!(plan.proposals.is_empty());
    assert_eq!(plan.exceptions[0].kind, ExceptionKind::NoPlanningData);
    assert_eq!(plan.records[3].projected_on_hand, dec!(-3));
}

#[test]
fn validity_dates_and_scrap_of_components() {
    let mut planner = Planner::new(weeks(6));
    planner.set(
        "P",
        MaterialInputs {
            planning: planning(1, LotSizing::LOT_FOR_LOT),
            requirements: vec![demand(3, dec!(10)), demand(6, dec!(10))],
            components: vec![
                Component {
                    valid_to: Some(week(3)),
                    scrap_percent: dec!(10),
                    ..component("OLD", dec!(2))
                },
                Component {
                    valid_from: Some(week(3) + Duration::days(1)),
                    ..component("NEW", dec!(1))
                },
            ],
            ..MaterialInputs::default()
        },
    );
    for m in ["OLD", "NEW"] {
        planner.set(
            m,
            MaterialInputs {
                planning: planning(0, LotSizing::LOT_FOR_LOT),
                ..MaterialInputs::default()
            },
        );
    }
    planner.plan_all().expect("no cycle");
    // Released in week 2 (old component, 10 % scrap) and week 5 (new component).
    assert_eq!(
        row(planner.plan("OLD").expect("planned"), |r| r
            .gross_requirements),
        at(6, &[(2, dec!(22))])
    );
    assert_eq!(
        row(planner.plan("NEW").expect("planned"), |r| r
            .gross_requirements),
        at(6, &[(5, dec!(10))])
    );
}

#[test]
fn a_cycle_is_named_and_nothing_planned() {
    let mut planner = Planner::new(weeks(4));
    for (parent, child) in [("X", "Y"), ("Y", "Z"), ("Z", "X"), ("T", "X")] {
        planner.set(
            parent,
            MaterialInputs {
                components: vec![component(child, dec!(1))],
                ..MaterialInputs::default()
            },
        );
    }
    let cycle = planner.plan_all().expect_err("a cycle").0;
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    assert_eq!(cycle.first(), cycle.last());
    assert!(!cycle.contains(&"T".to_owned()), "{cycle:?}");
    assert_eq!(
        path_down("T", "Z", |m| planner
            .inputs(m)
            .map(|i| i
                .components
                .iter()
                .map(|c| c.material.clone())
                .collect::<Vec<_>>())
            .unwrap_or_default()),
        Some(vec!["T".into(), "X".into(), "Y".into(), "Z".into()])
    );
}

// ----- net change against a full run ------------------------------------------------------

/// SplitMix64: reproducible random cases from a seed, printed when a case fails.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn quantity(&mut self) -> Decimal {
        Decimal::from(self.below(40) + 1)
    }
}

fn random_planning(random: &mut Random) -> PlanningData {
    let procedure = match random.below(3) {
        0 => LotProcedure::LotForLot,
        1 => LotProcedure::FixedOrderQuantity {
            quantity: Decimal::from(random.below(30) + 5),
        },
        _ => LotProcedure::FixedPeriods {
            periods: u32::try_from(random.below(4) + 1).unwrap_or(1),
        },
    };
    PlanningData {
        procurement: if random.below(2) == 0 {
            Procurement::Make
        } else {
            Procurement::Buy
        },
        lead_time_days: u32::try_from(random.below(21)).unwrap_or(0),
        lot_sizing: LotSizing {
            procedure,
            minimum: Decimal::from(random.below(3) * 10),
            rounding: Decimal::from(random.below(3) * 5),
        },
        safety_stock: Decimal::from(random.below(3) * 4),
    }
}

/// Components only of materials later in the list: never a cycle.
fn random_components(random: &mut Random, index: usize, names: &[String]) -> Vec<Component> {
    let later = names.len() - index - 1;
    (0..random.below(4).min(later as u64))
        .map(|_| {
            let to = index + 1 + random.below(later as u64) as usize;
            Component {
                scrap_percent: Decimal::from(random.below(2) * 5),
                valid_from: (random.below(4) == 0).then(|| week(1 + random.below(6) as usize)),
                ..component(&names[to], Decimal::from(random.below(3) + 1))
            }
        })
        .collect()
}

fn random_date(random: &mut Random) -> NaiveDate {
    // Some before the horizon (past due), some after it.
    start() + Duration::days(random.below(100) as i64 - 10)
}

fn random_inputs(random: &mut Random, index: usize, names: &[String]) -> MaterialInputs {
    MaterialInputs {
        planning: (random.below(8) != 0).then(|| random_planning(random)),
        on_hand: Decimal::from(random.below(30)),
        requirements: (0..random.below(4))
            .map(|i| Requirement {
                date: random_date(random),
                quantity: random.quantity(),
                kind: "sales_order".into(),
                source: format!("SO-{index}-{i}"),
            })
            .collect(),
        receipts: (0..random.below(3))
            .map(|i| Receipt {
                date: random_date(random),
                quantity: random.quantity(),
                kind: "purchase_order".into(),
                source: format!("PO-{index}-{i}"),
            })
            .collect(),
        components: random_components(random, index, names),
    }
}

/// After every change, what net change re-planned equals a full run over the same inputs, and
/// it re-planned only the changed material and materials below it.
#[test]
fn net_change_equals_a_full_run_over_random_structures_and_changes() {
    for seed in 0..300u64 {
        let mut random = Random(seed);
        let count = 3 + random.below(12) as usize;
        let names: Vec<String> = (0..count).map(|i| format!("M{i:02}")).collect();
        let horizon = Horizon {
            start: start(),
            size: if random.below(2) == 0 {
                BucketSize::Week
            } else {
                BucketSize::Day
            },
            count: 4 + u32::try_from(random.below(10)).unwrap_or(0),
        };
        let mut net = Planner::new(horizon);
        for (i, name) in names.iter().enumerate() {
            net.set(name, random_inputs(&mut random, i, &names));
        }
        net.plan_all().expect("acyclic by construction");
        for step in 0..15 {
            let index = random.below(count as u64) as usize;
            let name = &names[index];
            let mut inputs = net.inputs(name).cloned().unwrap_or_default();
            match random.below(6) {
                0 => inputs.on_hand += Decimal::from(random.below(20)) - Decimal::from(10),
                1 => inputs.requirements.push(Requirement {
                    date: random_date(&mut random),
                    quantity: random.quantity(),
                    kind: "planned_independent".into(),
                    source: format!("PIR-{step}"),
                }),
                2 => {
                    inputs.requirements.pop();
                    inputs.receipts.pop();
                }
                3 => inputs.receipts.push(Receipt {
                    date: random_date(&mut random),
                    quantity: random.quantity(),
                    kind: "production_order".into(),
                    source: format!("PRD-{step}"),
                }),
                4 => inputs.components = random_components(&mut random, index, &names),
                _ => inputs.planning = Some(random_planning(&mut random)),
            }
            net.set(name, inputs);
            let replanned = net.replan().expect("acyclic");
            let mut full = Planner::new(horizon);
            for m in &names {
                full.set(m, net.inputs(m).cloned().unwrap_or_default());
            }
            full.plan_all().expect("acyclic");
            for m in &names {
                assert_eq!(
                    net.plan(m),
                    full.plan(m),
                    "seed {seed} step {step}: net change and full run differ for {m}"
                );
            }
            // Nothing above the changed material was planned again.
            for m in &replanned {
                let i: usize = names.iter().position(|n| n == m).expect("a name");
                assert!(i >= index, "seed {seed} step {step}: {m} is above {name}");
            }
        }
    }
}
