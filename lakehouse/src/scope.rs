//! A table as one caller may see it: the rows of their companies, or nothing of raw events.
//!
//! ```text
//!  gl_journal_lines ─► scope Only{A} ─► view: SELECT * FROM gl_journal_lines WHERE company IN ('A')
//!  bronze_events    ─► no raw_events ─► a table that refuses to be scanned, naming the permission
//! ```
//! The filter is part of the table the statement resolves, so a user's WHERE clause, join or
//! view cannot reach around it; views are filtered on their own `company` column.

use crate::query::{RAW_EVENT_TABLES, ReadScope};
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{TableType, ViewTable, provider_as_source};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, col, lit};
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

/// The column rows are scoped by.
pub const COMPANY_COLUMN: &str = "company";

/// `table` as `scope` shows it.
pub fn scoped(
    name: &str,
    table: Arc<dyn TableProvider>,
    scope: &ReadScope,
) -> Result<Arc<dyn TableProvider>, DataFusionError> {
    if RAW_EVENT_TABLES.contains(&name) && !scope.raw_events {
        return Ok(Arc::new(Refused {
            schema: table.schema(),
            reason: format!(
                "{name} holds raw records of every company: reading it needs the permission sql.raw_events.read in every company"
            ),
        }));
    }
    let Some(companies) = &scope.companies else {
        return Ok(table);
    };
    if table.schema().field_with_name(COMPANY_COLUMN).is_err() {
        return Ok(table);
    }
    let allowed: Vec<Expr> = companies.iter().map(|c| lit(c.as_str())).collect();
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(table), None)?
        .filter(col(COMPANY_COLUMN).in_list(allowed, false))?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// Why a scan was refused, for the query service to answer as a refusal, not an SQL error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScopeRefusal(pub String);

/// A table the caller may not read: its columns are known, a scan is refused.
#[derive(Debug)]
struct Refused {
    schema: SchemaRef,
    reason: String,
}

#[async_trait]
impl TableProvider for Refused {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        Err(DataFusionError::External(Box::new(ScopeRefusal(
            self.reason.clone(),
        ))))
    }
}
