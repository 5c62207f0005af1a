//! Grafana's PostgreSQL macros, expanded the way its datasource expands them, and the panels of
//! the dashboards in `dashboards/`: the benchmark runs the same SQL Grafana would send, and the
//! tests replay it.

/// A dashboard time range, as RFC 3339 instants (`2026-01-01T00:00:00Z`).
#[derive(Debug, Clone)]
pub struct TimeRange {
    pub from: String,
    pub to: String,
}

/// The Finance overview dashboard, as provisioned.
pub const FINANCE_DASHBOARD: &str = include_str!("../../../dashboards/finance-overview.json");
/// The Platform dashboard, as provisioned.
pub const PLATFORM_DASHBOARD: &str = include_str!("../../../dashboards/platform.json");
/// The inventory and purchasing dashboard (materials).
pub const INVENTORY_DASHBOARD: &str = include_str!("../../../dashboards/inventory-purchasing.json");
/// The sales and receivables dashboard (sales).
pub const SALES_DASHBOARD: &str = include_str!("../../../dashboards/sales-receivables.json");
/// The planning and production dashboard (production).
pub const PRODUCTION_DASHBOARD: &str = include_str!("../../../dashboards/planning-production.json");

/// A panel's query: the panel title and its raw SQL (macros not expanded).
#[derive(Debug, Clone)]
pub struct PanelQuery {
    pub title: String,
    pub datasource: String,
    pub sql: String,
}

/// Every target of every panel of a dashboard JSON.
pub fn panel_queries(dashboard: &str) -> Result<Vec<PanelQuery>, String> {
    let dashboard: serde_json::Value =
        serde_json::from_str(dashboard).map_err(|e| format!("dashboard JSON: {e}"))?;
    let mut queries = Vec::new();
    for panel in dashboard["panels"]
        .as_array()
        .ok_or("dashboard without panels")?
    {
        let title = panel["title"].as_str().ok_or("panel without title")?;
        for target in panel["targets"].as_array().ok_or("panel without targets")? {
            queries.push(PanelQuery {
                title: title.to_owned(),
                datasource: panel["datasource"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                sql: target["rawSql"]
                    .as_str()
                    .ok_or_else(|| format!("{title}: target without rawSql"))?
                    .to_owned(),
            });
        }
    }
    Ok(queries)
}

/// Grafana's interval syntax (`30s`, `5m`, `1h`, `1d`, `1w`) in seconds.
fn interval_seconds(interval: &str) -> Result<u64, String> {
    let split = interval.len().saturating_sub(1);
    let (number, unit) = interval.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("interval {interval:?}: not a number of units"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        other => return Err(format!("interval {interval:?}: unknown unit {other:?}")),
    };
    Ok(number * unit)
}

/// The text between the parenthesis at `open` and the one closing it, and the index after it.
fn arguments(sql: &str, open: usize) -> Result<(&str, usize), String> {
    let mut depth = 0usize;
    for (i, c) in sql[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok((&sql[open + 1..open + i], open + i + 1));
                }
            }
            _ => {}
        }
    }
    Err(format!("unbalanced parentheses after a macro in: {sql}"))
}

/// Expands dashboard variables (`$name`) and Grafana's PostgreSQL macros for `range`:
/// `$__timeFilter(c)` → `c BETWEEN '<from>' AND '<to>'`, `$__timeGroup(c,'1h')` →
/// `floor(extract(epoch from c)/3600)*3600`, `$__timeFrom()` / `$__timeTo()` → `'<from>'` /
/// `'<to>'`. Any other macro is an error.
pub fn expand(sql: &str, range: &TimeRange, variables: &[(&str, &str)]) -> Result<String, String> {
    let mut out = sql.to_owned();
    for (name, value) in variables {
        out = out.replace(&format!("${name}"), value);
    }
    while let Some(at) = out.find("$__") {
        let open = out[at..]
            .find('(')
            .map(|i| at + i)
            .ok_or_else(|| format!("macro without arguments in: {out}"))?;
        let name = out[at + 3..open].to_owned();
        let (args, end) = arguments(&out, open)?;
        let replacement = match name.as_str() {
            "timeFilter" => format!(
                "{} BETWEEN '{}' AND '{}'",
                args.trim(),
                range.from,
                range.to
            ),
            "timeFrom" => format!("'{}'", range.from),
            "timeTo" => format!("'{}'", range.to),
            "timeGroup" => {
                let (column, interval) = args.rsplit_once(',').ok_or_else(|| {
                    format!("$__timeGroup({args}) needs a column and an interval")
                })?;
                let seconds = interval_seconds(interval.trim().trim_matches('\''))?;
                format!(
                    "floor(extract(epoch from {})/{seconds})*{seconds}",
                    column.trim()
                )
            }
            other => return Err(format!("macro $__{other} is not supported")),
        };
        out.replace_range(at..end, &replacement);
    }
    Ok(out)
}
