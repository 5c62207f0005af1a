//! pgbench's built-in TPC-B-like script on the benchmark's own PostgreSQL database: the
//! baseline for posting throughput (same server, same database, same client count).
// Floats here are transaction rates for display, never money.
#![allow(clippy::float_arithmetic)]

use anyhow::{Context, bail};

/// Initializes pgbench's tables at scale `clients` (one branch per client, as pgbench
/// recommends, so clients do not all queue on one branch row) and runs the TPC-B-like script
/// for `seconds`; returns its transactions per second.
pub async fn tps(database_url: &str, clients: usize, seconds: u64) -> anyhow::Result<f64> {
    let scale = clients.to_string();
    run(&["-i", "-q", "-s", &scale, database_url]).await?;
    let jobs = clients.min(2).to_string();
    let output = run(&[
        "-n",
        "-c",
        &clients.to_string(),
        "-j",
        &jobs,
        "-T",
        &seconds.to_string(),
        database_url,
    ])
    .await?;
    parse_tps(&output).with_context(|| format!("no tps line in pgbench's output:\n{output}"))
}

async fn run(args: &[&str]) -> anyhow::Result<String> {
    let output = tokio::process::Command::new("pgbench")
        .args(args)
        .output()
        .await
        .context(
            "while running pgbench (Debian package postgresql-contrib or postgresql-client)",
        )?;
    if !output.status.success() {
        bail!(
            "pgbench {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `tps = 1234.5 (without initial connection time)` → 1234.5.
fn parse_tps(output: &str) -> Option<f64> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_tps_line_of_pgbench_15() {
        let output = "transaction type: <builtin: TPC-B (sort of)>\nnumber of clients: 8\nlatency average = 5.1 ms\ninitial connection time = 12.3 ms\ntps = 1563.204411 (without initial connection time)\n";
        assert_eq!(super::parse_tps(output), Some(1563.204411));
        assert_eq!(super::parse_tps("no such line"), None);
    }
}
