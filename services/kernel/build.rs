//! `sqlx::migrate!` embeds sql/migrations at compile time; without this a migration added
//! later is missing from an incremental build.
fn main() {
    println!("cargo:rerun-if-changed=../../sql/migrations");
}
