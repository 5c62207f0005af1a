//! Material requirements planning over one plant's state, pure: no store, no lake.
//!
//! The inputs of each material (planning data, stock on hand, independent demand, scheduled
//! receipts, its bill of material) go into a [`Planner`]; [`Planner::plan_all`] plans every
//! material once, after all its parents (low-level codes), bucket by bucket: gross
//! requirements, scheduled receipts, projected on hand, net requirements, planned receipts
//! (lot-sized, rounded up) and planned releases (receipt date minus the lead time), and the
//! exception messages of its scheduled receipts and planned orders.
//!
//! Net change: [`Planner::set`] replaces one material's inputs and marks it; [`Planner::replan`]
//! plans the marked materials and, level by level, every component whose dependent demand moved
//! because a parent's planned releases or bill of material changed. Each material's plan is a
//! function of its own inputs and its parents' planned releases only, so what net change leaves
//! equals a full run over the same inputs (tested over random structures and changes).

use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Make (production) or buy (purchasing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Procurement {
    Make,
    Buy,
}

impl Procurement {
    pub fn as_str(self) -> &'static str {
        match self {
            Procurement::Make => "make",
            Procurement::Buy => "buy",
        }
    }

    /// What MRP proposes for it: a planned order or a purchase requisition.
    pub fn proposal(self) -> ProposalType {
        match self {
            Procurement::Make => ProposalType::PlannedOrder,
            Procurement::Buy => ProposalType::PurchaseRequisition,
        }
    }
}

/// How a shortage becomes an order quantity, before the minimum and the rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "procedure", rename_all = "snake_case")]
pub enum LotProcedure {
    /// Exactly the shortage of the bucket.
    LotForLot,
    /// Lots of this quantity, as many as cover the shortage (in one proposal).
    FixedOrderQuantity { quantity: Decimal },
    /// The shortages of this many buckets, from the first short one, in one proposal.
    FixedPeriods { periods: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotSizing {
    #[serde(flatten)]
    pub procedure: LotProcedure,
    /// At least this much per proposal (zero: no minimum).
    #[serde(default)]
    pub minimum: Decimal,
    /// A proposal is rounded up to a multiple of this (zero: no rounding).
    #[serde(default)]
    pub rounding: Decimal,
}

impl LotSizing {
    pub const LOT_FOR_LOT: LotSizing = LotSizing {
        procedure: LotProcedure::LotForLot,
        minimum: Decimal::ZERO,
        rounding: Decimal::ZERO,
    };

    /// The quantity of the one proposal that covers `shortage` (`covering`: what the procedure
    /// covers, at least the shortage): as many fixed lots as cover it, or the quantity itself;
    /// then at least the minimum, rounded up to a multiple of the rounding.
    fn lot(&self, shortage: Decimal, covering: Decimal) -> Decimal {
        let shape = |quantity: Decimal| {
            let quantity = quantity.max(self.minimum);
            if self.rounding > Decimal::ZERO {
                (quantity / self.rounding).ceil() * self.rounding
            } else {
                quantity
            }
        };
        match self.procedure {
            LotProcedure::FixedOrderQuantity { quantity } if quantity > Decimal::ZERO => {
                let lot = shape(quantity);
                (shortage / lot).ceil().max(Decimal::ONE) * lot
            }
            _ => shape(covering),
        }
    }
}

/// A material's planning data in a plant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanningData {
    pub procurement: Procurement,
    /// Calendar days from release to receipt.
    pub lead_time_days: u32,
    pub lot_sizing: LotSizing,
    pub safety_stock: Decimal,
}

/// One component line of a bill of material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    pub material: String,
    /// Per one base unit of the parent.
    pub quantity: Decimal,
    /// Percent added for what is lost in production.
    pub scrap_percent: Decimal,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    /// Issued to production orders by the confirmation of their last operation (backflush),
    /// not by hand. Planning ignores it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backflush: bool,
}

impl Component {
    pub fn valid_on(&self, date: NaiveDate) -> bool {
        self.valid_from.is_none_or(|from| from <= date) && self.valid_to.is_none_or(|to| date <= to)
    }

    /// What `parent_quantity` of the parent needs of this component, rounded up to the four
    /// decimals quantities are kept in.
    pub fn requirement(&self, parent_quantity: Decimal) -> Decimal {
        (parent_quantity * self.quantity * (Decimal::ONE_HUNDRED + self.scrap_percent)
            / Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::AwayFromZero)
    }
}

/// A requirement with its date and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub date: NaiveDate,
    pub quantity: Decimal,
    /// `sales_order`, `planned_independent`, `production_order` (its components), …
    pub kind: String,
    /// The document, e.g. `SO-1/10`.
    pub source: String,
}

/// A scheduled receipt: an open purchase order line or production order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub date: NaiveDate,
    pub quantity: Decimal,
    pub kind: String,
    pub source: String,
}

/// Everything MRP reads of one material in one plant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialInputs {
    pub planning: Option<PlanningData>,
    pub on_hand: Decimal,
    pub requirements: Vec<Requirement>,
    pub receipts: Vec<Receipt>,
    /// Its bill of material (empty: none).
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BucketSize {
    Day,
    Week,
}

impl BucketSize {
    pub fn days(self) -> i64 {
        match self {
            BucketSize::Day => 1,
            BucketSize::Week => 7,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BucketSize::Day => "day",
            BucketSize::Week => "week",
        }
    }
}

/// The buckets planned: `count` of `size` from `start`. Requirements and receipts before the
/// start fall in the first bucket (past due); those after the last are not planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Horizon {
    pub start: NaiveDate,
    pub size: BucketSize,
    pub count: u32,
}

impl Horizon {
    pub fn bucket_of(&self, date: NaiveDate) -> Option<usize> {
        let days = (date - self.start).num_days();
        if days < 0 {
            return Some(0);
        }
        let bucket = usize::try_from(days / self.size.days()).ok()?;
        (bucket < self.count as usize).then_some(bucket)
    }

    pub fn date_of(&self, bucket: usize) -> NaiveDate {
        self.start + Duration::days(self.size.days() * bucket as i64)
    }

    /// The first day after the horizon.
    pub fn end(&self) -> NaiveDate {
        self.date_of(self.count as usize)
    }

    pub fn days(&self) -> i64 {
        self.size.days() * i64::from(self.count)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalType {
    PlannedOrder,
    PurchaseRequisition,
}

impl ProposalType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalType::PlannedOrder => "planned_order",
            ProposalType::PurchaseRequisition => "purchase_requisition",
        }
    }
}

/// What MRP proposes: a planned order (make) or a purchase requisition (buy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub material: String,
    pub proposal_type: ProposalType,
    pub quantity: Decimal,
    pub receipt_date: NaiveDate,
    /// Receipt date minus the lead time; may lie before the horizon (past due).
    pub release_date: NaiveDate,
}

/// One bucket of a material's time-phased record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub gross_requirements: Decimal,
    pub scheduled_receipts: Decimal,
    /// At the end of the bucket.
    pub projected_on_hand: Decimal,
    pub net_requirements: Decimal,
    pub planned_receipts: Decimal,
    pub planned_releases: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    /// A scheduled receipt comes after the bucket that needs it: bring it forward.
    RescheduleIn,
    /// A scheduled receipt comes before it is needed: push it out.
    RescheduleOut,
    /// A scheduled receipt is not needed within the horizon.
    Cancel,
    /// A proposal should have been released before the horizon starts.
    PastDueRelease,
    /// Requirements of a material that has no planning data: not planned.
    NoPlanningData,
}

impl ExceptionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::RescheduleIn => "reschedule_in",
            ExceptionKind::RescheduleOut => "reschedule_out",
            ExceptionKind::Cancel => "cancel",
            ExceptionKind::PastDueRelease => "past_due_release",
            ExceptionKind::NoPlanningData => "no_planning_data",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    pub kind: ExceptionKind,
    /// The receipt's or proposal's document (empty for a proposal: it has no number yet).
    pub source: String,
    /// The date it has.
    pub date: NaiveDate,
    /// The date it should have (reschedule, past due: the horizon start), if any.
    pub suggested_date: Option<NaiveDate>,
    pub quantity: Decimal,
    pub message: String,
}

/// A material's plan: its low-level code, record, proposals and exceptions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialPlan {
    pub low_level_code: u32,
    pub records: Vec<BucketRecord>,
    pub proposals: Vec<Proposal>,
    pub exceptions: Vec<Exception>,
}

/// A bill of material that makes a material its own component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bills of material form a cycle through {}", .0.join(" → "))]
pub struct Cycle(pub Vec<String>);

/// The path from `from` down to `to` through the bills of material, if any (`components`
/// gives the component materials of a material).
pub fn path_down<F, I>(from: &str, to: &str, components: F) -> Option<Vec<String>>
where
    F: Fn(&str) -> I,
    I: IntoIterator<Item = String>,
{
    let mut seen: HashSet<String> = HashSet::new();
    let mut stack: Vec<(String, Vec<String>)> = vec![(from.to_owned(), vec![from.to_owned()])];
    while let Some((material, path)) = stack.pop() {
        if material == to {
            return Some(path);
        }
        if !seen.insert(material.clone()) {
            continue;
        }
        for component in components(&material) {
            let mut next = path.clone();
            next.push(component.clone());
            stack.push((component, next));
        }
    }
    None
}

/// One plant's planning: inputs, and the plans of the last (re)planning.
#[derive(Debug, Clone)]
pub struct Planner {
    horizon: Horizon,
    inputs: BTreeMap<String, MaterialInputs>,
    plans: HashMap<String, MaterialPlan>,
    /// Component → the parents whose bills of material name it.
    parents: HashMap<String, BTreeSet<String>>,
    low_level: HashMap<String, u32>,
    /// A bill of material changed since the low-level codes were computed.
    structure_changed: bool,
    dirty: BTreeSet<String>,
}

impl Planner {
    pub fn new(horizon: Horizon) -> Planner {
        Planner {
            horizon,
            inputs: BTreeMap::new(),
            plans: HashMap::new(),
            parents: HashMap::new(),
            low_level: HashMap::new(),
            structure_changed: false,
            dirty: BTreeSet::new(),
        }
    }

    pub fn horizon(&self) -> Horizon {
        self.horizon
    }

    pub fn inputs(&self, material: &str) -> Option<&MaterialInputs> {
        self.inputs.get(material)
    }

    pub fn plan(&self, material: &str) -> Option<&MaterialPlan> {
        self.plans.get(material)
    }

    pub fn plans(&self) -> impl Iterator<Item = (&String, &MaterialPlan)> {
        self.plans.iter()
    }

    pub fn materials(&self) -> impl Iterator<Item = &String> {
        self.inputs.keys()
    }

    /// Replaces a material's inputs; it (and, when its bill of material changed, its old and
    /// new components) is planned again at the next [`Planner::replan`].
    pub fn set(&mut self, material: &str, inputs: MaterialInputs) {
        let old = self.inputs.get(material);
        if old == Some(&inputs) {
            return;
        }
        let old_components: Vec<String> = old
            .map(|o| o.components.iter().map(|c| c.material.clone()).collect())
            .unwrap_or_default();
        let bom_changed = old.map(|o| &o.components) != Some(&inputs.components);
        if bom_changed {
            for component in &old_components {
                if let Some(parents) = self.parents.get_mut(component) {
                    parents.remove(material);
                }
                self.dirty.insert(component.clone());
            }
            for component in &inputs.components {
                self.parents
                    .entry(component.material.clone())
                    .or_default()
                    .insert(material.to_owned());
                self.dirty.insert(component.material.clone());
            }
            // Low-level codes follow the structure; recomputed before the next planning.
            self.structure_changed = true;
        }
        self.inputs.insert(material.to_owned(), inputs);
        self.dirty.insert(material.to_owned());
    }

    /// Plans every material again; answers those whose plan changed.
    pub fn plan_all(&mut self) -> Result<BTreeSet<String>, Cycle> {
        let all: Vec<String> = self.inputs.keys().cloned().collect();
        self.dirty.extend(all);
        self.replan()
    }

    /// Plans what changed since the last planning and every component its changes reach;
    /// answers the materials whose plan changed (every material, the first time).
    pub fn replan(&mut self) -> Result<BTreeSet<String>, Cycle> {
        if self.structure_changed {
            let levels = self.low_level_codes()?;
            // A material whose code moved is shown again with it.
            for (material, level) in &levels {
                if self.low_level.get(material) != Some(level) {
                    self.dirty.insert(material.clone());
                }
            }
            self.low_level = levels;
            self.structure_changed = false;
        }
        // (low-level code, material): every parent before its components.
        let mut queue: BTreeSet<(u32, String)> = std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|m| (self.level(&m), m))
            .collect();
        let mut planned = BTreeSet::new();
        while let Some((level, material)) = queue.pop_first() {
            let plan = self.plan_material(&material, level);
            let old = self.plans.get(&material);
            let releases_moved = old.map(|o| &o.proposals) != Some(&plan.proposals);
            if releases_moved && let Some(inputs) = self.inputs.get(&material) {
                for component in &inputs.components {
                    let m = &component.material;
                    queue.insert((self.level(m), m.clone()));
                }
            }
            // A plan computed again the same is not written again.
            if old != Some(&plan) {
                self.plans.insert(material.clone(), plan);
                planned.insert(material);
            }
        }
        Ok(planned)
    }

    fn level(&self, material: &str) -> u32 {
        self.low_level.get(material).copied().unwrap_or(0)
    }

    /// Each material's deepest position in any bill of material (0: an end item).
    fn low_level_codes(&self) -> Result<HashMap<String, u32>, Cycle> {
        let mut nodes: BTreeSet<&str> = self.inputs.keys().map(String::as_str).collect();
        for inputs in self.inputs.values() {
            nodes.extend(inputs.components.iter().map(|c| c.material.as_str()));
        }
        let components_of = |m: &str| -> Vec<&str> {
            let mut found: Vec<&str> = self
                .inputs
                .get(m)
                .map(|i| i.components.iter().map(|c| c.material.as_str()).collect())
                .unwrap_or_default();
            found.sort_unstable();
            found.dedup();
            found
        };
        let mut parents_left: HashMap<&str, usize> = nodes.iter().map(|m| (*m, 0)).collect();
        for m in &nodes {
            for c in components_of(m) {
                *parents_left.entry(c).or_default() += 1;
            }
        }
        let mut level: HashMap<String, u32> = HashMap::new();
        let mut ready: Vec<&str> = nodes
            .iter()
            .copied()
            .filter(|m| parents_left[m] == 0)
            .collect();
        let mut done: HashSet<&str> = HashSet::new();
        while let Some(m) = ready.pop() {
            done.insert(m);
            let own = *level.entry(m.to_owned()).or_insert(0);
            for c in components_of(m) {
                let entry = level.entry(c.to_owned()).or_insert(0);
                *entry = (*entry).max(own + 1);
                let left = parents_left.get_mut(c).expect("every component is a node");
                *left -= 1;
                if *left == 0 {
                    ready.push(c);
                }
            }
        }
        if done.len() < nodes.len() {
            // Nodes left over lie on a cycle or below one: name a cycle.
            let down = |m: &str| components_of(m).into_iter().map(str::to_owned);
            let cycle = nodes
                .iter()
                .filter(|m| !done.contains(**m))
                .find_map(|start| {
                    components_of(start).into_iter().find_map(|c| {
                        path_down(c, start, down).map(|mut path| {
                            path.insert(0, (*start).to_owned());
                            path
                        })
                    })
                })
                .unwrap_or_default();
            return Err(Cycle(cycle));
        }
        Ok(level)
    }

    /// The dependent demand of `material`: its parents' planned releases exploded through
    /// their bills of material valid on each release date.
    fn dependent(&self, material: &str) -> Vec<(NaiveDate, Decimal, String)> {
        let mut found = Vec::new();
        for parent in self.parents.get(material).into_iter().flatten() {
            let (Some(plan), Some(inputs)) = (self.plans.get(parent), self.inputs.get(parent))
            else {
                continue;
            };
            for proposal in &plan.proposals {
                for component in inputs
                    .components
                    .iter()
                    .filter(|c| c.material == material && c.valid_on(proposal.release_date))
                {
                    found.push((
                        proposal.release_date,
                        component.requirement(proposal.quantity),
                        parent.clone(),
                    ));
                }
            }
        }
        found
    }

    fn plan_material(&self, material: &str, level: u32) -> MaterialPlan {
        let horizon = self.horizon;
        let n = horizon.count as usize;
        let empty = MaterialInputs::default();
        let inputs = self.inputs.get(material).unwrap_or(&empty);
        let mut gross = vec![Decimal::ZERO; n];
        let mut scheduled = vec![Decimal::ZERO; n];
        for r in &inputs.requirements {
            if let Some(b) = horizon.bucket_of(r.date) {
                gross[b] += r.quantity;
            }
        }
        for (date, quantity, _) in self.dependent(material) {
            if let Some(b) = horizon.bucket_of(date) {
                gross[b] += quantity;
            }
        }
        let mut receipts: Vec<(usize, &Receipt)> = inputs
            .receipts
            .iter()
            .filter_map(|r| horizon.bucket_of(r.date).map(|b| (b, r)))
            .collect();
        receipts.sort_by(|a, b| (a.0, &a.1.source).cmp(&(b.0, &b.1.source)));
        for (b, r) in &receipts {
            scheduled[*b] += r.quantity;
        }
        let mut plan = MaterialPlan {
            low_level_code: level,
            records: Vec::with_capacity(n),
            proposals: Vec::new(),
            exceptions: Vec::new(),
        };
        let Some(planning) = &inputs.planning else {
            // Shown as it stands, not planned.
            let mut on_hand = inputs.on_hand;
            for b in 0..n {
                on_hand += scheduled[b] - gross[b];
                plan.records.push(BucketRecord {
                    gross_requirements: gross[b],
                    scheduled_receipts: scheduled[b],
                    projected_on_hand: on_hand,
                    ..BucketRecord::default()
                });
            }
            if gross.iter().any(|g| *g > Decimal::ZERO) {
                plan.exceptions.push(Exception {
                    kind: ExceptionKind::NoPlanningData,
                    source: String::new(),
                    date: horizon.start,
                    suggested_date: None,
                    quantity: gross.iter().copied().sum(),
                    message: format!(
                        "material {material} has requirements but no planning data in the plant: not planned"
                    ),
                });
            }
            return plan;
        };
        let safety = planning.safety_stock;
        let lead = Duration::days(i64::from(planning.lead_time_days));
        let mut planned_receipts = vec![Decimal::ZERO; n];
        let mut planned_releases = vec![Decimal::ZERO; n];
        let mut on_hand = inputs.on_hand;
        for b in 0..n {
            let before = on_hand;
            let mut available = before + scheduled[b] - gross[b];
            let mut net = Decimal::ZERO;
            if available < safety {
                net = safety - available;
                let covering = match planning.lot_sizing.procedure {
                    LotProcedure::FixedPeriods { periods } if periods > 1 => {
                        let last = (b + periods as usize).min(n);
                        let mut running = available;
                        let mut most = net;
                        for k in b + 1..last {
                            running += scheduled[k] - gross[k];
                            most = most.max(safety - running);
                        }
                        most
                    }
                    _ => net,
                };
                let receipt_date = horizon.date_of(b);
                let release_date = receipt_date - lead;
                let release_bucket = horizon.bucket_of(release_date).unwrap_or(0);
                let quantity = planning.lot_sizing.lot(net, covering);
                available += quantity;
                planned_receipts[b] += quantity;
                planned_releases[release_bucket] += quantity;
                if release_date < horizon.start {
                    plan.exceptions.push(Exception {
                        kind: ExceptionKind::PastDueRelease,
                        source: String::new(),
                        date: release_date,
                        suggested_date: Some(horizon.start),
                        quantity,
                        message: format!(
                            "a {} of {quantity} due {receipt_date} should have been released on {release_date}",
                            planning.procurement.proposal().as_str().replace('_', " ")
                        ),
                    });
                }
                plan.proposals.push(Proposal {
                    material: material.to_owned(),
                    proposal_type: planning.procurement.proposal(),
                    quantity,
                    receipt_date,
                    release_date,
                });
            }
            on_hand = available;
            plan.records.push(BucketRecord {
                gross_requirements: gross[b],
                scheduled_receipts: scheduled[b],
                projected_on_hand: on_hand,
                net_requirements: net,
                planned_receipts: planned_receipts[b],
                planned_releases: Decimal::ZERO,
            });
        }
        for (record, release) in plan.records.iter_mut().zip(planned_releases) {
            record.planned_releases = release;
        }
        plan.exceptions.extend(receipt_exceptions(
            horizon,
            inputs.on_hand - safety,
            &gross,
            &receipts,
        ));
        plan
    }
}

/// Which scheduled receipt each requirement takes, in date order: a receipt taken before it
/// comes is to be rescheduled in, one taken later than it comes out, one never taken cancelled.
fn receipt_exceptions(
    horizon: Horizon,
    free: Decimal,
    gross: &[Decimal],
    receipts: &[(usize, &Receipt)],
) -> Vec<Exception> {
    let mut exceptions = Vec::new();
    let mut free = free;
    let mut next = 0;
    for (b, g) in gross.iter().enumerate() {
        free -= *g;
        while free < Decimal::ZERO && next < receipts.len() {
            let (due, receipt) = receipts[next];
            next += 1;
            free += receipt.quantity;
            let needed = horizon.date_of(b).max(horizon.start);
            let kind = match due.cmp(&b) {
                std::cmp::Ordering::Greater => ExceptionKind::RescheduleIn,
                std::cmp::Ordering::Less => ExceptionKind::RescheduleOut,
                std::cmp::Ordering::Equal => continue,
            };
            exceptions.push(Exception {
                kind,
                source: receipt.source.clone(),
                date: receipt.date,
                suggested_date: Some(needed),
                quantity: receipt.quantity,
                message: format!(
                    "{} {} of {} due {} is needed on {needed}: {}",
                    receipt.kind.replace('_', " "),
                    receipt.source,
                    receipt.quantity,
                    receipt.date,
                    if kind == ExceptionKind::RescheduleIn {
                        "bring it forward"
                    } else {
                        "push it out"
                    }
                ),
            });
        }
    }
    for (_, receipt) in &receipts[next..] {
        exceptions.push(Exception {
            kind: ExceptionKind::Cancel,
            source: receipt.source.clone(),
            date: receipt.date,
            suggested_date: None,
            quantity: receipt.quantity,
            message: format!(
                "{} {} of {} due {} is not needed before {}: cancel it",
                receipt.kind.replace('_', " "),
                receipt.source,
                receipt.quantity,
                receipt.date,
                horizon.end()
            ),
        });
    }
    exceptions
}

#[cfg(test)]
#[path = "mrp_tests.rs"]
mod tests;
