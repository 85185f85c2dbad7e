//! The PostgreSQL the tests run against (`KYRO_TEST_DATABASE_URL`, set up by
//! `scripts/setup-postgres.sh`): `psql` on the test database, and databases of their own for
//! tests that hold a host's state or break it.
//!
//! A missing URL or `psql` is a failing test that says what to run, never a skip.

use std::process::Command;

/// The test database's URL.
///
/// # Panics
///
/// When `KYRO_TEST_DATABASE_URL` is not set, with what to run.
pub fn database_url() -> String {
    std::env::var("KYRO_TEST_DATABASE_URL").expect(
        "KYRO_TEST_DATABASE_URL is not set: run scripts/setup-postgres.sh (scripts/test.sh does) and export the URL it prints",
    )
}

/// Runs `sql` with `psql` against the database at `url`.
///
/// # Panics
///
/// When `psql` is missing or the statement fails.
fn psql_at(url: &str, sql: &str) {
    let output = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql is installed with PostgreSQL (scripts/setup-postgres.sh)");
    assert!(output.status.success(), "psql failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Runs `sql` against the test database.
///
/// # Panics
///
/// As [`database_url`], and when the statement fails.
pub fn psql(sql: &str) {
    psql_at(&database_url(), sql);
}

/// A database of its own on the test server, named after the test and the process, created
/// empty and dropped at the end: a host's state store that a test may break.
pub struct Database(String);

impl Database {
    /// Creates `kyro_e2e_<name>_<pid>`, dropping any left over from an earlier run.
    ///
    /// # Panics
    ///
    /// As [`psql`].
    pub fn create(name: &str) -> Self {
        let database = format!("kyro_e2e_{}_{}", name.replace('-', "_"), std::process::id());
        psql(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
        psql(&format!("CREATE DATABASE {database}"));
        Self(database)
    }

    /// Its URL: the test server's, naming this database.
    ///
    /// # Panics
    ///
    /// As [`database_url`], and when that URL names no database.
    pub fn url(&self) -> String {
        let base = database_url();
        let (server, _) = base.rsplit_once('/').expect("the test database URL names a database");
        format!("{server}/{}", self.0)
    }

    /// Runs `sql` in this database.
    ///
    /// # Panics
    ///
    /// As [`psql`].
    pub fn psql(&self, sql: &str) {
        psql_at(&self.url(), sql);
    }

    /// Takes a table away (renames it to `<table>_away`), so every read or write of it fails as
    /// on a broken database.
    ///
    /// # Panics
    ///
    /// As [`psql`].
    pub fn break_table(&self, table: &str) {
        self.psql(&format!("ALTER TABLE {table} RENAME TO {table}_away"));
    }

    /// Gives back a table [`Database::break_table`] took away.
    ///
    /// # Panics
    ///
    /// As [`psql`].
    pub fn restore_table(&self, table: &str) {
        self.psql(&format!("ALTER TABLE {table}_away RENAME TO {table}"));
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
    }
}
