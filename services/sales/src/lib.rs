//! Sales and distribution (SD): order to cash. Built in steps (issue 15): so far the pricing
//! engine and the customer master, pure and tested. The REST surface, orders with availability
//! and credit checks, deliveries, billing, receivables and the module declaration follow;
//! until then the crate is not in the module list.
//!
//! `pricing` determines a line's price from condition records and explains every step;
//! `customer` is the customer aggregate (`sales.customer`).

pub mod customer;
pub mod pricing;
