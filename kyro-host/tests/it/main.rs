//! The kyro-host integration tests: one binary, one module per area.
//!
//! Tests that need PostgreSQL read `KYRO_TEST_DATABASE_URL` (what `scripts/setup-postgres.sh`
//! prints) and fail with a message saying so when it is missing or the server is unreachable;
//! they never skip.

mod state;
