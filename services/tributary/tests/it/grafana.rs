//! Grafana against the wire endpoint, replayed: every panel of `dashboards/*.json` with its
//! macros expanded the way Grafana's PostgreSQL datasource expands them, the datasource's
//! "Save & test" ping and its query builder's `information_schema` listings.

use crate::helpers::{Backend, TestApp};
use crate::wire::url;
use sqlx::{Column, Connection, Executor, Row, TypeInfo};
use tributary::grafana::{self, PanelQuery, TimeRange};

const FROM: &str = "2026-01-01T00:00:00Z";
const TO: &str = "2026-12-31T23:59:59Z";

/// The PostgreSQL types each panel's columns must have, by panel title: what the panel's
/// visualisation reads (a time column first for time series, numbers for values).
const EXPECTED: &[(&str, &[&str])] = &[
    ("Cash and bank balances", &["TIMESTAMP", "TEXT", "NUMERIC"]),
    (
        "Revenue vs expense by month",
        &["TIMESTAMP", "NUMERIC", "NUMERIC"],
    ),
    ("Journal entries per day", &["FLOAT8", "INT8"]),
    ("Top accounts by movement", &["TEXT", "NUMERIC"]),
    (
        "Trial balance",
        &[
            "TEXT", "TEXT", "TEXT", "TEXT", "NUMERIC", "NUMERIC", "NUMERIC",
        ],
    ),
    ("Debits minus credits (0 when balanced)", &["NUMERIC"]),
    ("Events per second", &["FLOAT8", "FLOAT8"]),
    ("Stock value over time", &["TIMESTAMP", "TEXT", "NUMERIC"]),
    ("Open purchase order value", &["TEXT", "NUMERIC"]),
    (
        "Accounts payable aging",
        &[
            "TEXT", "NUMERIC", "NUMERIC", "NUMERIC", "NUMERIC", "NUMERIC", "NUMERIC",
        ],
    ),
    ("Top materials by consumption", &["TEXT", "NUMERIC"]),
    (
        "Inventory accounts off the stock ledger (0 when reconciled)",
        &["INT8"],
    ),
    (
        "Inventory value by valuation class",
        &["TEXT", "TEXT", "NUMERIC", "NUMERIC"],
    ),
    (
        "Revenue and margin by month",
        &["TIMESTAMP", "NUMERIC", "NUMERIC"],
    ),
    ("Revenue by material group", &["TEXT", "NUMERIC"]),
    ("Top customers by revenue", &["TEXT", "NUMERIC"]),
    (
        "Order backlog",
        &["TEXT", "TEXT", "INT8", "NUMERIC", "NUMERIC"],
    ),
    (
        "Accounts receivable aging",
        &[
            "TEXT", "NUMERIC", "NUMERIC", "NUMERIC", "NUMERIC", "NUMERIC", "NUMERIC",
        ],
    ),
    ("Days sales outstanding", &["NUMERIC"]),
    ("Receivables off the ledger (0 when reconciled)", &["INT8"]),
    (
        "Planned vs actual output",
        &["TIMESTAMP", "NUMERIC", "NUMERIC"],
    ),
    (
        "Capacity load by work centre and week",
        &["TEXT", "TEXT", "NUMERIC", "NUMERIC", "NUMERIC"],
    ),
    ("MRP exceptions by kind", &["TEXT", "INT8"]),
    ("MRP exceptions", &["TEXT", "TEXT", "TEXT", "TEXT", "TEXT"]),
    (
        "Forecast vs actual demand by month",
        &["TIMESTAMP", "NUMERIC", "NUMERIC"],
    ),
    (
        "Production orders: cost and variance",
        &[
            "TEXT", "TEXT", "TEXT", "NUMERIC", "NUMERIC", "NUMERIC", "NUMERIC",
        ],
    ),
    ("Pipeline lag (events)", &["TEXT", "INT8"]),
    ("Freshness", &["INT8"]),
    (
        "Pipelines",
        &[
            "TEXT",
            "INT8",
            "INT8",
            "INT8",
            "INT8",
            "TIMESTAMPTZ",
            "INT8",
            "TIMESTAMPTZ",
        ],
    ),
];

fn range() -> TimeRange {
    TimeRange {
        from: FROM.to_owned(),
        to: TO.to_owned(),
    }
}

fn panels() -> Vec<(&'static str, PanelQuery)> {
    let mut panels = Vec::new();
    for (file, dashboard) in [
        ("finance-overview.json", grafana::FINANCE_DASHBOARD),
        ("platform.json", grafana::PLATFORM_DASHBOARD),
        ("inventory-purchasing.json", grafana::INVENTORY_DASHBOARD),
        ("sales-receivables.json", grafana::SALES_DASHBOARD),
        ("planning-production.json", grafana::PRODUCTION_DASHBOARD),
    ] {
        for panel in grafana::panel_queries(dashboard).expect("dashboard") {
            assert_eq!(panel.datasource, "tributary", "{file}: {}", panel.title);
            panels.push((file, panel));
        }
    }
    panels
}

#[test]
fn macros_expand_as_grafana_expands_them() {
    assert_eq!(
        grafana::expand(
            "WHERE $__timeFilter(CAST(d AS timestamp)) AND c = '$company'",
            &range(),
            &[("company", "MAIN")]
        )
        .unwrap(),
        format!("WHERE CAST(d AS timestamp) BETWEEN '{FROM}' AND '{TO}' AND c = 'MAIN'")
    );
    assert_eq!(
        grafana::expand(
            "SELECT $__timeGroup(t, '1h'), $__timeFrom(), $__timeTo()",
            &range(),
            &[]
        )
        .unwrap(),
        format!("SELECT floor(extract(epoch from t)/3600)*3600, '{FROM}', '{TO}'")
    );
    assert!(grafana::expand("SELECT $__unixEpochFilter(t)", &range(), &[]).is_err());
    assert!(grafana::expand("SELECT $__timeGroup(t, '1y')", &range(), &[]).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_panel_runs_over_the_wire_with_the_types_it_expects() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // Only the company exists: its event gives no table a row, and the lake is still current.
    app.settle().await;
    let lag = app
        .sql("SELECT max(lag_events) AS lag FROM platform_pipelines")
        .await;
    assert_eq!(lag[0][0], 0, "a fresh install has no pipeline lag");
    app.setup_ledger().await;
    for i in 1..=24 {
        app.post_sample_entry(i, 4, 100).await;
    }
    // Purchasing: an order half received, some of it consumed, its receipt invoiced.
    crate::materials::purchasing_master_data(&app).await;
    app.ok(
        "/api/v1/purchase-orders",
        serde_json::json!({"number": "4500000001", "vendor": "V-ACME", "order_date": "2026-03-01",
            "lines": [{"material": "BOLT-M8", "plant": "P100", "storage_location": "RAW",
                       "quantity": "20", "unit": "BOX", "unit_price": "4.80",
                       "delivery_date": "2026-03-02"}]}),
    )
    .await;
    app.ok(
        "/api/v1/goods-receipts",
        serde_json::json!({"purchase_order": "4500000001", "line": 10, "quantity": "10",
                           "posting_date": "2026-03-02"}),
    )
    .await;
    app.ok(
        "/api/v1/goods-issues",
        serde_json::json!({"material": "BOLT-M8", "plant": "P100", "storage_location": "RAW",
                           "quantity": "30", "cost_center": "CC-1", "posting_date": "2026-03-05"}),
    )
    .await;
    app.ok(
        "/api/v1/vendor-invoices",
        serde_json::json!({"vendor": "V-ACME", "number": "INV-1", "invoice_date": "2026-03-03",
            "posting_date": "2026-03-03",
            "lines": [{"purchase_order": "4500000001", "line": 10, "quantity": "10",
                       "amount": "48.00"}]}),
    )
    .await;
    // Sales: the textbook sale billed and paid in part, and an order not yet delivered.
    crate::sales::order_to_cash_sample(&app).await;
    // Production: an order received and one open, planned requirements, an MRP run.
    crate::production::production_sample(&app).await;
    app.settle_reactors().await;
    app.settle().await;
    let addr = app.running().pg_addr.expect("SQL endpoint");
    let mut connection = sqlx::PgConnection::connect(&url(addr)).await.unwrap();

    // "Save & test": Grafana's pgx pings with a comment-only statement.
    connection.execute(sqlx::raw_sql("-- ping")).await.unwrap();
    connection.ping().await.unwrap();

    let panels = panels();
    assert_eq!(
        panels.len(),
        EXPECTED.len(),
        "a panel without expected types"
    );
    for (file, panel) in &panels {
        let title = &panel.title;
        let expected = EXPECTED
            .iter()
            .find(|(t, _)| t == title)
            .unwrap_or_else(|| panic!("{file}: no expected types for {title}"))
            .1;
        let sql = grafana::expand(&panel.sql, &range(), &[("company", "MAIN")]).unwrap();
        // The row description the server sends with the statement (Grafana reads it too).
        let rows = sqlx::query(&sql)
            .fetch_all(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("{title}: {e}\n{sql}"));
        assert!(!rows.is_empty(), "{title} returned no rows:\n{sql}");
        let types: Vec<&str> = rows[0]
            .columns()
            .iter()
            .map(|c| c.type_info().name())
            .collect();
        assert_eq!(types, expected, "{file}: {title}");
        if expected[0] == "TIMESTAMP" || expected[0] == "FLOAT8" {
            assert_eq!(rows[0].columns()[0].name(), "time", "{title}");
        }
        match title.as_str() {
            "Trial balance" => {
                let sum = |column: &str| -> rust_decimal::Decimal {
                    rows.iter()
                        .map(|r| r.get::<rust_decimal::Decimal, _>(column))
                        .sum()
                };
                assert!(sum("debit") > rust_decimal::Decimal::ZERO);
                assert_eq!(sum("debit"), sum("credit"), "the trial balance balances");
            }
            "Receivables off the ledger (0 when reconciled)" => {
                assert_eq!(rows[0].get::<i64, _>(0), 0, "the receivables reconcile");
            }
            "Debits minus credits (0 when balanced)" => {
                let difference: rust_decimal::Decimal = rows[0].get(0);
                assert_eq!(difference, rust_decimal::Decimal::ZERO);
            }
            "Pipeline lag (events)" => {
                let tables = tributary_pipelines::Pipelines::of(&tributary::modules::all())
                    .pipelines
                    .len();
                assert_eq!(rows.len(), tables, "one row per pipeline table");
                for row in &rows {
                    assert_eq!(row.get::<i64, _>("lag_events"), 0, "caught up after settle");
                }
            }
            "Planned vs actual output" => {
                let sum = |column: &str| -> rust_decimal::Decimal {
                    rows.iter()
                        .map(|r| r.get::<rust_decimal::Decimal, _>(column))
                        .sum()
                };
                // Orders of 20 and 10 toys finish in the range; 20 were received.
                assert_eq!((sum("planned"), sum("actual")), (30.into(), 20.into()));
            }
            "MRP exceptions by kind" => {
                let kinds: Vec<String> = rows.iter().map(|r| r.get("kind")).collect();
                assert!(kinds.contains(&"past_due_release".to_owned()), "{kinds:?}");
            }
            "Cash and bank balances" => {
                let metric: String = rows[0].get("metric");
                assert!(metric.contains("Bank"), "{metric}");
            }
            _ => {}
        }
    }

    // The query builder: tables of the search path, then a table's columns (Grafana's SQL).
    let tables: Vec<String> = sqlx::raw_sql(GRAFANA_TABLES)
        .fetch_all(&mut connection)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>("table"))
        .collect();
    // datafusion-postgres answers the builder's search_path subquery with nothing, so every
    // table is listed schema-qualified (Grafana then queries `public.<table>`, which works).
    for table in [
        "gl_journal_lines",
        "gl_account_movements",
        "gl_accounts",
        "platform_pipelines",
    ] {
        assert!(
            tables
                .iter()
                .any(|t| t == table || *t == format!("public.{table}")),
            "{table} not listed: {tables:?}"
        );
    }
    let rows = sqlx::raw_sql("SELECT count(*) AS n FROM public.gl_journal_lines")
        .fetch_all(&mut connection)
        .await
        .unwrap();
    assert!(rows[0].get::<i64, _>("n") > 0);
    let version: String = sqlx::query_scalar("SELECT current_setting('server_version_num')")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert!(version.parse::<u32>().unwrap() >= 90600, "{version}");
    // The builder asks for the columns of the name it listed.
    for name in ["public.gl_journal_lines", "public.gl_accounts"] {
        let sql = GRAFANA_COLUMNS.replace("{table}", name);
        let columns: Vec<String> = sqlx::raw_sql(&sql)
            .fetch_all(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{sql}"))
            .iter()
            .map(|row| row.get::<String, _>("column"))
            .collect();
        let wanted: &[&str] = if name.ends_with("gl_accounts") {
            &["account", "name", "account_type"]
        } else {
            &["posting_date", "account", "debit", "credit", "recorded_at"]
        };
        for column in wanted {
            assert!(
                columns.iter().any(|c| c == *column),
                "{name}: {column} not listed: {columns:?}"
            );
        }
    }
    connection.close().await.unwrap();
    app.stop().await;
}

/// What Grafana's PostgreSQL query builder sends to list tables.
const GRAFANA_TABLES: &str = r#"SELECT
    CASE WHEN
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS "table"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema',
                             'pg_catalog',
                             '_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental')
    ORDER BY CASE WHEN
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          ) THEN 0 ELSE 1 END, 1"#;

/// What Grafana's PostgreSQL query builder sends to list a table's columns.
const GRAFANA_COLUMNS: &str = r#"SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('{table}'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('{table}'))[1]
          AND quote_ident(table_name) = (parse_ident('{table}'))[2]
        ELSE quote_ident(table_name) = '{table}'
          AND
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END"#;
