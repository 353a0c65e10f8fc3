//! The whole suite on SQLite (see tests.rs).

/// Items that exist only in the SQLite run.
macro_rules! sqlite_only {
    ($($item:item)*) => { $($item)* };
}

#[path = "api.rs"]
mod api;
#[path = "cli.rs"]
mod cli;
#[path = "client_suite.rs"]
mod client_suite;
#[path = "everyday.rs"]
mod everyday;
#[path = "hardening.rs"]
mod hardening;
#[path = "html.rs"]
mod html;
#[path = "loaddata.rs"]
mod loaddata;
#[path = "operations.rs"]
mod operations;
#[path = "provenance.rs"]
mod provenance;
#[path = "reliability.rs"]
mod reliability;
#[path = "safety.rs"]
mod safety;
#[path = "search.rs"]
mod search;
#[path = "security.rs"]
mod security;
#[path = "tokens.rs"]
mod tokens;
#[path = "transport.rs"]
mod transport;
