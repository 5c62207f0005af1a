//! Finance (FI): companies, chart of accounts, fiscal periods and journal entries, event-sourced.
//!
//! `domain` is pure decide/apply logic; `commands` loads aggregates from the event store and
//! plans appends; `api` is the REST surface under `/api/v1`.

pub mod api;
pub mod commands;
pub mod domain;

#[cfg(test)]
mod domain_tests;
