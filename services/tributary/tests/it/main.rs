//! Integration tests of the whole product over real connections: the app on port 0 driven over

// Tests state their expectations with unwrap/expect: a panic is the failure report.
#![allow(clippy::unwrap_used)]
//! HTTP like a client, SQLite files and a real PostgreSQL, Delta tables in temp directories.

mod bad_input;
mod ballista;
mod compaction;
mod context_databases;
mod faults;
mod generate;
mod grafana;
mod helpers;
mod identity;
mod kafka;
mod kill_production;
mod ledger;
mod legacy_store;
mod limits;
mod materials;
mod modules;
mod openapi;
mod operations;
mod pipelines;
mod procure_to_pay;
mod production;
mod reactors;
mod rebuild;
mod reports;
mod restart;
mod s3;
mod sales;
mod scale_out;
mod scan_filters;
mod sigkill;
mod sql_formats;
mod store;
mod wire;
