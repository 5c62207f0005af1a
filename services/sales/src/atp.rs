//! Available to promise: the cumulative ATP of one material in one plant, by date.
//!
//! ```text
//!  supply(t)   on hand + scheduled receipts due by t      (materials, through its interface)
//!  demand(t)   confirmed, not yet issued quantities by t  (sales' own confirmations)
//!  cum(t)      supply(t) − demand(t)
//!  atp(d)      min over t ≥ d of cum(t): what can be promised on d without taking anything
//!              already promised for a later date
//! ```
//! A line is confirmed on its requested date when `atp` covers it; otherwise what `atp` covers
//! is confirmed on the requested date and the rest on the first later date whose `atp` covers
//! it; when none does, what the best later date covers is confirmed then and the remainder
//! left unconfirmed. Receipts and demand already due count as of today.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A quantity promised for a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleLine {
    pub date: NaiveDate,
    pub quantity: Decimal,
}

/// `schedule` split after its first `quantity` (by date): what that takes, what is left.
pub fn split_schedule(
    schedule: &[ScheduleLine],
    mut quantity: Decimal,
) -> (Vec<ScheduleLine>, Vec<ScheduleLine>) {
    let (mut taken, mut left) = (Vec::new(), Vec::new());
    for line in schedule {
        let part = line.quantity.min(quantity.max(Decimal::ZERO));
        quantity -= part;
        if part > Decimal::ZERO {
            taken.push(ScheduleLine {
                date: line.date,
                quantity: part,
            });
        }
        if line.quantity > part {
            left.push(ScheduleLine {
                date: line.date,
                quantity: line.quantity - part,
            });
        }
    }
    (taken, left)
}

/// What the check answers for one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// At most two: what is available on the requested date, the rest when it is.
    pub schedule: Vec<ScheduleLine>,
    /// What no date within the known supply covers.
    pub unconfirmed: Decimal,
}

impl Confirmation {
    pub fn confirmed(&self) -> Decimal {
        self.schedule.iter().map(|s| s.quantity).sum()
    }
}

/// The quantities of a material in a plant that change availability, by date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    pub on_hand: Decimal,
    /// Scheduled receipts (open purchase order quantities) by due date.
    pub receipts: BTreeMap<NaiveDate, Decimal>,
    /// Confirmed, not yet issued demand by date.
    pub demand: BTreeMap<NaiveDate, Decimal>,
}

impl Timeline {
    /// `(date, cum)` at every date that changes it from `today` on (with `today` first).
    fn cumulative(&self, today: NaiveDate, also: NaiveDate) -> Vec<(NaiveDate, Decimal)> {
        let mut changes: BTreeMap<NaiveDate, Decimal> = BTreeMap::new();
        changes.insert(today, Decimal::ZERO);
        changes.insert(also.max(today), Decimal::ZERO);
        for (date, quantity) in &self.receipts {
            *changes.entry((*date).max(today)).or_default() += quantity;
        }
        for (date, quantity) in &self.demand {
            *changes.entry((*date).max(today)).or_default() -= quantity;
        }
        let mut cum = self.on_hand;
        changes
            .into_iter()
            .map(|(date, change)| {
                cum += change;
                (date, cum)
            })
            .collect()
    }

    /// What can be promised on each date of the timeline: the least cum from it on.
    fn available(&self, today: NaiveDate, requested: NaiveDate) -> Vec<(NaiveDate, Decimal)> {
        let mut points = self.cumulative(today, requested);
        let mut least = Decimal::MAX;
        for point in points.iter_mut().rev() {
            least = least.min(point.1);
            point.1 = least;
        }
        points
    }

    /// Confirms `quantity` for `requested` (a date before `today` is asked for today).
    pub fn check(&self, today: NaiveDate, requested: NaiveDate, quantity: Decimal) -> Confirmation {
        let requested = requested.max(today);
        let available = self.available(today, requested);
        let at = |date: NaiveDate| {
            available
                .iter()
                .rev()
                .find(|(d, _)| *d <= date)
                .map_or(Decimal::ZERO, |(_, q)| *q)
                .max(Decimal::ZERO)
        };
        let first = at(requested).min(quantity);
        let mut schedule = Vec::new();
        if first > Decimal::ZERO {
            schedule.push(ScheduleLine {
                date: requested,
                quantity: first,
            });
        }
        let rest = quantity - first;
        if rest.is_zero() {
            return Confirmation {
                schedule,
                unconfirmed: Decimal::ZERO,
            };
        }
        // What is promised on the requested date is no longer available later. The rest goes
        // to the first date that covers it, else what the best later date covers.
        let later = available
            .iter()
            .filter(|(date, _)| *date > requested)
            .map(|(date, q)| (*date, (*q - first).max(Decimal::ZERO)));
        let covering = later.clone().find(|(_, q)| *q >= rest);
        let best = later.fold(
            None,
            |best: Option<(NaiveDate, Decimal)>, point| match best {
                Some(b) if b.1 >= point.1 => Some(b),
                _ => Some(point),
            },
        );
        let (date, quantity) = match covering {
            Some((date, _)) => (date, rest),
            None => match best {
                Some((date, q)) if q > Decimal::ZERO => (date, q),
                _ => {
                    return Confirmation {
                        schedule,
                        unconfirmed: rest,
                    };
                }
            },
        };
        schedule.push(ScheduleLine { date, quantity });
        Confirmation {
            schedule,
            unconfirmed: rest - quantity,
        }
    }

    /// Adds a confirmation to the demand (what the next check must not promise again).
    pub fn confirm(&mut self, confirmation: &Confirmation) {
        for line in &confirmation.schedule {
            *self.demand.entry(line.date).or_default() += line.quantity;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, n).unwrap()
    }

    fn schedule(c: &Confirmation) -> Vec<(u32, Decimal)> {
        use chrono::Datelike;
        c.schedule
            .iter()
            .map(|s| (s.date.day(), s.quantity))
            .collect()
    }

    #[test]
    fn a_line_covered_by_stock_is_confirmed_on_its_date_and_taken_from_what_follows() {
        let mut timeline = Timeline {
            on_hand: d("100"),
            ..Timeline::default()
        };
        let first = timeline.check(day(2), day(10), d("60"));
        assert_eq!(schedule(&first), [(10, d("60"))]);
        timeline.confirm(&first);
        // 40 are left; a receipt of 50 on the 20th covers the rest of a line of 70.
        timeline.receipts.insert(day(20), d("50"));
        let second = timeline.check(day(2), day(5), d("70"));
        assert_eq!(schedule(&second), [(5, d("40")), (20, d("30"))]);
        assert!(second.unconfirmed.is_zero());
        timeline.confirm(&second);
        // Nothing is left until the 20th, and 20 after it: 25 leaves 5 unconfirmed.
        let third = timeline.check(day(2), day(3), d("25"));
        assert_eq!(schedule(&third), [(20, d("20"))]);
        assert_eq!(third.unconfirmed, d("5"));
    }

    #[test]
    fn demand_for_a_later_date_is_protected_from_an_earlier_request() {
        // 100 on hand, 80 promised for the 25th: an order for the 5th can have 20, not 100,
        // although 100 are in the warehouse on the 5th.
        let timeline = Timeline {
            on_hand: d("100"),
            demand: BTreeMap::from([(day(25), d("80"))]),
            receipts: BTreeMap::from([(day(28), d("200"))]),
        };
        let confirmation = timeline.check(day(2), day(5), d("50"));
        assert_eq!(schedule(&confirmation), [(5, d("20")), (28, d("30"))]);
    }

    #[test]
    fn past_dates_count_as_today() {
        let timeline = Timeline {
            on_hand: d("0"),
            receipts: BTreeMap::from([(day(1), d("10"))]),
            demand: BTreeMap::new(),
        };
        // The overdue receipt counts today; a request for yesterday is asked for today.
        let confirmation = timeline.check(day(4), day(3), d("10"));
        assert_eq!(schedule(&confirmation), [(4, d("10"))]);
    }
}
