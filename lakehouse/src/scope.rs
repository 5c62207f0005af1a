//! A table as one caller may see it: the rows of their companies, or nothing of raw events.
//!
//! ```text
//!  SELECT … FROM gl_journal_lines WHERE <caller's predicate>        (scope Only{A})
//!
//!  FilterExec: <caller's predicate, where it could fail on a row>   evaluated on A's rows only
//!    ScopeFence: company IN (A)                                      nothing moves below it
//!      FilterExec: company IN ('A') AND <caller's predicates that cannot fail>
//!        Parquet scan (files, row groups, pages pruned by those predicates' statistics)
//!
//!  bronze_events ─► no raw_events ─► a table that refuses to be scanned, naming the permission
//! ```
//! The filter is part of the table the statement resolves, so a user's WHERE clause, join or
//! view cannot reach around it; views are filtered on their own `company` column.
//!
//! A predicate must not be evaluated on a row outside the scope either: `WHERE 1 / (CASE WHEN
//! debit = 77 THEN 0 ELSE 1 END) = 1` fails with "Divide by zero" if another company's row of
//! 77.00 is in the batch, which tells the caller that row exists. One conjunction over whole
//! batches (the scope AND the caller's predicate) does just that whenever companies share a
//! Parquet file (a busy batch, every compacted file). So the scope is applied first, on its own
//! or with the caller's predicates that cannot fail on any row ([`infallible`]: comparisons of
//! columns and literals); every other predicate is evaluated above a [`ScopeFence`], which no
//! optimizer moves a filter or an expression through. Those predicates do not prune files, row
//! groups or pages either: what they skip would depend on the statistics of other companies'
//! rows in the same file, and which of the caller's rows reach a failing predicate would then
//! tell about those rows. Over a view every predicate is evaluated above the fence: a view's
//! column may be an expression the optimizer substitutes into a predicate pushed into it.
//! `EXPLAIN` is refused to scoped callers (see `crate::query::explain_refusal`): its file lists,
//! row counts and statistics are every company's.

use crate::live::LiveTable;
use crate::query::{RAW_EVENT_TABLES, ReadScope};
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Column, Statistics};
use datafusion::datasource::{TableType, provider_as_source};
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, TableProviderFilterPushDown, col, lit};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
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
    Ok(Arc::new(Scoped {
        name: name.to_owned(),
        inner: table,
        scope: col(COMPANY_COLUMN).in_list(allowed, false),
        companies: companies.iter().cloned().collect(),
    }))
}

/// A table or view showing the rows `scope` allows: filtered first, then fenced.
#[derive(Debug)]
struct Scoped {
    name: String,
    inner: Arc<dyn TableProvider>,
    /// `company IN (…)`.
    scope: Expr,
    companies: Vec<String>,
}

#[async_trait]
impl TableProvider for Scoped {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.inner.get_table_definition()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>, DataFusionError> {
        // Exact: applied with the scope, below the fence. Unsupported: evaluated above it.
        let table = self.inner.downcast_ref::<LiveTable>().is_some();
        Ok(filters
            .iter()
            .map(|filter| {
                if table && !filter.is_volatile() && infallible(filter) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let rows: Vec<Expr> = std::iter::once(self.scope.clone())
            .chain(filters.iter().cloned())
            .collect();
        let plan = if self.inner.downcast_ref::<LiveTable>().is_some() {
            self.inner.scan(state, projection, &rows, limit).await?
        } else {
            // A view (or a system table): the scope as a plan over it, whatever the inner
            // provider does with filters it is given.
            let schema = self.inner.schema();
            let mut plan =
                LogicalPlanBuilder::scan(&self.name, provider_as_source(self.inner.clone()), None)?;
            if let Some(predicate) = conjunction(rows) {
                plan = plan.filter(predicate)?;
            }
            if let Some(projection) = projection {
                plan = plan.project(projection.iter().map(|index| {
                    Expr::Column(Column::new_unqualified(schema.field(*index).name()))
                }))?;
            }
            if limit.is_some() {
                plan = plan.limit(0, limit)?;
            }
            state.create_physical_plan(&plan.build()?).await?
        };
        Ok(Arc::new(ScopeFence::new(plan, &self.companies)))
    }
}

/// Whether `expr` gives an answer (true, false or NULL) on every row instead of failing:
/// columns and literals compared, tested for NULL, in lists or ranges, combined with AND, OR
/// and NOT. Such a predicate may be evaluated with the scope on rows outside it (its answer
/// there is thrown away); anything else (arithmetic, casts, functions, CASE) is evaluated on
/// the scope's rows only.
pub fn infallible(expr: &Expr) -> bool {
    use datafusion::logical_expr::{Between, BinaryExpr, Operator, expr::InList};
    match expr {
        Expr::Column(_) | Expr::Literal(..) => true,
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            matches!(
                op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
                    | Operator::IsDistinctFrom
                    | Operator::IsNotDistinctFrom
                    | Operator::And
                    | Operator::Or
            ) && infallible(left)
                && infallible(right)
        }
        Expr::Not(inner)
        | Expr::IsNull(inner)
        | Expr::IsNotNull(inner)
        | Expr::IsTrue(inner)
        | Expr::IsFalse(inner)
        | Expr::IsUnknown(inner)
        | Expr::IsNotTrue(inner)
        | Expr::IsNotFalse(inner)
        | Expr::IsNotUnknown(inner) => infallible(inner),
        Expr::InList(InList { expr, list, .. }) => infallible(expr) && list.iter().all(infallible),
        Expr::Between(Between {
            expr, low, high, ..
        }) => infallible(expr) && infallible(low) && infallible(high),
        _ => false,
    }
}

/// The node between a scoped table's rows and the rest of a plan: it passes its input's
/// batches on and lets nothing through downwards: no filter (the physical optimizer's filter
/// pushdown would merge a caller's predicate into the scope's FilterExec, evaluated as one
/// conjunction over whole batches), no projection, no sort, no limit.
#[derive(Debug)]
pub struct ScopeFence {
    input: Arc<dyn ExecutionPlan>,
    companies: Vec<String>,
    properties: Arc<PlanProperties>,
}

impl ScopeFence {
    fn new(input: Arc<dyn ExecutionPlan>, companies: &[String]) -> ScopeFence {
        ScopeFence {
            properties: Arc::clone(input.properties()),
            input,
            companies: companies.to_vec(),
        }
    }

    /// `plan` without its fences, once the optimizer is done with it (for the Ballista
    /// cluster, whose codec knows DataFusion's own nodes only).
    pub fn removed(
        plan: Arc<dyn ExecutionPlan>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        plan.transform_up(|node| match node.downcast_ref::<ScopeFence>() {
            Some(fence) => Ok(Transformed::yes(Arc::clone(&fence.input))),
            None => Ok(Transformed::no(node)),
        })
        .map(|transformed| transformed.data)
    }
}

impl DisplayAs for ScopeFence {
    fn fmt_as(&self, format: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match format {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(f, "ScopeFence: company IN {:?}", self.companies)
            }
            DisplayFormatType::TreeRender => write!(f, "company IN {:?}", self.companies),
        }
    }
}

impl ExecutionPlan for ScopeFence {
    fn name(&self) -> &'static str {
        "ScopeFence"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        // It does, but `true` would let a sort (`ORDER BY 1 / …`) be pushed below it.
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion, DataFusionError>,
    ) -> Result<TreeNodeRecursion, DataFusionError> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(ScopeFence::new(input, &self.companies))),
            _ => Err(DataFusionError::Internal(
                "ScopeFence takes exactly one input".into(),
            )),
        }
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>, DataFusionError> {
        Ok(input_stats
            .first()
            .cloned()
            .unwrap_or_else(|| Arc::new(Statistics::new_unknown(&self.schema()))))
    }

    #[expect(
        deprecated,
        reason = "callers of the old entry point get the input's statistics too"
    )]
    fn partition_statistics(
        &self,
        partition: Option<usize>,
    ) -> Result<Arc<Statistics>, DataFusionError> {
        self.input.partition_statistics(partition)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream, DataFusionError> {
        self.input.execute(partition, context)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{TableDefinition, schema_of};
    use crate::{Lake, QueryLimits, QueryService, ReadScope};
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use tributary_kernel::lake::{ColumnSpec, ColumnType, ViewSql};

    const LINES: &str = "scoped_lines";

    /// A lake whose first file holds company A's and B's rows together (as a busy batch or a
    /// compacted file does) and whose second holds B's only.
    async fn lake(dir: &std::path::Path) -> Lake {
        let definition = TableDefinition {
            name: LINES,
            description: "test",
            schema: schema_of(&[
                ColumnSpec::new("company", ColumnType::Text, false),
                ColumnSpec::new("account", ColumnType::Text, false),
                ColumnSpec::new("amount", ColumnType::Int64, false),
            ]),
            partition_columns: &[],
            stats_columns: None,
        };
        let lake = Lake::open(dir.to_str().expect("a path"), vec![definition.clone()])
            .await
            .expect("a lake")
            .with_views(vec![ViewSql {
                name: "scoped_moves",
                sql: "CREATE VIEW scoped_moves AS SELECT company, account, amount FROM scoped_lines WHERE amount > 1",
            }]);
        for (companies, accounts, amounts) in [
            (
                vec!["A", "B", "A"],
                vec!["1000", "1000", "1100"],
                vec![5, 77, 10],
            ),
            (vec!["B"], vec!["2000"], vec![40]),
        ] {
            let batch = RecordBatch::try_new(
                definition.schema.clone(),
                vec![
                    Arc::new(StringArray::from(companies)),
                    Arc::new(StringArray::from(accounts)),
                    Arc::new(Int64Array::from(amounts)),
                ],
            )
            .expect("a batch");
            lake.append(LINES, vec![batch], &[])
                .await
                .expect("appended");
        }
        lake
    }

    fn only_a() -> ReadScope {
        ReadScope {
            companies: Some(["A".to_owned()].into()),
            raw_events: false,
        }
    }

    /// The first column of the first row, as text.
    async fn answer(
        service: &QueryService,
        sql: &str,
        scope: &ReadScope,
    ) -> Result<String, String> {
        let result = service.query(sql, scope).await.map_err(|e| e.to_string())?;
        let batch = result.batches.first().ok_or("no batch")?;
        datafusion::arrow::util::display::array_value_to_string(batch.column(0), 0)
            .map_err(|e| e.to_string())
    }

    /// A caller's predicate or expression that fails on B's 77 (and only there) answers for
    /// A's rows in a table, a view and an earlier version, where B's row shares A's file;
    /// without a scope the same statement fails, so the row is in the batch the scan reads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_predicate_of_a_scoped_caller_is_evaluated_on_rows_outside_their_scope() {
        let dir = tempfile::tempdir().expect("a directory");
        let service = QueryService::new(lake(dir.path()).await, QueryLimits::default());
        let fails_on_77 = "1 / (CASE WHEN amount = 77 THEN 0 ELSE 1 END) = 1";
        for statement in [
            format!("SELECT count(*) FROM {LINES} WHERE {fails_on_77}"),
            format!("SELECT count(*) FROM {LINES} WHERE company <> 'B' OR {fails_on_77}"),
            format!("SELECT count(*) FROM {LINES} WHERE amount < 100 AND {fails_on_77}"),
            format!("SELECT count(*) FROM scoped_moves WHERE {fails_on_77}"),
            format!("SELECT count(*) FROM as_of('{LINES}', 1) WHERE {fails_on_77}"),
            format!("SELECT count(*) FROM (SELECT 1 / (amount - 77) AS x FROM {LINES})"),
            format!(
                "SELECT count(*) FROM {LINES} l JOIN scoped_moves m ON m.account = l.account \
                 WHERE 1 / (CASE WHEN l.amount + m.amount > 100 THEN 0 ELSE 1 END) = 1"
            ),
        ] {
            assert_eq!(
                answer(&service, &statement, &only_a()).await,
                Ok("2".to_owned()),
                "{statement}"
            );
        }
        let unscoped = answer(
            &service,
            &format!("SELECT count(*) FROM {LINES} WHERE {fails_on_77}"),
            &ReadScope::everything(),
        )
        .await;
        assert!(
            unscoped
                .as_ref()
                .is_err_and(|e| e.contains("Divide by zero")),
            "{unscoped:?}"
        );
        // Predicates that cannot fail still filter with the scope, and B's rows stay hidden.
        for (statement, expected) in [
            (
                format!("SELECT count(*) FROM {LINES} WHERE amount > 6"),
                "1",
            ),
            (
                format!("SELECT count(*) FROM {LINES} WHERE company = 'B'"),
                "0",
            ),
            (format!("SELECT sum(amount) FROM {LINES}"), "15"),
            (
                "SELECT count(*) FROM scoped_moves WHERE account LIKE '2%'".to_owned(),
                "0",
            ),
        ] {
            assert_eq!(
                answer(&service, &statement, &only_a()).await,
                Ok(expected.to_owned()),
                "{statement}"
            );
        }
    }

    /// A predicate that could fail is evaluated above the fence, one that cannot below it with
    /// the scope; neither reaches the scan of a view. `EXPLAIN` is refused to a scoped caller.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_plan_keeps_a_fallible_predicate_above_the_fence_and_explain_is_refused() {
        let dir = tempfile::tempdir().expect("a directory");
        let service = QueryService::new(lake(dir.path()).await, QueryLimits::default());
        let context = service.scoped_context(&only_a()).await.expect("a context");
        let plan = |sql: String| {
            let context = context.clone();
            async move {
                let plan = context
                    .sql(&sql)
                    .await
                    .expect("planned")
                    .create_physical_plan()
                    .await
                    .expect("a physical plan");
                datafusion::physical_plan::displayable(plan.as_ref())
                    .indent(true)
                    .to_string()
            }
        };
        let line = |plan: &str, what: &str| {
            plan.lines()
                .position(|line| line.contains(what))
                .unwrap_or_else(|| panic!("no {what} in {plan}"))
        };
        let shown = plan(format!(
            "SELECT count(*) FROM {LINES} WHERE amount > 6 AND 1 / (CASE WHEN amount = 77 THEN 0 ELSE 1 END) = 1"
        ))
        .await;
        let fence = line(&shown, "ScopeFence");
        assert!(line(&shown, "CASE WHEN") < fence, "{shown}");
        let below: Vec<&str> = shown.lines().skip(fence).collect();
        assert!(below.iter().all(|l| !l.contains("CASE")), "{shown}");
        assert!(
            below
                .iter()
                .any(|l| l.contains("FilterExec") && l.contains("amount@") && l.contains("> 6")),
            "{shown}"
        );
        let shown =
            plan("SELECT count(*) FROM scoped_moves WHERE account = '1000'".to_owned()).await;
        let fence = line(&shown, "ScopeFence");
        assert!(line(&shown, "= 1000") < fence, "{shown}");
        for statement in [
            format!("EXPLAIN SELECT count(*) FROM {LINES} WHERE amount = 77"),
            format!("EXPLAIN ANALYZE SELECT count(*) FROM {LINES}"),
        ] {
            let refused = service.query(&statement, &only_a()).await;
            assert!(
                matches!(&refused, Err(crate::QueryError::Forbidden { reason }) if reason.contains("EXPLAIN")),
                "{statement}: {refused:?}"
            );
        }
        assert!(
            service
                .query(
                    &format!("EXPLAIN SELECT count(*) FROM {LINES}"),
                    &ReadScope::everything()
                )
                .await
                .is_ok()
        );
    }
}
