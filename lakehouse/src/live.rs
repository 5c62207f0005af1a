//! Lake tables and `sql/views` that are always current, planned once.
//!
//! A [`LiveTable`] resolves its table's newest Delta version when a plan scans it, not when the
//! plan is made; views are created once over live tables, so a view's plan is built once and
//! still reads the newest data. Contexts are then cheap to make (no table is loaded until a
//! statement scans it), for HTTP and for the shared context of the wire protocol alike.

use crate::catalog;
use crate::lake::{Lake, LakeError};
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

/// A lake table read at its newest committed version at scan time.
#[derive(Debug)]
pub struct LiveTable {
    name: &'static str,
    lake: Lake,
    /// The provider of the version seen at creation: the schema and which filters the Delta
    /// scan can use never change for an append-only table of fixed schema.
    first: Arc<dyn TableProvider>,
}

impl LiveTable {
    pub async fn open(lake: &Lake, name: &'static str) -> Result<LiveTable, LakeError> {
        Ok(LiveTable {
            name,
            lake: lake.clone(),
            first: provider(lake, name)
                .await
                .map_err(|error| LakeError::Schema {
                    table: name.to_owned(),
                    reason: error.to_string(),
                })?,
        })
    }
}

async fn provider(lake: &Lake, name: &str) -> Result<Arc<dyn TableProvider>, DataFusionError> {
    let table = lake
        .latest(name)
        .await
        .map_err(|error| DataFusionError::External(Box::new(error)))?;
    table.table_provider().await
}

#[async_trait]
impl TableProvider for LiveTable {
    fn schema(&self) -> SchemaRef {
        self.first.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>, DataFusionError> {
        self.first.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        provider(&self.lake, self.name)
            .await?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// Every lake table as a [`LiveTable`] and every view of `sql/views` over them.
#[derive(Debug, Clone)]
pub struct LiveCatalog {
    pub tables: Vec<(&'static str, Arc<dyn TableProvider>)>,
    pub views: Vec<(&'static str, Arc<dyn TableProvider>)>,
}

impl LiveCatalog {
    pub async fn open(
        lake: &Lake,
        context: &SessionContext,
    ) -> Result<LiveCatalog, DataFusionError> {
        let mut tables: Vec<(&'static str, Arc<dyn TableProvider>)> = Vec::new();
        for definition in lake.definitions() {
            let table = LiveTable::open(lake, definition.name)
                .await
                .map_err(|error| DataFusionError::External(Box::new(error)))?;
            context.register_table(definition.name, Arc::new(table))?;
            tables.push((
                definition.name,
                context.table_provider(definition.name).await?,
            ));
        }
        let mut views = Vec::new();
        for (name, view) in catalog::views() {
            context.sql(view).await?;
            views.push((name, context.table_provider(name).await?));
        }
        Ok(LiveCatalog { tables, views })
    }

    /// The table or view called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn TableProvider>> {
        self.tables
            .iter()
            .chain(self.views.iter())
            .find(|(n, _)| *n == name)
            .map(|(_, provider)| provider)
    }
}
