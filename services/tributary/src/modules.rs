//! The list of modules: the only place that names Tributary's bounded contexts.
//!
//! Topics, routes, the lake catalog, the pipeline runner and the fixture check derive from
//! it; `--contexts` picks a subset of it.

use tributary_kernel::Module;
use tributary_kernel::lake::ViewSql;
use tributary_lakehouse::catalog::{self, TableDefinition};

/// Every context, in dependency order.
/// Each with its audit trail (`<context>_audit`, see [`tributary_kernel::audit`]).
pub fn all() -> Vec<Module> {
    vec![
        tributary_identity::module(),
        tributary_finance::module(),
        tributary_materials::module(),
        tributary_sales::module(),
        tributary_production::module(),
    ]
    .into_iter()
    .map(tributary_kernel::audit::with_audit_trail)
    .collect()
}

/// Every permission of the installation: the platform's and every context's (also those this
/// process does not run: a user's roles are the installation's).
pub fn catalog() -> tributary_kernel::auth::Catalog {
    let mut permissions: Vec<&'static tributary_kernel::auth::Permission> =
        tributary_kernel::auth::platform::ALL.to_vec();
    for module in all() {
        permissions.extend(module.permissions);
    }
    tributary_kernel::auth::Catalog::new(permissions)
}

/// The modules named in `contexts` (every module when `None`), or why a name is unknown.
pub fn select(contexts: Option<&[String]>) -> anyhow::Result<Vec<Module>> {
    let all = all();
    let Some(names) = contexts else {
        return Ok(all);
    };
    let known: Vec<&str> = all.iter().map(|m| m.name).collect();
    if let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) {
        anyhow::bail!(
            "unknown context {unknown:?}; contexts are {}",
            known.join(", ")
        );
    }
    if names.is_empty() {
        anyhow::bail!("name at least one context of {}", known.join(", "));
    }
    Ok(all
        .into_iter()
        .filter(|m| names.iter().any(|n| n == m.name))
        .collect())
}

/// The Delta tables of the modules, then the platform's own (bronze ingest, report runs).
pub fn tables(modules: &[Module]) -> Vec<TableDefinition> {
    let mut tables: Vec<TableDefinition> = modules
        .iter()
        .flat_map(|m| m.tables.iter().map(TableDefinition::of))
        .collect();
    tables.push(catalog::pipeline_dead_letters());
    tables.extend(catalog::bronze());
    tables.push(catalog::report_runs());
    tables
}

/// The modules' views over the lake, and `audit_trail` over their audit tables.
pub fn views(modules: &[Module]) -> Vec<ViewSql> {
    let contexts: Vec<&str> = modules.iter().map(|m| m.name).collect();
    modules
        .iter()
        .flat_map(|m| m.views.iter().copied())
        .chain((!contexts.is_empty()).then(|| tributary_kernel::audit::view(&contexts)))
        .collect()
}

/// The Kafka topic of each module: `<prefix><context>.events`.
pub fn topics(modules: &[Module], prefix: &str) -> Vec<String> {
    modules
        .iter()
        .map(|m| format!("{prefix}{}", tributary_ingest::kafka::topic_for(m.name)))
        .collect()
}

/// The topics a context's pipelines read: those of the contexts whose events its relations
/// decode (normally its own).
pub fn source_topics(module: &Module, prefix: &str) -> Vec<String> {
    let mut contexts: Vec<&str> = module
        .relations
        .iter()
        .map(|r| tributary_kernel::aggregate::context_of(r.aggregate_type()))
        .collect();
    contexts.sort();
    contexts.dedup();
    contexts
        .into_iter()
        .map(|c| format!("{prefix}{}", tributary_ingest::kafka::topic_for(c)))
        .collect()
}

/// Opens the lake with every table and view of the modules.
pub async fn open_lake(
    location: &str,
    modules: &[Module],
) -> Result<tributary_lakehouse::Lake, tributary_lakehouse::LakeError> {
    Ok(tributary_lakehouse::Lake::open(location, tables(modules))
        .await?
        .with_views(views(modules)))
}
