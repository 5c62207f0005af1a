//! `tributary generate`: a deterministic, balanced, seasonal history that the pipelines turn
//! into the lake like any posted entries.

use crate::helpers::config;
use tributary::generate::{GenerateArgs, run};

fn args(dir: &std::path::Path, seed: u64) -> GenerateArgs {
    GenerateArgs {
        data_dir: dir.to_path_buf(),
        database_url: None,
        entries: 3_000,
        accounts: 20,
        years: 2,
        last_year: 2026,
        seed,
        company: "MAIN".into(),
        quiet: true,
    }
}

/// The generated store's lake: per-account sums, line count, entries per month, trial balance.
async fn summary(dir: &std::path::Path) -> (String, i64, Vec<(String, i64)>, (String, String)) {
    let running = tributary::start(config(dir, None)).await.expect("starts");
    running
        .wait_for_pipelines(std::time::Duration::from_secs(60))
        .await
        .expect("pipelines catch up");
    let query = &running.query;
    let sums = query
        .query(
            "SELECT account, sum(debit) AS d, sum(credit) AS c FROM gl_journal_lines \
             GROUP BY account ORDER BY account",
            &tributary_lakehouse::ReadScope::everything(),
        )
        .await
        .expect("sums");
    let sums = datafusion::arrow::util::pretty::pretty_format_batches(&sums.batches)
        .expect("format")
        .to_string();
    let lines = crate::helpers::lake_count(query, "SELECT count(*) FROM gl_journal_lines").await;
    let months = query
        .query(
            "SELECT period, count(DISTINCT entry_id) AS n FROM gl_journal_lines \
             GROUP BY period ORDER BY period",
            &tributary_lakehouse::ReadScope::everything(),
        )
        .await
        .expect("months");
    let mut per_month = Vec::new();
    for batch in &months.batches {
        let formatted =
            datafusion::arrow::util::pretty::pretty_format_batches(std::slice::from_ref(batch))
                .expect("format")
                .to_string();
        for line in formatted.lines().filter(|l| l.starts_with("| 20")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            per_month.push((cells[1].to_owned(), cells[2].parse().expect("a count")));
        }
    }
    let totals = query
        .query(
            "SELECT sum(debit), sum(credit) FROM gl_journal_lines",
            &tributary_lakehouse::ReadScope::everything(),
        )
        .await
        .expect("totals");
    let totals = datafusion::arrow::util::pretty::pretty_format_batches(&totals.batches)
        .expect("format")
        .to_string();
    let cells: Vec<String> = totals
        .lines()
        .nth(3)
        .expect("a row")
        .split('|')
        .map(|c| c.trim().to_owned())
        .collect();
    running.stop().await;
    (sums, lines, per_month, (cells[1].clone(), cells[2].clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_history_is_deterministic_balanced_and_seasonal() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let generated = run(args(a.path(), 7)).await.expect("generates");
    assert_eq!(generated.entries, 3_000);
    assert!(
        generated.lines >= 2 * 3_000 && generated.lines <= 6 * 3_000,
        "{generated:?}"
    );
    // The same seed again into the same store appends nothing.
    assert!(run(args(a.path(), 7)).await.is_err());
    assert_eq!(run(args(b.path(), 7)).await.expect("generates"), generated);
    run(args(c.path(), 8)).await.expect("generates");

    let (sums_a, lines_a, months_a, (debit, credit)) = summary(a.path()).await;
    let (sums_b, _, months_b, _) = summary(b.path()).await;
    let (sums_c, _, _, _) = summary(c.path()).await;
    assert_eq!(
        lines_a as usize, generated.lines,
        "every line reached the lake once"
    );
    assert_eq!(debit, credit, "the history balances");
    assert_eq!(
        (sums_a.clone(), months_a.clone()),
        (sums_b, months_b),
        "same seed"
    );
    assert_ne!(sums_a, sums_c, "another seed, another history");
    // 24 months; December busier than August, and the second year busier than the first.
    assert_eq!(months_a.len(), 24, "{months_a:?}");
    let count = |period: &str| {
        months_a
            .iter()
            .find(|(p, _)| p == period)
            .map_or(0, |(_, n)| *n)
    };
    assert!(count("2026-12") > count("2026-08"), "{months_a:?}");
    let year = |y: &str| {
        months_a
            .iter()
            .filter(|(p, _)| p.starts_with(y))
            .map(|(_, n)| n)
            .sum::<i64>()
    };
    assert!(year("2026") > year("2025"), "{months_a:?}");
    assert_eq!(year("2025") + year("2026"), 3_000);
}
