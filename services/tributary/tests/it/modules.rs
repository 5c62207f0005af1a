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

/// A `CREATE TABLE name (columns) WITH (options)` statement: the table's name, its columns
/// (name, type as written) and whether it is a Delta sink.
type Created = (String, Vec<(String, String)>, bool);

/// The `CREATE TABLE` statements of an SQL file.
fn created_tables(sql: &str) -> Vec<Created> {
    let code: String = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut tables = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("CREATE TABLE ") {
        rest = &rest[at + "CREATE TABLE ".len()..];
        let open = rest.find('(').unwrap();
        let name = rest[..open].trim().to_owned();
        // The column list: up to the parenthesis closing the first one.
        let (mut depth, mut end) = (0i32, 0);
        for (index, c) in rest[open..].char_indices() {
            match c {
                '(' | '<' => depth += 1,
                ')' | '>' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = open + index;
                break;
            }
        }
        let body = &rest[open + 1..end];
        let (mut columns, mut item, mut depth) = (Vec::new(), String::new(), 0i32);
        for c in body.chars().chain(std::iter::once(',')) {
            match c {
                '(' | '<' => depth += 1,
                ')' | '>' => depth -= 1,
                _ => {}
            }
            if c == ',' && depth == 0 {
                let text = item.trim().to_owned();
                if let Some((column, kind)) = text.split_once(char::is_whitespace) {
                    columns.push((
                        column.to_owned(),
                        kind.split_whitespace().collect::<Vec<_>>().join(" "),
                    ));
                }
                item.clear();
            } else {
                item.push(c);
            }
        }
        let options = &rest[end..rest[end..].find(';').map_or(rest.len(), |i| end + i)];
        tables.push((name, columns, options.contains("connector = 'delta'")));
        rest = &rest[end..];
    }
    tables
}

/// The Arroyo SQL of deploy/arroyo writes tables with the built-in tables' columns: every sink
/// column is a column of the catalog table of that name with the same type (a window's start
/// aside), so readers of either see the same data.
#[test]
fn the_arroyo_pipelines_write_the_columns_of_the_built_in_tables() {
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    let catalog = tributary::modules::tables(&tributary::modules::all());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/arroyo");
    let mut sinks = 0;
    for file in ["finance.sql", "materials.sql"] {
        let sql = std::fs::read_to_string(root.join(file)).unwrap();
        for (name, columns, sink) in created_tables(&sql) {
            if !sink {
                continue;
            }
            sinks += 1;
            assert!(
                sql.contains(&format!("INSERT INTO {name}")),
                "{file}: nothing is inserted into {name}"
            );
            let table = catalog
                .iter()
                .find(|t| t.name == name)
                .unwrap_or_else(|| panic!("{file}: sink {name} is not a table of the catalog"));
            for (column, kind) in columns {
                if column == "window_start" {
                    continue;
                }
                let field = table.schema.field_with_name(&column).unwrap_or_else(|_| {
                    panic!("{file}: {name}.{column} is not a column of the built-in {name}")
                });
                let expected = match kind.as_str() {
                    "TEXT" => DataType::Utf8,
                    "INT" => DataType::Int32,
                    "BIGINT" => DataType::Int64,
                    "DATE" => DataType::Date32,
                    "DECIMAL(38, 4)" => DataType::Decimal128(38, 4),
                    "DECIMAL(38, 6)" => DataType::Decimal128(38, 6),
                    "TIMESTAMP" => DataType::Timestamp(TimeUnit::Microsecond, None),
                    other => panic!("{file}: {name}.{column}: type {other} is not mapped"),
                };
                assert!(
                    field.data_type() == &expected
                        || matches!(
                            (field.data_type(), &expected),
                            (DataType::Timestamp(..), DataType::Timestamp(..))
                        ),
                    "{file}: {name}.{column} is {kind}, the built-in column {:?}",
                    field.data_type()
                );
            }
        }
    }
    assert!(sinks >= 4, "{sinks} Delta sinks found");
}
