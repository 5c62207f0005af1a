//! Cron schedules (five fields, UTC) and the slots they give.

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Parses a five-field cron expression (`minute hour day-of-month month day-of-week`), or says
/// what is wrong with it.
pub fn parse(expression: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expression)
        .map_err(|error| {
            format!(
                "{expression:?} is not a cron schedule ({error}); write five fields: minute hour day-of-month month day-of-week, such as \"0 6 1 * *\" (06:00 UTC on the 1st)"
            )
        })
}

/// The latest slot at or before `now`, if the schedule has one within its search limit.
pub fn latest_slot(cron: &Cron, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_previous_occurrence(&now, true).ok()
}

/// The first slot after `after`.
pub fn next_slot(cron: &Cron, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&after, false).ok()
}
