//! The module list is the only list of contexts: every module's events have golden fixtures,
//! its pipelines write tables it declares, and `--contexts` runs a subset.

use crate::helpers::config;
use std::collections::BTreeSet;

#[test]
fn every_event_type_and_version_of_every_module_has_a_golden_fixture() {
    let mut problems = Vec::new();
    for module in tributary::modules::all() {
        problems.extend(module.fixture_problems());
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn module_declarations_are_consistent_and_names_are_unique() {
    let modules = tributary::modules::all();
    let mut tables = BTreeSet::new();
    let mut relations = BTreeSet::new();
    let mut contexts = BTreeSet::new();
    for module in &modules {
        assert!(
            contexts.insert(module.name),
            "context {} twice",
            module.name
        );
        for table in &module.tables {
            assert!(tables.insert(table.name), "table {} twice", table.name);
        }
        for relation in &module.relations {
            assert!(
                relations.insert(relation.name()),
                "relation {} twice",
                relation.name()
            );
        }
        for pipeline in &module.pipelines {
            assert!(
                module.tables.iter().any(|t| t.name == pipeline.table),
                "context {}: pipeline {} writes a table the module does not declare",
                module.name,
                pipeline.table
            );
        }
        assert!(
            !module.events.is_empty(),
            "context {} has no events",
            module.name
        );
    }
    let names: Vec<String> = tributary::modules::topics(&modules, "");
    assert!(names.contains(&"finance.events".to_owned()), "{names:?}");
}

#[tokio::test]
async fn contexts_pick_the_modules_a_process_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut unknown = config(dir.path(), None);
    unknown.contexts = Some(vec!["nothing".into()]);
    let error = tributary::start(unknown).await.err().expect("refused");
    assert!(
        error.to_string().contains("unknown context \"nothing\""),
        "{error}"
    );

    let mut finance_api = config(dir.path(), None);
    finance_api.contexts = Some(vec!["finance".into()]);
    finance_api.roles = tributary::Roles::parse("api").unwrap();
    let running = tributary::start(finance_api).await.unwrap();
    let base = format!("http://{}", running.addr);
    let client = crate::helpers::admin_client(&base).await;
    let companies = client
        .get(format!("{base}/api/v1/companies"))
        .send()
        .await
        .unwrap();
    assert_eq!(companies.status(), 200);
    // The api role alone serves no SQL.
    let sql = client
        .post(format!("{base}/api/v1/sql"))
        .json(&serde_json::json!({"sql": "SELECT 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sql.status(), 404);
    running.stop().await;
}
