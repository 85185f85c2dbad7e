//! The kyro-state integration tests: the conformance suite (`kyro_state::suite`, feature
//! `test-suite`) against each backend, plus what only that backend has.
//!
//! PostgreSQL tests read `KYRO_TEST_DATABASE_URL` (what `scripts/setup-postgres.sh` prints) and
//! fail with a message saying so when it is missing or the server is unreachable; they never
//! skip.

mod postgres;
mod sqlite;
