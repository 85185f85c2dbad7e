//! Support for KyroDB's end-to-end tests and benchmarks: where the built plugins and the `kyro`
//! binary are, and the configurations the fixtures open with.
//!
//! Plugins are cdylibs, which cargo does not build for another package's tests; the README's test
//! command builds the whole workspace first. A missing file is a failing test that says so.

use std::path::PathBuf;

/// The directory holding this profile's build outputs (`target/debug` for tests).
///
/// # Panics
///
/// When the running executable's path cannot be read, which only happens on a broken system.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe.parent().expect("the test executable lives in target/<profile>/deps");
    deps.parent().expect("deps has a parent").to_path_buf()
}

/// The built cdylib of the package `package` (for example `kyro-fixture-reference`).
///
/// # Panics
///
/// When the file has not been built, with the command that builds it.
pub fn plugin_path(package: &str) -> PathBuf {
    let file_name = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        package.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    );
    let path = profile_dir().join(file_name);
    assert!(
        path.exists(),
        "plugin {} is not built; build the workspace first: `cargo build --workspace` (the README's test command does this)",
        path.display()
    );
    path
}

/// The built `kyro` binary.
///
/// # Panics
///
/// When it has not been built, with the command that builds it.
pub fn kyro_binary() -> PathBuf {
    let path = profile_dir().join(format!("kyro{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} is not built; run `cargo build --workspace` first", path.display());
    path
}

/// The cdylib package of a fixture.
pub fn fixture_package(defect: kyro_fixture_support::Defect) -> String {
    format!("kyro-fixture-{}", defect.name().replace('_', "-"))
}

/// A configuration for the in-memory reference store and its fixtures.
pub fn memory_config(dimension: u32, dsn: Option<&str>) -> kyro_connector_sdk::ConnectorConfig {
    let mut config = serde_json::json!({
        "dimension": dimension,
        "distance": "cosine",
        "filterable_keys": ["lang", "year", "product"],
        "max_top_k": 50,
        "max_fetch_ids": 50,
    });
    if let Some(dsn) = dsn {
        config["dsn"] = serde_json::json!({ "value": dsn });
    }
    kyro_connector_sdk::ConnectorConfig::from_json(config.to_string())
}

pub mod contract;
pub mod http;
pub mod postgres;
pub mod replay;
pub mod server;

/// A fresh, empty directory under the system temp dir, unique per test and process.
///
/// Tests keep their directories (a failed test's state is there to look at); the first call
/// in a process removes those of test processes that have exited.
///
/// # Panics
///
/// When the directory cannot be created.
pub fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(remove_exited_processes_dirs);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kyro-e2e-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the temp dir is writable");
    dir
}

/// Removes `kyro-e2e-<name>-<pid>-<n>` directories whose process no longer runs.
fn remove_exited_processes_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|name| name.starts_with("kyro-e2e-"))
            .and_then(|name| name.rsplit('-').nth(1))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `value` with every object's keys in sorted order, so snapshots do not depend on whether
/// `serde_json`'s `preserve_order` feature happens to be unified into the build.
pub fn sorted_json(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(object) => {
            let mut entries: Vec<(String, serde_json::Value)> = object.into_iter().collect();
            entries.sort_by(|left, right| left.0.cmp(&right.0));
            serde_json::Value::Object(
                entries.into_iter().map(|(key, value)| (key, sorted_json(value))).collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted_json).collect())
        }
        other => other,
    }
}
