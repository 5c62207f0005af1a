//! Production's permissions and the built-in roles that hold them (`administrator` holds all).

use tributary_kernel::auth::Permission;
use tributary_kernel::auth::role::{
    ANALYST, AUDITOR, FINANCE_MANAGER, PRODUCTION_PLANNER, PURCHASER, WAREHOUSE_CLERK,
};

/// Who reads production's data: planners, and those whose work follows from the plan.
const READERS: &[&str] = &[
    PRODUCTION_PLANNER,
    PURCHASER,
    WAREHOUSE_CLERK,
    FINANCE_MANAGER,
    ANALYST,
    AUDITOR,
];

pub static MASTER_DATA_READ: Permission = Permission {
    name: "production.master_data.read",
    description: "Read planning data, bills of material, work centres, routings and planned independent requirements",
    roles: READERS,
};
pub static MASTER_DATA_WRITE: Permission = Permission {
    name: "production.master_data.write",
    description: "Set planning data, bills of material, work centres and routings",
    roles: &[PRODUCTION_PLANNER],
};
pub static REQUIREMENTS_WRITE: Permission = Permission {
    name: "production.requirements.write",
    description: "Set planned independent requirements (demand planning)",
    roles: &[PRODUCTION_PLANNER],
};
pub static MRP_RUN: Permission = Permission {
    name: "production.mrp.run",
    description: "Start MRP runs",
    roles: &[PRODUCTION_PLANNER],
};
pub static MRP_READ: Permission = Permission {
    name: "production.mrp.read",
    description: "Read MRP runs, time-phased records, planned orders and exception messages",
    roles: READERS,
};

pub static ORDER_READ: Permission = Permission {
    name: "production.order.read",
    description: "Read production orders: components, operations, costs",
    roles: READERS,
};
pub static ORDER_WRITE: Permission = Permission {
    name: "production.order.write",
    description: "Create production orders (also from planned orders), release and complete them",
    roles: &[PRODUCTION_PLANNER],
};
pub static ORDER_CONFIRM: Permission = Permission {
    name: "production.order.confirm",
    description: "Issue components to production orders, confirm operations, receive their output",
    roles: &[PRODUCTION_PLANNER, WAREHOUSE_CLERK],
};
pub static ORDER_SETTLE: Permission = Permission {
    name: "production.order.settle",
    description: "Settle technically complete production orders (variance to the ledger)",
    roles: &[PRODUCTION_PLANNER, FINANCE_MANAGER],
};

pub fn all() -> Vec<&'static Permission> {
    vec![
        &MASTER_DATA_READ,
        &MASTER_DATA_WRITE,
        &REQUIREMENTS_WRITE,
        &MRP_RUN,
        &MRP_READ,
        &ORDER_READ,
        &ORDER_WRITE,
        &ORDER_CONFIRM,
        &ORDER_SETTLE,
    ]
}
