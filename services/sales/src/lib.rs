//! Sales and distribution (SD): order to cash. Built in steps (issue 15); this first step is
//! the pricing engine, pure and tested, that sales orders will price their lines with.
//! Customers, orders with availability and credit checks, deliveries, billing, receivables and
//! the module declaration follow; until then the crate is not in the module list.
//!
//! `pricing` determines a line's price from condition records and explains every step.

pub mod pricing;
