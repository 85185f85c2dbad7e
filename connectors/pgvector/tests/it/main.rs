//! The pgvector connector against the live PostgreSQL with pgvector that
//! `scripts/setup-postgres.sh` sets up (`KYRO_TEST_DATABASE_URL`): scope isolation, filters and
//! injection, catalog refusals, write-through ACKs and watermarks, secrets, short results, caps,
//! unsupported operations, and the built cdylib.
//!
//! Each test creates its own uniquely named table from `examples/pgvector-live/schema.sql` and
//! drops it afterwards. Without the database every test fails with the setup command; none skips.

#![expect(
    clippy::unwrap_used,
    reason = "a test helper that meets an unexpected error should fail the test at that line"
)]

mod catalog;
mod filters;
mod labels;
mod limits;
mod plugin;
mod scope;
mod secrets;
mod shortfall;
mod support;
mod write_through;
