//! Identity and access: users, passwords (Argon2id), access and refresh tokens, roles per
//! company, and the authenticator behind every route's permission check.
//!
//! `domain` is the pure user aggregate; `passwords` hashes; `tokens` signs and keeps refresh
//! tokens and revocations; `external` trusts an identity provider's JWKS; `service` logs in
//! and authenticates; `credentials` seals password hashes and keeps the SQL endpoint's SCRAM
//! secrets; `api` is the REST surface. Unlike a business context its routes have
//! their own state (the [`Identity`] service), served by the binary beside the modules'.

pub mod aggregates;
pub mod api;
pub mod credentials;
pub mod domain;
pub mod external;
pub mod passwords;
pub mod service;
pub mod tokens;

pub use external::ExternalProvider;
pub use service::{Identity, IdentityOptions, TokenResponse};

use tributary_kernel::module::{EventSet, Module};

/// Identity as a module: its events (users and role assignments) and their fixtures.
pub fn module() -> Module {
    let mut module = Module::new(
        service::CONTEXT,
        "Identity: users, logins and role assignments per company",
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/events"),
    );
    module.events = vec![EventSet::of::<domain::User>()];
    module.permissions = vec![
        &tributary_kernel::auth::platform::USERS_READ,
        &tributary_kernel::auth::platform::USERS_WRITE,
    ];
    module
}
