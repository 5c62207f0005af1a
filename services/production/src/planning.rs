//! The planning worker of the pipelines role: MRP runs and net change.
//!
//! ```text
//!  feed ─► PlanningIndex (stock and purchase orders: materials' SupplyIndex; confirmed sales
//!          │              demand: sales' DemandIndex; planning data, bills of material,
//!          │              planned independent requirements, runs: production's own events)
//!          ├─ RunRequested ─► full run: every material of the plant ─► lake ─► RunCompleted
//!          └─ anything else ─► the materials it changed, in plants planned before ─► net change
//!                              (them and what lies below them) ─► lake
//! ```
//!
//! Every write is a new plan version of the materials whose plan changed (`sequence`, one more
//! than the last the lake holds for the plant), one Delta commit with the plant's compare-and-set
//! progress marker: the views show each material's newest. The worker waits for the
//! installation's first planning data or MRP run before it reads anything; then it reads the
//! feed from its beginning and plans every plant that was planned before once more, so nothing
//! that happened while it was down is missed (and a run it was carrying out when it stopped is
//! carried out again).

use crate::lake::{PLAN_ROWS, RowKind, plan_rows};
use crate::master::{
    BillOfMaterial, BomEvent, PlannedRequirements, PlanningEvent, PlanningRecord, RequirementsEvent,
};
use crate::mrp::{
    Component, Cycle, Horizon, MaterialInputs, Planner, PlanningData, Receipt, Requirement,
};
use crate::order::{OrderEvent, ProductionOrder, ProductionOrderRecord};
use crate::run::{Completion, MrpRun, RunCommand, RunEvent};
use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};
use tributary_kernel::event::decode;
use tributary_kernel::feed_index::Feeds;
use tributary_kernel::lake::{Cell, LakeWriter, ProgressMarker};
use tributary_kernel::module::WorkerContext;
use tributary_kernel::store::EventStore;
use tributary_kernel::{Aggregate, EventEnvelope};
use tributary_materials::availability::SupplyIndex;
use tributary_sales::demand::{DemandIndex, MaterialDemand};

/// (company, plant).
pub type PlantKey = (String, String);

/// Events read per round trip while catching up.
const FEED_BATCH: usize = 5_000;
/// How long the worker sleeps when nothing wakes it (appends of other processes).
const POLL: Duration = Duration::from_millis(500);

/// The aggregate types whose events change what MRP reads.
pub fn types() -> Vec<&'static str> {
    let mut types = tributary_materials::availability::TYPES.to_vec();
    types.extend([
        <MaterialDemand as Aggregate>::TYPE,
        <PlanningRecord as Aggregate>::TYPE,
        <BillOfMaterial as Aggregate>::TYPE,
        <PlannedRequirements as Aggregate>::TYPE,
        <MrpRun as Aggregate>::TYPE,
        <ProductionOrderRecord as Aggregate>::TYPE,
    ]);
    types
}

/// A run waiting to be carried out.
#[derive(Debug, Clone)]
pub struct PendingRun {
    pub id: String,
    pub plant: PlantKey,
    pub horizon: Horizon,
}

/// Everything MRP reads, kept from the feed.
#[derive(Default)]
pub struct PlanningIndex {
    supply: SupplyIndex,
    demand: DemandIndex,
    planning: HashMap<PlantKey, BTreeMap<String, PlanningData>>,
    boms: HashMap<PlantKey, BTreeMap<String, Vec<Component>>>,
    requirements: HashMap<PlantKey, BTreeMap<String, BTreeMap<NaiveDate, Decimal>>>,
    /// Production orders by stream id.
    orders: HashMap<String, Option<ProductionOrder>>,
    /// The production orders each material is the output or a component of.
    orders_of: HashMap<(PlantKey, String), BTreeSet<String>>,
    /// Every material each plant has anything of.
    materials: HashMap<PlantKey, BTreeSet<String>>,
    /// Materials changed since [`PlanningIndex::take_changed`].
    changed: HashMap<PlantKey, BTreeSet<String>>,
    /// Runs requested and not yet ended, in request order.
    pending: Vec<PendingRun>,
    /// The horizon of each plant's last completed run: net change plans over it.
    planned: HashMap<PlantKey, Horizon>,
    requested: HashMap<String, PendingRun>,
}

impl PlanningIndex {
    fn touch(&mut self, plant: PlantKey, material: String) {
        self.materials
            .entry(plant.clone())
            .or_default()
            .insert(material.clone());
        self.changed.entry(plant).or_default().insert(material);
    }

    /// Applies one event of [`types`] (once: the feed never repeats one).
    pub fn apply(&mut self, event: &EventEnvelope) {
        let kind = event.aggregate_type.as_str();
        if tributary_materials::availability::TYPES.contains(&kind) {
            for (company, material, plant) in self.supply.apply(event) {
                self.touch((company, plant), material);
            }
        } else if kind == <MaterialDemand as Aggregate>::TYPE {
            self.demand.apply(event);
            // `company/material/plant`
            let mut parts = event.aggregate_id.splitn(3, '/');
            if let (Some(company), Some(material), Some(plant)) =
                (parts.next(), parts.next(), parts.next())
            {
                self.touch((company.to_owned(), plant.to_owned()), material.to_owned());
            }
        } else if kind == <PlanningRecord as Aggregate>::TYPE {
            if let Ok(PlanningEvent::PlanningDataSet(p)) = decode::<PlanningEvent>(event) {
                let plant = (p.company.to_string(), p.plant.to_string());
                self.planning
                    .entry(plant.clone())
                    .or_default()
                    .insert(p.material.to_string(), p.data);
                self.touch(plant, p.material.to_string());
            }
        } else if kind == <BillOfMaterial as Aggregate>::TYPE {
            if let Ok(BomEvent::BomSet(bom)) = decode::<BomEvent>(event) {
                let plant = (bom.company.to_string(), bom.plant.to_string());
                for component in &bom.components {
                    self.touch(plant.clone(), component.material.clone());
                }
                self.boms
                    .entry(plant.clone())
                    .or_default()
                    .insert(bom.material.to_string(), bom.components);
                self.touch(plant, bom.material.to_string());
            }
        } else if kind == <PlannedRequirements as Aggregate>::TYPE {
            if let Ok(RequirementsEvent::RequirementsSet {
                company,
                plant,
                material,
                entries,
                ..
            }) = decode::<RequirementsEvent>(event)
            {
                let plant = (company.to_string(), plant.to_string());
                let by_date = self
                    .requirements
                    .entry(plant.clone())
                    .or_default()
                    .entry(material.to_string())
                    .or_default();
                for (date, quantity) in entries {
                    if quantity.is_zero() {
                        by_date.remove(&date);
                    } else {
                        by_date.insert(date, quantity);
                    }
                }
                self.touch(plant, material.to_string());
            }
        } else if kind == <MrpRun as Aggregate>::TYPE {
            self.apply_run(event);
        } else if kind == <ProductionOrderRecord as Aggregate>::TYPE {
            self.apply_order(event);
        }
    }

    /// A production order's output and components: scheduled receipt and dependent demand
    /// while it is open.
    fn apply_order(&mut self, event: &EventEnvelope) {
        let decoded = match decode::<OrderEvent>(event) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::error!(id = %event.id, %error, "an undecodable production order event is left out");
                return;
            }
        };
        let state = self.orders.entry(event.aggregate_id.clone()).or_default();
        <ProductionOrderRecord as Aggregate>::apply(state, &decoded);
        let Some(order) = state.clone() else {
            return;
        };
        let plant = (
            order.order.company.to_string(),
            order.order.plant.to_string(),
        );
        let materials = std::iter::once(order.order.material.to_string()).chain(
            order
                .components
                .iter()
                .map(|c| c.planned.material.to_string()),
        );
        for material in materials.collect::<Vec<_>>() {
            self.orders_of
                .entry((plant.clone(), material.clone()))
                .or_default()
                .insert(event.aggregate_id.clone());
            self.touch(plant.clone(), material);
        }
    }

    fn apply_run(&mut self, event: &EventEnvelope) {
        let id = event.aggregate_id.clone();
        match decode::<RunEvent>(event) {
            Ok(RunEvent::RunRequested {
                company,
                plant,
                horizon,
                ..
            }) => {
                let run = PendingRun {
                    id: id.clone(),
                    plant: (company.to_string(), plant.to_string()),
                    horizon,
                };
                self.requested.insert(id, run.clone());
                self.pending.push(run);
            }
            Ok(RunEvent::RunCompleted(_)) => {
                self.pending.retain(|r| r.id != id);
                if let Some(run) = self.requested.remove(&id) {
                    self.planned.insert(run.plant, run.horizon);
                }
            }
            Ok(RunEvent::RunFailed { .. }) => {
                self.pending.retain(|r| r.id != id);
                self.requested.remove(&id);
            }
            Err(error) => {
                tracing::error!(id = %event.id, %error, "an undecodable MRP run event is left out");
            }
        }
    }

    /// What MRP reads of one material in a plant, in a fixed order.
    pub fn inputs(&self, plant: &PlantKey, material: &str) -> MaterialInputs {
        let (company, plant_code) = plant;
        let supply_key = (company.clone(), material.to_owned(), plant_code.clone());
        let mut requirements: Vec<Requirement> = self
            .demand
            .lines(&tributary_sales::demand::demand_id(
                company, material, plant_code,
            ))
            .into_iter()
            .flat_map(|(order, line, schedule)| {
                schedule.iter().map(move |s| Requirement {
                    date: s.date,
                    quantity: s.quantity,
                    kind: "sales_order".into(),
                    source: format!("{order}/{line}"),
                })
            })
            .collect();
        if let Some(by_date) = self.requirements.get(plant).and_then(|m| m.get(material)) {
            requirements.extend(by_date.iter().map(|(date, quantity)| Requirement {
                date: *date,
                quantity: *quantity,
                kind: "planned_independent".into(),
                source: format!("PIR {date}"),
            }));
        }
        let mut receipts: Vec<Receipt> = self
            .supply
            .open_receipts(&supply_key)
            .into_iter()
            .map(|(order, line, date, quantity)| Receipt {
                date,
                quantity,
                kind: "purchase_order".into(),
                source: format!("{order}/{line}"),
            })
            .collect();
        // Open production orders: their output a scheduled receipt on the finish date, what
        // their components still need a requirement on the start date.
        let orders = self
            .orders_of
            .get(&(plant.clone(), material.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(|id| self.orders.get(id).and_then(Option::as_ref))
            .filter(|order| order.status.open());
        for order in orders {
            let number = order.order.number.to_string();
            if order.order.material.as_str() == material && !order.open_quantity().is_zero() {
                receipts.push(Receipt {
                    date: order.order.finish_date,
                    quantity: order.open_quantity(),
                    kind: "production_order".into(),
                    source: number.clone(),
                });
            }
            for component in &order.components {
                if component.planned.material.as_str() == material && !component.open().is_zero() {
                    requirements.push(Requirement {
                        date: order.order.start_date,
                        quantity: component.open(),
                        kind: "production_order".into(),
                        source: number.clone(),
                    });
                }
            }
        }
        requirements.sort_by(|a, b| (a.date, &a.source).cmp(&(b.date, &b.source)));
        receipts.sort_by(|a, b| (a.date, &a.source).cmp(&(b.date, &b.source)));
        MaterialInputs {
            planning: self
                .planning
                .get(plant)
                .and_then(|m| m.get(material))
                .cloned(),
            on_hand: self.supply.on_hand(&supply_key),
            requirements,
            receipts,
            components: self
                .boms
                .get(plant)
                .and_then(|m| m.get(material))
                .cloned()
                .unwrap_or_default(),
        }
    }

    pub fn plant_materials(&self, plant: &PlantKey) -> BTreeSet<String> {
        self.materials.get(plant).cloned().unwrap_or_default()
    }

    fn take_changed(&mut self) -> HashMap<PlantKey, BTreeSet<String>> {
        std::mem::take(&mut self.changed)
    }
}

/// A plant planned by net change: its planner and the run whose horizon it plans over.
struct Active {
    planner: Planner,
    run: String,
}

/// How often a run is tried before it is recorded as failed.
const RUN_ATTEMPTS: u32 = 3;

struct Worker {
    context: WorkerContext,
    index: PlanningIndex,
    /// The feeds of the databases keeping [`types`] (one unless contexts are kept apart).
    feeds: Feeds,
    active: HashMap<PlantKey, Active>,
    /// Plants to plan in full again (after a start, or a write that failed).
    resync: HashSet<PlantKey>,
    /// Runs this worker recorded as ended (their own events may come back through the feed
    /// later: on PostgreSQL the feed waits for older open transactions).
    ended: HashSet<String>,
    /// Failed attempts per run.
    attempts: HashMap<String, u32>,
    /// The plan sequence this worker last wrote per plant (read from the lake when unknown;
    /// forgotten when a write fails, as another writer may have moved it).
    sequences: HashMap<PlantKey, i64>,
    /// How long the newest planning event read took from its append to this worker's read.
    feed_delay_ms: i64,
}

/// The module's [`tributary_kernel::module::Worker`].
pub fn worker(
    context: WorkerContext,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
    Box::pin(run(context))
}

async fn run(context: WorkerContext) {
    let feeds = Feeds::of(&context.store, &types());
    let mut wake = feeds.appended();
    let mut shutdown = context.shutdown.clone();
    let mut worker = Worker {
        context,
        index: PlanningIndex::default(),
        feeds,
        active: HashMap::new(),
        resync: HashSet::new(),
        ended: HashSet::new(),
        attempts: HashMap::new(),
        sequences: HashMap::new(),
        feed_delay_ms: 0,
    };
    // Until planning data is entered or a run requested there is nothing to plan: the worker
    // does not read the feed (every pipelines process of an installation without production
    // would otherwise replay the whole store on each start). From then on it keeps its index
    // current, so the first run does not wait for the feed to be read.
    loop {
        if *shutdown.borrow() {
            return;
        }
        match planning_started(&worker.context.store).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(error) => tracing::error!(%error, "planning: looking for planning data failed"),
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => {}
        }
    }
    let mut started = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        match worker.step(!started).await {
            Ok(()) => started = true,
            Err(error) => {
                tracing::error!(%error, "planning: reading the feed failed; trying again");
            }
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Whether any material has planning data or any MRP run was requested.
async fn planning_started(store: &EventStore) -> Result<bool, tributary_kernel::store::StoreError> {
    for aggregate_type in [
        <MrpRun as Aggregate>::TYPE,
        <PlanningRecord as Aggregate>::TYPE,
    ] {
        if store.has_type(aggregate_type).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn store_error(error: impl std::fmt::Display) -> String {
    error.to_string()
}

/// Plans, turning a cycle into an error and a panic (quantities beyond what a decimal holds)
/// into one too: one plant's bad data never stops the worker.
fn guarded<T>(plan: impl FnOnce() -> Result<T, Cycle>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(plan)) {
        Ok(Ok(planned)) => Ok(planned),
        Ok(Err(cycle)) => Err(cycle.to_string()),
        Err(_) => Err(
            "planning failed: a quantity grew beyond what a decimal holds (check lot sizes and bill of material quantities)"
                .into(),
        ),
    }
}

impl Worker {
    async fn catch_up(&mut self) -> Result<(), String> {
        let types = types();
        loop {
            let events = self.feeds.read(FEED_BATCH).await.map_err(store_error)?;
            if events.is_empty() {
                return Ok(());
            }
            let read_at = chrono::Utc::now();
            for event in &events {
                if types.contains(&event.aggregate_type.as_str()) {
                    self.index.apply(event);
                    self.feed_delay_ms = (read_at - event.time).num_milliseconds();
                }
            }
        }
    }

    /// How far this worker has read production's own feed: a plan records it, and a planned
    /// order converted later (an event of production's) is newer than the plan.
    fn feed_position(&self) -> i64 {
        self.feeds
            .cursor(self.context.store.for_context(crate::CONTEXT))
    }

    /// Catches up with the feed, then carries out what it asks for; only reading the feed
    /// fails the step: a plant or run that fails is logged and tried again at the next step
    /// (a run at most [`RUN_ATTEMPTS`] times), the others go on.
    async fn step(&mut self, first: bool) -> Result<(), String> {
        self.catch_up().await?;
        if first {
            // Whatever happened while no worker ran: every plant planned before, planned again.
            let planned: Vec<(PlantKey, Horizon)> = self
                .index
                .planned
                .iter()
                .map(|(p, h)| (p.clone(), *h))
                .collect();
            for (plant, horizon) in planned {
                self.active.insert(
                    plant.clone(),
                    Active {
                        planner: Planner::new(horizon),
                        run: "restart".into(),
                    },
                );
                self.resync.insert(plant);
            }
        }
        let pending: Vec<PendingRun> = self
            .index
            .pending
            .iter()
            .filter(|r| !self.ended.contains(&r.id))
            .cloned()
            .collect();
        for run in pending {
            if let Err(error) = self.full_run(&run).await {
                let attempts = self.attempts.entry(run.id.clone()).or_default();
                *attempts += 1;
                tracing::error!(run = %run.id, %error, attempt = *attempts, "planning: an MRP run failed");
                if *attempts >= RUN_ATTEMPTS {
                    let outcome = RunCommand::Fail(format!("after {attempts} attempts: {error}"));
                    if record_outcome(&self.context.store, &run.id, outcome)
                        .await
                        .is_ok()
                    {
                        self.ended.insert(run.id.clone());
                    }
                }
            }
        }
        let mut changed = self.index.take_changed();
        for plant in std::mem::take(&mut self.resync) {
            changed.remove(&plant);
            if let Err(error) = self.resync_plant(&plant).await {
                tracing::error!(company = %plant.0, plant = %plant.1, %error, "planning: planning a plant again failed");
                self.resync.insert(plant);
            }
        }
        for (plant, materials) in changed {
            if !self.active.contains_key(&plant) {
                continue;
            }
            if let Err(error) = self.net_change(&plant, &materials).await {
                tracing::error!(company = %plant.0, plant = %plant.1, %error, "planning: net change failed; the plant is planned in full next");
                self.resync.insert(plant);
            }
        }
        Ok(())
    }

    /// A planner over `horizon` with every material of `plant`, planned.
    fn plan_plant(
        &self,
        plant: &PlantKey,
        horizon: Horizon,
    ) -> Result<(Planner, BTreeSet<String>), String> {
        let mut planner = Planner::new(horizon);
        for material in self.index.plant_materials(plant) {
            planner.set(&material, self.index.inputs(plant, &material));
        }
        let planned = guarded(|| planner.plan_all())?;
        Ok((planner, planned))
    }

    /// Plans every material of `plant` over the active horizon, and writes them.
    async fn resync_plant(&mut self, plant: &PlantKey) -> Result<(), String> {
        let position = self.feed_position();
        let Some(active) = self.active.get(plant) else {
            return Ok(());
        };
        let (horizon, run) = (active.planner.horizon(), active.run.clone());
        let (planner, planned) = self.plan_plant(plant, horizon)?;
        write(
            self.context.lake.as_ref(),
            &mut self.sequences,
            plant,
            &planner,
            &planned,
            &run,
            position,
        )
        .await?;
        self.active.insert(plant.clone(), Active { planner, run });
        Ok(())
    }

    async fn net_change(
        &mut self,
        plant: &PlantKey,
        materials: &BTreeSet<String>,
    ) -> Result<(), String> {
        let position = self.feed_position();
        let Some(active) = self.active.get_mut(plant) else {
            return Ok(());
        };
        for material in materials {
            active
                .planner
                .set(material, self.index.inputs(plant, material));
        }
        let planner = &mut active.planner;
        let started = Instant::now();
        let planned = guarded(|| planner.replan())?;
        if planned.is_empty() {
            return Ok(());
        }
        let planning_ms = elapsed_ms(started);
        let writing = Instant::now();
        write(
            self.context.lake.as_ref(),
            &mut self.sequences,
            plant,
            &active.planner,
            &planned,
            "net_change",
            position,
        )
        .await?;
        tracing::debug!(
            company = %plant.0,
            plant = %plant.1,
            changed = materials.len(),
            planned = planned.len(),
            feed_delay_ms = self.feed_delay_ms,
            planning_ms,
            writing_ms = elapsed_ms(writing),
            "planning: net change committed"
        );
        Ok(())
    }

    /// Carries out a requested run: plans, writes, records how it ended. A cycle ends it as
    /// failed at once; anything else is an error the caller tries again.
    async fn full_run(&mut self, run: &PendingRun) -> Result<(), String> {
        let (started, position) = (Instant::now(), self.feed_position());
        let outcome = match self.plan_plant(&run.plant, run.horizon) {
            Err(reason) => RunCommand::Fail(reason),
            Ok((planner, planned)) => {
                let planning_ms = elapsed_ms(started);
                let writing = Instant::now();
                let sequence = write(
                    self.context.lake.as_ref(),
                    &mut self.sequences,
                    &run.plant,
                    &planner,
                    &planned,
                    &run.id,
                    position,
                )
                .await?;
                let mut completion = Completion {
                    sequence,
                    feed_position: position,
                    materials: planned.len() as u64,
                    planned_orders: 0,
                    purchase_requisitions: 0,
                    exceptions: 0,
                    planning_ms,
                    writing_ms: elapsed_ms(writing),
                };
                for (_, plan) in planner.plans() {
                    for proposal in &plan.proposals {
                        match proposal.proposal_type {
                            crate::mrp::ProposalType::PlannedOrder => {
                                completion.planned_orders += 1
                            }
                            crate::mrp::ProposalType::PurchaseRequisition => {
                                completion.purchase_requisitions += 1
                            }
                        }
                    }
                    completion.exceptions += plan.exceptions.len() as u64;
                }
                // What changed in this plant is in the plan just written.
                self.index.changed.remove(&run.plant);
                self.resync.remove(&run.plant);
                self.active.insert(
                    run.plant.clone(),
                    Active {
                        planner,
                        run: run.id.clone(),
                    },
                );
                RunCommand::Complete(completion)
            }
        };
        record_outcome(&self.context.store, &run.id, outcome).await?;
        self.ended.insert(run.id.clone());
        Ok(())
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

async fn record_outcome(store: &EventStore, id: &str, outcome: RunCommand) -> Result<(), String> {
    let loaded = tributary_kernel::aggregate::load::<MrpRun>(store, id)
        .await
        .map_err(store_error)?;
    let decided = match loaded.decide(outcome) {
        Ok(decided) => decided,
        // Another worker recorded it first.
        Err(_) => return Ok(()),
    };
    let decision = decided.decision(vec![], |_| Some(())).ok_or("no run")?;
    let (batch, ()) = decision.into_batch(crate::CONTEXT, Default::default(), None);
    match store.append(batch).await {
        Ok(_) => Ok(()),
        Err(tributary_kernel::store::StoreError::Conflict { .. }) => Ok(()),
        Err(error) => Err(error.to_string()),
    }
}

/// A row of [`PLAN_ROWS`]: `key`, `kind`, and `cells` from column `at`; null elsewhere.
fn plan_row<'a>(
    key: &[Cell<'a>],
    kind: RowKind,
    at: usize,
    cells: impl IntoIterator<Item = Cell<'a>>,
) -> Vec<Cell<'a>> {
    let mut row = Vec::with_capacity(plan_rows::WIDTH);
    row.extend_from_slice(key);
    row.push(Cell::text(kind.as_str()));
    row.resize(plan_rows::WIDTH, Cell::Null);
    for (offset, cell) in cells.into_iter().enumerate() {
        row[at + offset] = cell;
    }
    row
}

/// Writes the plans of `materials` as the plant's next plan version, in one Delta commit with
/// the plant's progress marker; answers its sequence.
/// `sequences`: the last sequence this worker wrote per plant (read from the lake when unknown;
/// forgotten when the write fails, as another writer may have moved it).
async fn write(
    lake: &dyn LakeWriter,
    sequences: &mut HashMap<PlantKey, i64>,
    plant: &PlantKey,
    planner: &Planner,
    materials: &BTreeSet<String>,
    run: &str,
    feed_position: i64,
) -> Result<i64, String> {
    let known = sequences.remove(plant);
    let (company, plant_code) = plant;
    let app_id = format!("mrp/{company}/{plant_code}");
    let last = match known {
        Some(sequence) => Some(sequence),
        None => lake.progress(PLAN_ROWS, &app_id).await?,
    };
    let sequence = last.unwrap_or(0) + 1;
    let horizon = planner.horizon();
    let planned_at = Utc::now();
    let version = uuid::Uuid::now_v7().to_string();
    // Rows borrow their text from the plans and this call (no copy of a key per row).
    let rows_of = row_maker(|material, rows| {
        let Some(plan) = planner.plan(material) else {
            return;
        };
        let key = [
            Cell::text(company),
            Cell::text(plant_code),
            Cell::text(material),
            Cell::Int64(sequence),
            Cell::text(&version),
        ];
        rows.push(plan_row(
            &key,
            RowKind::Plan,
            plan_rows::PLAN,
            [
                Cell::text(run),
                Cell::Timestamp(planned_at),
                Cell::Int64(feed_position),
                Cell::Int32(i32::try_from(plan.low_level_code).unwrap_or(i32::MAX)),
                planner
                    .inputs(material)
                    .and_then(|i| i.planning.as_ref())
                    .map_or(Cell::Null, |p| Cell::text(p.procurement.as_str())),
                Cell::Date(horizon.start),
                Cell::text(horizon.size.as_str()),
                Cell::Int32(i32::try_from(horizon.count).unwrap_or(i32::MAX)),
            ],
        ));
        for (bucket, record) in plan.records.iter().enumerate() {
            rows.push(plan_row(
                &key,
                RowKind::Record,
                plan_rows::RECORD,
                [
                    Cell::Int32(i32::try_from(bucket).unwrap_or(i32::MAX)),
                    Cell::Date(horizon.date_of(bucket)),
                    Cell::Decimal(record.gross_requirements),
                    Cell::Decimal(record.scheduled_receipts),
                    Cell::Decimal(record.projected_on_hand),
                    Cell::Decimal(record.net_requirements),
                    Cell::Decimal(record.planned_receipts),
                    Cell::Decimal(record.planned_releases),
                ],
            ));
        }
        for (number, proposal) in plan.proposals.iter().enumerate() {
            let mut row = plan_row(
                &key,
                RowKind::Order,
                plan_rows::ORDER,
                [
                    Cell::owned(planned_order_id(plant, material, sequence, number + 1)),
                    Cell::text(proposal.proposal_type.as_str()),
                    Cell::Decimal(proposal.quantity),
                    Cell::Date(proposal.receipt_date),
                    Cell::Date(proposal.release_date),
                ],
            );
            row[plan_rows::RUN] = Cell::text(run);
            rows.push(row);
        }
        for exception in &plan.exceptions {
            let mut row = plan_row(
                &key,
                RowKind::Exception,
                plan_rows::EXCEPTION,
                [
                    Cell::text(exception.kind.as_str()),
                    Cell::text(&exception.source),
                    Cell::Date(exception.date),
                    exception.suggested_date.map_or(Cell::Null, Cell::Date),
                    Cell::text(&exception.message),
                ],
            );
            row[plan_rows::QUANTITY] = Cell::Decimal(exception.quantity);
            rows.push(row);
        }
    });
    let materials: Vec<&String> = materials.iter().collect();
    // Made chunk by chunk as the lake converts them (a full run's rows as cells took a GB).
    let chunks = materials.chunks(WRITE_CHUNK_MATERIALS).map(move |chunk| {
        let mut rows = Vec::new();
        for material in chunk {
            rows_of(material, &mut rows);
        }
        rows
    });
    lake.append_rows(
        PLAN_ROWS,
        Box::new(chunks),
        Some(ProgressMarker {
            app_id,
            expected: last,
            version: sequence,
        }),
    )
    .await?;
    sequences.insert(plant.clone(), sequence);
    Ok(sequence)
}

/// `make` with its rows' lifetime tied to the material's (a closure's own annotations would make
/// it generic over each call's borrows).
fn row_maker<'a, F: Fn(&'a String, &mut Vec<Vec<Cell<'a>>>)>(make: F) -> F {
    make
}

/// Materials whose plan rows are made and converted at a time when writing (about 80 rows each
/// at 52 buckets).
const WRITE_CHUNK_MATERIALS: usize = 256;

/// `company-plant-material-sequence-n`: a proposal of one plan version.
pub fn planned_order_id(plant: &PlantKey, material: &str, sequence: i64, number: usize) -> String {
    let (company, plant) = plant;
    format!("{company}-{plant}-{material}-{sequence}-{number}")
}

// ----- what the API checks a run against ------------------------------------------------------

/// Each plant's lead times, kept from the feed for the API's check of a run's horizon.
#[derive(Default)]
pub struct LeadTimes {
    by_plant: HashMap<PlantKey, BTreeMap<String, u32>>,
}

const PLANNING_TYPES: &[&str] = &[<PlanningRecord as Aggregate>::TYPE];

impl LeadTimes {
    fn apply(&mut self, event: &EventEnvelope) {
        if let Ok(PlanningEvent::PlanningDataSet(p)) = decode::<PlanningEvent>(event) {
            self.by_plant
                .entry((p.company.to_string(), p.plant.to_string()))
                .or_default()
                .insert(p.material.to_string(), p.data.lead_time_days);
        }
    }
}

/// The API's view of planning data (an installation extension).
#[derive(Clone)]
pub struct PlanningView {
    lead_times: std::sync::Arc<tributary_kernel::feed_index::FeedIndex<LeadTimes>>,
}

impl PlanningView {
    pub fn new(store: EventStore) -> PlanningView {
        PlanningView {
            lead_times: std::sync::Arc::new(tributary_kernel::feed_index::FeedIndex::new(
                store,
                PLANNING_TYPES,
                LeadTimes::apply,
            )),
        }
    }

    /// The longest lead time in the plant, and whose it is.
    pub async fn longest_lead_time(
        &self,
        company: &str,
        plant: &str,
    ) -> Result<Option<(String, u32)>, tributary_kernel::store::StoreError> {
        let key = (company.to_owned(), plant.to_owned());
        self.lead_times
            .read(|index| {
                index.by_plant.get(&key).and_then(|materials| {
                    materials
                        .iter()
                        .max_by_key(|(m, days)| (**days, std::cmp::Reverse((*m).clone())))
                        .map(|(m, days)| (m.clone(), *days))
                })
            })
            .await
    }
}
