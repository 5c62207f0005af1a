//! Production's lake: what MRP computed, one version per material and plan (`sequence`), written
//! by the planning worker (full runs and net change), never rewritten: each of the
//! `*_versions` tables keeps every version, and the views (`mrp_plans`, `mrp_records`,
//! `planned_orders`, `mrp_exceptions`) show each material's newest. A version's header
//! (`mrp_plan_versions`) is committed last, so a version a crash cut short is never shown.

use tributary_kernel::lake::{ColumnSpec, ColumnType, LakeTable, ViewSql};

pub const PLAN_VERSIONS: &str = "mrp_plan_versions";
pub const RECORD_VERSIONS: &str = "mrp_record_versions";
pub const PLANNED_ORDER_VERSIONS: &str = "planned_order_versions";
pub const EXCEPTION_VERSIONS: &str = "mrp_exception_versions";

/// What every row of a material's plan version starts with.
fn key_columns() -> Vec<ColumnSpec> {
    use ColumnType::*;
    vec![
        ColumnSpec::new("company", Text, false),
        ColumnSpec::new("plant", Text, false),
        ColumnSpec::new("material", Text, false),
        ColumnSpec::new("sequence", Int64, false),
        // Unique per write: rows of a write whose header never committed match no header.
        ColumnSpec::new("version", Text, false),
    ]
}

fn with_key(columns: Vec<ColumnSpec>) -> Vec<ColumnSpec> {
    let mut all = key_columns();
    all.extend(columns);
    all
}

pub fn tables() -> Vec<LakeTable> {
    use ColumnType::*;
    let quantity = |name| ColumnSpec::new(name, ColumnType::QUANTITY, false);
    vec![
        LakeTable {
            name: PLAN_VERSIONS,
            description: "One row per material and plan version: which run or net change planned it, when, over which horizon",
            columns: with_key(vec![
                ColumnSpec::new("run", Text, false),
                ColumnSpec::new("planned_at", Timestamp, false),
                ColumnSpec::new("feed_position", Int64, false),
                ColumnSpec::new("low_level_code", Int32, false),
                ColumnSpec::new("procurement", Text, true),
                ColumnSpec::new("horizon_start", Date, false),
                ColumnSpec::new("bucket_size", Text, false),
                ColumnSpec::new("buckets", Int32, false),
            ]),
            partition_columns: &[],
        },
        LakeTable {
            name: RECORD_VERSIONS,
            description: "The time-phased record of each material plan version, one row per bucket",
            columns: with_key(vec![
                ColumnSpec::new("bucket", Int32, false),
                ColumnSpec::new("bucket_start", Date, false),
                quantity("gross_requirements"),
                quantity("scheduled_receipts"),
                quantity("projected_on_hand"),
                quantity("net_requirements"),
                quantity("planned_receipts"),
                quantity("planned_releases"),
            ]),
            partition_columns: &[],
        },
        LakeTable {
            name: PLANNED_ORDER_VERSIONS,
            description: "Planned orders (make) and purchase requisitions (buy) of each material plan version",
            columns: with_key(vec![
                ColumnSpec::new("planned_order", Text, false),
                ColumnSpec::new("proposal_type", Text, false),
                quantity("quantity"),
                ColumnSpec::new("receipt_date", Date, false),
                ColumnSpec::new("release_date", Date, false),
                ColumnSpec::new("run", Text, false),
            ]),
            partition_columns: &[],
        },
        LakeTable {
            name: EXCEPTION_VERSIONS,
            description: "Exception messages of each material plan version: reschedule in or out, cancel, past-due release, no planning data",
            columns: with_key(vec![
                ColumnSpec::new("kind", Text, false),
                ColumnSpec::new("source", Text, false),
                ColumnSpec::new("date", Date, false),
                ColumnSpec::new("suggested_date", Date, true),
                quantity("quantity"),
                ColumnSpec::new("message", Text, false),
            ]),
            partition_columns: &[],
        },
    ]
}

pub fn views() -> Vec<ViewSql> {
    tributary_kernel::views![
        "mrp_plans",
        "mrp_records",
        "planned_orders",
        "mrp_exceptions"
    ]
}
