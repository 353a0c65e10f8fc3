//! One integration-test binary (as ripgrep does): every module below drives
//! the real `sumatra-server` binary, over its command line or a real socket.
//!
//! The whole suite runs twice, once on each store engine (SPEC 8): the
//! module `sqlite` and the module `postgres` include the same files, and
//! `util::TestDb` makes each test's database on the engine of the module
//! the test is in (an SQLite file, or a database of a throw-away PostgreSQL
//! cluster, `pg.rs`). Tests of what only SQLite has (its file on disk,
//! `backup`, a schema-version-1 file) are wrapped in `sqlite_only!`;
//! `multi_process.rs` holds what only PostgreSQL has.

// Including each file twice, once per engine, is the point (see above).
#![allow(clippy::duplicate_mod)]

mod pg;
mod util;

mod postgres;
mod sqlite;
