//! Grouping by a function of a date, computed once per date instead of once per row.
//!
//! Grafana's time series group by a bucket of their time column:
//! `$__timeGroup(posting_date, '1d')` becomes
//! `floor(extract(epoch from posting_date) / 86400) * 86400`, `date_trunc('month', …)` buckets
//! months. Over ten million journal lines that is four array passes and a Float64 hash per row,
//! although a date column holds a few thousand values at most. When every grouping expression
//! is a deterministic expression of one and the same date column, and every aggregate can be
//! combined from partial results (`count`, `sum`, `min`, `max`, none `DISTINCT`, filtered or
//! ordered), the rule groups by the date itself first and computes the buckets over those
//! groups:
//!
//! ```text
//! Aggregate [g(d)] [count(*), sum(x)]          Projection (the original names and types)
//!   input                                ──►     Aggregate [g] [sum(n), sum(s)]
//!                                                  Projection [g(d) AS g, n, s]
//!                                                    Aggregate [d] [count(*) AS n, sum(x) AS s]
//!                                                      input
//! ```
//! The answer is the same: `g` is deterministic, so rows of one date fall in one bucket, and
//! each combination (`sum` of counts and of sums, `min` of minimums, `max` of maximums) equals
//! the aggregate over the bucket's rows.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, ExprSchema, Result};
use datafusion::functions_aggregate::count::Count;
use datafusion::functions_aggregate::min_max::{Max, Min};
use datafusion::functions_aggregate::sum::Sum;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, AggregateUDF, Expr, LogicalPlan, Projection, cast};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use std::sync::Arc;

/// The rule; see the module's documentation.
#[derive(Debug, Default)]
pub struct PreAggregateDates;

impl OptimizerRule for PreAggregateDates {
    fn name(&self) -> &str {
        "tributary_pre_aggregate_dates"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        match plan {
            LogicalPlan::Aggregate(aggregate) => {
                match (bucketed_date(&aggregate), combinations(&aggregate)) {
                    (Some(date), Some(combine)) => {
                        Ok(Transformed::yes(pre_aggregated(aggregate, date, combine)?))
                    }
                    _ => Ok(Transformed::no(LogicalPlan::Aggregate(aggregate))),
                }
            }
            other => Ok(Transformed::no(other)),
        }
    }
}

/// The date column every grouping expression is a deterministic expression of, when they all
/// are of one and the same. A plain column beside it (`GROUP BY bucket(date), account`) is left alone: the
/// dates and that column together may be nearly as many as the rows (a table already summed
/// per account and day), and grouping twice would then cost more than it saves.
fn bucketed_date(aggregate: &Aggregate) -> Option<Column> {
    let schema = aggregate.input.schema();
    let mut date: Option<&Column> = None;
    for expr in &aggregate.group_expr {
        // Plain columns, grouping sets, subqueries, placeholders and volatile functions are
        // left alone.
        let refused = matches!(expr, Expr::Column(_) | Expr::GroupingSet(_))
            || expr.is_volatile()
            || expr
                .exists(|e| {
                    Ok(matches!(
                        e,
                        Expr::ScalarSubquery(_)
                            | Expr::Exists(_)
                            | Expr::InSubquery(_)
                            | Expr::Placeholder(_)
                            | Expr::AggregateFunction(_)
                            | Expr::WindowFunction(_)
                    ))
                })
                .unwrap_or(true);
        if refused {
            return None;
        }
        let columns = expr.column_refs();
        let mut columns = columns.into_iter();
        let (Some(column), None) = (columns.next(), columns.next()) else {
            return None;
        };
        let is_date = schema
            .field_from_column(column)
            .is_ok_and(|field| matches!(field.data_type(), DataType::Date32 | DataType::Date64));
        if !is_date || date.is_some_and(|date| date != column) {
            return None;
        }
        date = Some(column);
    }
    date.cloned()
}

/// For each aggregate, the function combining its partial results, or `None` when one of them
/// cannot be combined.
fn combinations(aggregate: &Aggregate) -> Option<Vec<Arc<AggregateUDF>>> {
    aggregate
        .aggr_expr
        .iter()
        .map(|expr| {
            let Expr::AggregateFunction(AggregateFunction { func, params }) = unaliased(expr)
            else {
                return None;
            };
            let plain = !params.distinct
                && params.filter.is_none()
                && params.order_by.is_empty()
                && params.null_treatment.is_none();
            let inner = func.inner();
            if !plain {
                None
            } else if inner.is::<Count>() || inner.is::<Sum>() {
                Some(datafusion::functions_aggregate::sum::sum_udaf())
            } else if inner.is::<Min>() || inner.is::<Max>() {
                Some(func.clone())
            } else {
                None
            }
        })
        .collect()
}

fn unaliased(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => unaliased(&alias.expr),
        expr => expr,
    }
}

/// `aggregate` made in two steps (see the module's documentation), answering the same schema.
fn pre_aggregated(
    aggregate: Aggregate,
    date: Column,
    combine: Vec<Arc<AggregateUDF>>,
) -> Result<LogicalPlan> {
    let group_name = |k: usize| format!("__tributary_group_{k}");
    let partial_name = |i: usize| format!("__tributary_partial_{i}");
    let combined_name = |i: usize| format!("__tributary_combined_{i}");
    let unqualified = |name: String| Expr::Column(Column::new_unqualified(name));

    let partials = aggregate
        .aggr_expr
        .iter()
        .enumerate()
        .map(|(i, expr)| unaliased(expr).clone().alias(partial_name(i)))
        .collect();
    let by_columns =
        Aggregate::try_new(aggregate.input.clone(), vec![Expr::Column(date)], partials)?;
    let buckets = aggregate
        .group_expr
        .iter()
        .enumerate()
        .map(|(k, expr)| expr.clone().alias(group_name(k)))
        .chain((0..aggregate.aggr_expr.len()).map(|i| unqualified(partial_name(i))))
        .collect();
    let buckets = Projection::try_new(buckets, Arc::new(LogicalPlan::Aggregate(by_columns)))?;
    let combined = combine
        .into_iter()
        .enumerate()
        .map(|(i, func)| {
            Expr::AggregateFunction(AggregateFunction::new_udf(
                func,
                vec![unqualified(partial_name(i))],
                false,
                None,
                vec![],
                None,
            ))
            .alias(combined_name(i))
        })
        .collect();
    let by_buckets = Aggregate::try_new(
        Arc::new(LogicalPlan::Projection(buckets)),
        (0..aggregate.group_expr.len())
            .map(|k| unqualified(group_name(k)))
            .collect(),
        combined,
    )?;
    let outer = by_buckets.schema.clone();
    let groups = aggregate.group_expr.len();
    let answer = aggregate
        .schema
        .iter()
        .enumerate()
        .map(|(n, (qualifier, field))| {
            let name = if n < groups {
                group_name(n)
            } else {
                combined_name(n - groups)
            };
            let mut expr = unqualified(name);
            // A sum of sums widens decimals and a sum of counts may differ in type: cast back.
            if outer.field(n).data_type() != field.data_type() {
                expr = cast(expr, field.data_type().clone());
            }
            expr.alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    Ok(LogicalPlan::Projection(Projection::try_new(
        answer,
        Arc::new(LogicalPlan::Aggregate(by_buckets)),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Date32Array, Decimal128Array, Int32Array, RecordBatch};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    /// 2,000 rows over 40 days (some dates NULL), two kinds, amounts with four decimals.
    fn context(with_rule: bool) -> SessionContext {
        let schema = Arc::new(Schema::new(vec![
            Field::new("posting_date", DataType::Date32, true),
            Field::new("kind", DataType::Int32, false),
            Field::new("amount", DataType::Decimal128(38, 4), false),
        ]));
        let rows = 0..2_000i32;
        let dates = Date32Array::from_iter(
            rows.clone()
                .map(|i| (i % 97 != 0).then_some(20_000 + i % 40)),
        );
        let kinds = Int32Array::from_iter_values(rows.clone().map(|i| i % 2));
        let amounts =
            Decimal128Array::from_iter_values(rows.map(|i| i128::from(i) * 12_345 - 7_000_000))
                .with_precision_and_scale(38, 4)
                .expect("a valid decimal type");
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(dates), Arc::new(kinds), Arc::new(amounts)],
        )
        .expect("a batch");
        let table = MemTable::try_new(
            schema,
            vec![vec![batch.slice(0, 1_000)], vec![batch.slice(1_000, 1_000)]],
        )
        .expect("a table");
        let context = SessionContext::new();
        if with_rule {
            context.add_optimizer_rule(Arc::new(PreAggregateDates));
        }
        context
            .register_table("lines", Arc::new(table))
            .expect("registered");
        context
    }

    async fn answer(context: &SessionContext, sql: &str) -> (String, String) {
        let frame = context.sql(sql).await.expect("planned");
        let optimized = frame.clone().into_optimized_plan().expect("optimized");
        let batches = frame.collect().await.expect("ran");
        let text = pretty_format_batches(&batches)
            .expect("formatted")
            .to_string();
        (text, format!("{}", optimized.display_indent_schema()))
    }

    #[tokio::test]
    async fn buckets_of_dates_are_computed_per_date_with_the_same_answer() {
        let (plain, with_rule) = (context(false), context(true));
        for sql in [
            // Grafana's $__timeGroup(posting_date, '1d').
            "SELECT floor(extract(epoch from posting_date) / 86400) * 86400 AS \"time\", count(*) AS entries \
             FROM lines WHERE kind = 1 GROUP BY 1 ORDER BY 1",
            "SELECT date_trunc('month', posting_date) AS month, extract(dow FROM posting_date) AS weekday, \
             count(amount), sum(amount), min(amount), max(amount), sum(amount) - min(amount) AS spread \
             FROM lines WHERE kind = 0 GROUP BY date_trunc('month', posting_date), 2 ORDER BY 1, 2",
            "SELECT CAST(date_trunc('week', posting_date) AS timestamp) AS t FROM lines GROUP BY 1 ORDER BY 1",
        ] {
            let (expected, _) = answer(&plain, sql).await;
            let (got, plan) = answer(&with_rule, sql).await;
            assert_eq!(got, expected, "{sql}");
            assert!(
                plan.contains("__tributary_group_0"),
                "{sql} not rewritten:\n{plan}"
            );
            assert!(
                expected.lines().count() > 6,
                "{sql} answered too little:\n{expected}"
            );
        }
    }

    #[tokio::test]
    async fn aggregates_that_cannot_be_combined_and_other_groups_are_left_alone() {
        let with_rule = context(true);
        for sql in [
            "SELECT date_trunc('month', posting_date), count(DISTINCT kind) FROM lines GROUP BY 1",
            "SELECT date_trunc('month', posting_date), avg(amount) FROM lines GROUP BY 1",
            "SELECT date_trunc('month', posting_date), sum(amount) FILTER (WHERE kind = 1) FROM lines GROUP BY 1",
            "SELECT kind % 2, count(*) FROM lines GROUP BY 1",
            // Beside a plain column the groups may be nearly the rows.
            "SELECT date_trunc('month', posting_date), kind, count(*) FROM lines GROUP BY 1, 2",
            "SELECT posting_date, count(*) FROM lines GROUP BY 1",
            "SELECT CASE WHEN kind = 1 THEN posting_date END, count(*) FROM lines GROUP BY 1",
        ] {
            let (_, plan) = answer(&with_rule, sql).await;
            assert!(
                !plan.contains("__tributary_group"),
                "{sql} rewritten:\n{plan}"
            );
        }
    }
}
