//! An MRP run (`production.mrp_run`): requested over REST, carried out by the planning worker
//! of the pipelines role, which records how it ended. Its stream is the run's status.

use crate::mrp::Horizon;
use serde::{Deserialize, Serialize};
use tributary_kernel::Aggregate;
use tributary_kernel::event::DomainEvent;
use tributary_kernel::http::FieldError;
use tributary_kernel::master::CompanyCode;
use tributary_materials::domain::PlantCode;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// The plan version its results carry in the lake (`sequence` of the MRP tables).
    pub sequence: i64,
    /// The event store position the plan reflects (every event up to it).
    pub feed_position: i64,
    pub materials: u64,
    pub planned_orders: u64,
    pub purchase_requisitions: u64,
    pub exceptions: u64,
    /// Milliseconds planning took, and writing the results to the lake.
    pub planning_ms: u64,
    pub writing_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunEvent {
    RunRequested {
        company: CompanyCode,
        plant: PlantCode,
        horizon: Horizon,
        requested_by: String,
    },
    RunCompleted(Completion),
    RunFailed {
        reason: String,
    },
}

impl DomainEvent for RunEvent {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Requested,
    Completed(Completion),
    Failed(String),
}

impl RunStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Requested => "requested",
            RunStatus::Completed(_) => "completed",
            RunStatus::Failed(_) => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub company: CompanyCode,
    pub plant: PlantCode,
    pub horizon: Horizon,
    pub requested_by: String,
    pub status: RunStatus,
}

pub enum RunCommand {
    Request {
        company: CompanyCode,
        plant: PlantCode,
        horizon: Horizon,
        requested_by: String,
    },
    Complete(Completion),
    Fail(String),
}

pub struct MrpRun;

impl Aggregate for MrpRun {
    const TYPE: &'static str = "production.mrp_run";
    type State = Option<Run>;
    type Event = RunEvent;
    type Command = RunCommand;
    type Rejection = Vec<FieldError>;

    fn decide(state: &Option<Run>, command: RunCommand) -> Result<Vec<RunEvent>, Vec<FieldError>> {
        match (state, command) {
            (
                None,
                RunCommand::Request {
                    company,
                    plant,
                    horizon,
                    requested_by,
                },
            ) => Ok(vec![RunEvent::RunRequested {
                company,
                plant,
                horizon,
                requested_by,
            }]),
            (Some(_), RunCommand::Request { .. }) => Err(vec![FieldError::new(
                "run",
                "run_exists",
                "this run was requested already",
            )]),
            (Some(run), RunCommand::Complete(completion)) if run.status == RunStatus::Requested => {
                Ok(vec![RunEvent::RunCompleted(completion)])
            }
            (Some(run), RunCommand::Fail(reason)) if run.status == RunStatus::Requested => {
                Ok(vec![RunEvent::RunFailed { reason }])
            }
            _ => Err(vec![FieldError::new(
                "run",
                "run_finished",
                "the run is not waiting to be carried out",
            )]),
        }
    }

    fn apply(state: &mut Option<Run>, event: &RunEvent) {
        match event {
            RunEvent::RunRequested {
                company,
                plant,
                horizon,
                requested_by,
            } => {
                *state = Some(Run {
                    company: company.clone(),
                    plant: plant.clone(),
                    horizon: *horizon,
                    requested_by: requested_by.clone(),
                    status: RunStatus::Requested,
                });
            }
            RunEvent::RunCompleted(completion) => {
                if let Some(run) = state {
                    run.status = RunStatus::Completed(completion.clone());
                }
            }
            RunEvent::RunFailed { reason } => {
                if let Some(run) = state {
                    run.status = RunStatus::Failed(reason.clone());
                }
            }
        }
    }
}
