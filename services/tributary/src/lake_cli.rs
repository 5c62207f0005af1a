//! `tributary lake status` and `tributary lake vacuum`: the lake's tables for an operator, and
//! a vacuum on demand (the writer roles also vacuum on their own, see `maintenance`).

use std::time::Duration;
use tributary_lakehouse::{Lake, TableStatus};

/// Opens the lake at `location` with every context's tables.
async fn open(location: &str) -> anyhow::Result<Lake> {
    use anyhow::Context;
    crate::modules::open_lake(location, &crate::modules::all())
        .await
        .with_context(|| format!("while opening the lake at {location}"))
}

/// Prints every table's status: a table for people, or one JSON array.
pub async fn status(location: &str, json: bool) -> anyhow::Result<()> {
    let lake = open(location).await?;
    let statuses = lake.statuses().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&statuses)?);
        return Ok(());
    }
    println!("lake {}", lake.root());
    progress!("{}", render(&statuses));
    Ok(())
}

/// The statuses as aligned columns, with a total line.
fn render(statuses: &[TableStatus]) -> String {
    let optional = |value: Option<u64>| value.map_or("-".to_owned(), |v| v.to_string());
    let mut lines = vec![[
        "table".to_owned(),
        "version".to_owned(),
        "committed (UTC)".to_owned(),
        "files".to_owned(),
        "size".to_owned(),
        "rows".to_owned(),
        "replaced files".to_owned(),
        "replaced size".to_owned(),
        "checkpoint".to_owned(),
        "oldest version".to_owned(),
    ]];
    for status in statuses {
        lines.push([
            status.table.clone(),
            optional(status.version),
            status.committed_at.map_or("-".to_owned(), |t| {
                t.format("%Y-%m-%d %H:%M:%S").to_string()
            }),
            status.files.to_string(),
            bytes(status.bytes),
            status.rows.to_string(),
            status.replaced_files.to_string(),
            bytes(status.replaced_bytes),
            optional(status.checkpoint),
            optional(status.oldest_version),
        ]);
    }
    let total = |f: fn(&TableStatus) -> u64| statuses.iter().map(f).sum::<u64>();
    lines.push([
        format!("{} tables", statuses.len()),
        String::new(),
        String::new(),
        total(|s| s.files as u64).to_string(),
        bytes(total(|s| s.bytes)),
        total(|s| s.rows).to_string(),
        total(|s| s.replaced_files as u64).to_string(),
        bytes(total(|s| s.replaced_bytes)),
        String::new(),
        String::new(),
    ]);
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|column| lines.iter().map(|l| l[column].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(column, (cell, width))| match column {
                0 | 2 => format!("{cell:<width$}"),
                _ => format!("{cell:>width$}"),
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Bytes in B, KiB, MiB or GiB (one decimal, rounded).
fn bytes(count: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let (mut unit, mut scale) = (0, 1u128);
    while unit < UNITS.len() - 1 && u128::from(count) >= scale * 1024 {
        scale *= 1024;
        unit += 1;
    }
    if unit == 0 {
        return format!("{count} B");
    }
    let tenths = (u128::from(count) * 10 + scale / 2) / scale;
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
}

/// Vacuums `tables` (default every table) with `retention`; prints what each deleted.
pub async fn vacuum(
    location: &str,
    retention: Duration,
    tables: Option<Vec<String>>,
) -> anyhow::Result<()> {
    let lake = open(location).await?;
    let known: Vec<&'static str> = lake.definitions().map(|d| d.name).collect();
    let names: Vec<String> = match tables {
        Some(names) => {
            if let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) {
                anyhow::bail!(
                    "--tables: {unknown:?} is not a lake table; `tributary lake status` lists them"
                );
            }
            names
        }
        None => {
            let mut all: Vec<String> = known.iter().map(|n| (*n).to_owned()).collect();
            all.sort();
            all
        }
    };
    let mut deleted = 0;
    for name in &names {
        let done = lake.vacuum(name, retention).await?;
        println!("{name}: {} files deleted", done.files_deleted);
        deleted += done.files_deleted;
    }
    println!(
        "vacuumed {} tables with a retention of {} hours: {deleted} files deleted",
        names.len(),
        retention.as_secs() / 3600
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_are_shown_in_binary_units() {
        assert_eq!(super::bytes(0), "0 B");
        assert_eq!(super::bytes(1023), "1023 B");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
