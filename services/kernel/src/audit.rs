//! Every context's audit trail: one lake row per stored event, naming the document, the user
//! (and, for a reactor's event, the reactor and the user whose command caused it), the
//! request and the time. The module list gives every context its own ([`with_audit_trail`]),
//! and the view `audit_trail` reads them all.
//!
//! ```text
//!  <context>.events ─► <context>_audit_events (relation: every event of the context)
//!                          └─ pipeline SELECT * ─► <context>_audit (Delta)
//!  audit_trail = <identity>_audit UNION ALL <finance>_audit UNION ALL …   (view)
//! ```
//! The `company` column is the event's own `company` field where it has one, so the query
//! service scopes audit rows like every other table; events of no company (users and roles)
//! are shown to holders of `sql.read` in every company only.

use crate::envelope::EventEnvelope;
use crate::event::EventError;
use crate::lake::{
    Cell, ColumnSpec, ColumnType, LakeTable, PipelineSql, Relation, RowSink, ViewSql,
};
use crate::module::Module;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The view over every context's audit table.
pub const VIEW: &str = "audit_trail";

/// `text` as a `&'static str`, kept once per distinct value: the names of generated tables,
/// relations and SQL are made once per context, however often the module list is built.
fn intern(text: String) -> &'static str {
    static INTERNED: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut interned = INTERNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let set = interned.get_or_insert_with(HashSet::new);
    if let Some(found) = set.get(text.as_str()) {
        return found;
    }
    let leaked: &'static str = Box::leak(text.into_boxed_str());
    set.insert(leaked);
    leaked
}

/// The audit table of `context`.
pub fn table_name(context: &str) -> &'static str {
    intern(format!("{context}_audit"))
}

/// Every event of one context, as audit rows.
pub struct AuditRelation {
    name: &'static str,
    context: &'static str,
    aggregate_type: &'static str,
}

fn columns() -> Vec<ColumnSpec> {
    use ColumnType::*;
    vec![
        ColumnSpec::new("company", Text, true),
        ColumnSpec::new("context", Text, false),
        ColumnSpec::new("aggregate_type", Text, false),
        ColumnSpec::new("document", Text, false),
        ColumnSpec::new("sequence", Int64, false),
        ColumnSpec::new("event_type", Text, false),
        ColumnSpec::new("event_version", Int32, false),
        ColumnSpec::new("username", Text, true),
        ColumnSpec::new("reactor", Text, true),
        ColumnSpec::new("request_id", Text, true),
        ColumnSpec::new("idempotency_key", Text, true),
        ColumnSpec::new("causation_id", Text, true),
        ColumnSpec::new("correlation_id", Text, true),
        ColumnSpec::new("event_id", Text, false),
        ColumnSpec::new("event_position", Int64, false),
        ColumnSpec::new("recorded_at", Timestamp, false),
    ]
}

impl Relation for AuditRelation {
    fn name(&self) -> &'static str {
        self.name
    }

    fn columns(&self) -> Vec<ColumnSpec> {
        columns()
    }

    fn aggregate_type(&self) -> &'static str {
        self.aggregate_type
    }

    fn reads(&self, event: &EventEnvelope) -> bool {
        event.context == self.context
    }

    fn decode(&self, event: &EventEnvelope, sink: &mut dyn RowSink) -> Result<usize, EventError> {
        let metadata = &event.metadata;
        let cells = [
            Cell::optional_text(event.payload.get("company").and_then(|c| c.as_str())),
            Cell::text(&event.context),
            Cell::text(&event.aggregate_type),
            Cell::text(&event.aggregate_id),
            Cell::Int64(event.sequence),
            Cell::text(&event.event_type),
            Cell::Int32(event.event_version),
            Cell::optional_text(metadata.user.as_deref()),
            Cell::optional_text(metadata.reactor.as_deref()),
            Cell::optional_text(metadata.request_id.as_deref()),
            Cell::optional_text(metadata.idempotency_key.as_deref()),
            Cell::optional_text(metadata.causation_id.as_deref()),
            Cell::optional_text(metadata.correlation_id.as_deref()),
            Cell::owned(event.id.to_string()),
            Cell::Int64(event.position),
            Cell::Timestamp(event.time),
        ];
        for (index, cell) in cells.into_iter().enumerate() {
            sink.cell(index, cell);
        }
        Ok(1)
    }
}

/// `module` with its audit trail: the relation over every event of its context, the table
/// `<context>_audit` and the pipeline that fills it.
pub fn with_audit_trail(mut module: Module) -> Module {
    let context = module.name;
    let relation = AuditRelation {
        name: intern(format!("{context}_audit_events")),
        context,
        aggregate_type: intern(format!("{context}.*")),
    };
    let table = table_name(context);
    module.tables.push(LakeTable::of_relation(
        table,
        "Who changed what, when, from which request: one row per stored event of the context",
        &relation,
    ));
    module.pipelines.push(PipelineSql {
        table,
        sql: intern(format!("SELECT * FROM {}", relation.name)),
    });
    module.relations.push(Arc::new(relation));
    module
}

/// The view `audit_trail` over the audit tables of `contexts` (unordered: ORDER BY
/// recorded_at or event_position).
pub fn view(contexts: &[&str]) -> ViewSql {
    let union = contexts
        .iter()
        .map(|context| format!("SELECT * FROM {}", table_name(context)))
        .collect::<Vec<_>>()
        .join("\nUNION ALL\n");
    ViewSql {
        name: VIEW,
        sql: intern(format!(
            "-- Who changed what, when, from which request, in every context.\nCREATE VIEW {VIEW} AS\n{union}\n"
        )),
    }
}
