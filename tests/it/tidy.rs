//! The tidy test: the project's structural rules, checked on every run without any service.
//!
//! It enforces what `STYLE.md` and `ARCHITECTURE.md` promise: every Rust file opens with a `//!`
//! header, every member shares the workspace lints, internal dependencies go through the
//! workspace table, only the allowed dependency edges exist, and `kyro-core` stays free of IO
//! crates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod layers;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, files);
            }
        } else if name.ends_with(".rs") {
            files.push(path);
        }
    }
}

/// Every member's manifest, by package name.
fn members() -> BTreeMap<String, (PathBuf, toml::Table)> {
    let root = workspace_root();
    let workspace: toml::Table =
        std::fs::read_to_string(root.join("Cargo.toml")).unwrap().parse().unwrap();
    let mut members = BTreeMap::new();
    for pattern in workspace["workspace"]["members"].as_array().unwrap() {
        let pattern = pattern.as_str().unwrap();
        let dirs: Vec<PathBuf> = match pattern.strip_suffix("/*") {
            Some(parent) => std::fs::read_dir(root.join(parent))
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.join("Cargo.toml").exists())
                .collect(),
            None => vec![root.join(pattern)],
        };
        for dir in dirs {
            let manifest: toml::Table =
                std::fs::read_to_string(dir.join("Cargo.toml")).unwrap().parse().unwrap();
            let name = manifest["package"]["name"].as_str().unwrap().to_owned();
            members.insert(name, (dir, manifest));
        }
    }
    members
}

fn dependency_names(manifest: &toml::Table, table: &str) -> Vec<(String, toml::Value)> {
    manifest.get(table).and_then(toml::Value::as_table).map_or_else(Vec::new, |deps| {
        deps.iter().map(|(name, spec)| (name.clone(), spec.clone())).collect()
    })
}

#[test]
fn every_rust_file_opens_with_a_module_header() {
    let mut files = Vec::new();
    rust_files(&workspace_root(), &mut files);
    assert!(files.len() > 20, "the walk found too few files: {}", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|path| !std::fs::read_to_string(path).unwrap().trim_start().starts_with("//!"))
        .map(|path| path.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a `//!` header: {missing:#?}");
}

#[test]
fn every_member_uses_workspace_lints_and_workspace_dependencies() {
    let members = members();
    assert!(members.contains_key("kyro-core") && members.contains_key("kyro-host"));
    for (name, (_, manifest)) in &members {
        let lints = manifest
            .get("lints")
            .and_then(|lints| lints.get("workspace"))
            .and_then(toml::Value::as_bool);
        assert_eq!(lints, Some(true), "{name} must say `[lints] workspace = true`");
        for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
            for (dependency, spec) in dependency_names(manifest, table) {
                let from_workspace =
                    spec.get("workspace").and_then(toml::Value::as_bool) == Some(true);
                assert!(
                    from_workspace,
                    "{name}: {table}.{dependency} must come from [workspace.dependencies]"
                );
            }
        }
    }
}

#[test]
fn only_the_allowed_dependency_edges_exist() {
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("kyro-core", &[][..]),
        ("kyro-connector-sdk", &["kyro-core"][..]),
        ("kyro-certification", &["kyro-connector-sdk", "kyro-core"][..]),
        ("kyro-state", &["kyro-core"][..]),
        ("kyro-host", &["kyro-core", "kyro-connector-sdk", "kyro-certification", "kyro-state"][..]),
        ("kyro-connector-pgvector", &["kyro-connector-sdk"][..]),
        ("kyro-connector-qdrant", &["kyro-connector-sdk"][..]),
    ]);
    let members = members();
    for (name, (_, manifest)) in &members {
        let mut internal: Vec<String> = dependency_names(manifest, "dependencies")
            .into_iter()
            .map(|(dependency, _)| dependency)
            .filter(|dependency| members.contains_key(dependency))
            .collect();
        // Dev-dependencies of library crates must not link a connector either.
        internal.extend(
            dependency_names(manifest, "dev-dependencies")
                .into_iter()
                .map(|(dependency, _)| dependency)
                .filter(|dependency| {
                    dependency.starts_with("kyro-connector-") && dependency != "kyro-connector-sdk"
                }),
        );
        match allowed.get(name.as_str()) {
            Some(edges) => {
                for dependency in &internal {
                    assert!(
                        edges.contains(&dependency.as_str()),
                        "{name} must not depend on {dependency}"
                    );
                }
            }
            // Test code (kyro-e2e, fixtures) may reach further, but never links a real connector
            // or the host: connectors are loaded as files.
            None => {
                for dependency in &internal {
                    assert!(
                        !dependency.starts_with("kyro-connector-")
                            || dependency == "kyro-connector-sdk",
                        "{name} must load {dependency} as a file, not link it"
                    );
                    assert_ne!(
                        dependency, "kyro-host",
                        "{name} must run kyro as a process, not link it"
                    );
                }
            }
        }
    }
}

#[test]
fn kyro_core_does_no_io() {
    let members = members();
    let (dir, manifest) = &members["kyro-core"];
    for (dependency, _) in dependency_names(manifest, "dependencies") {
        assert!(
            !["tokio", "sqlx", "abi_stable", "libloading", "reqwest", "hyper", "axum"]
                .contains(&dependency.as_str()),
            "kyro-core must not depend on {dependency}"
        );
    }
    let mut files = Vec::new();
    rust_files(&dir.join("src"), &mut files);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for forbidden in
            ["std::fs", "std::net", "std::env", "SystemTime::now", "Instant::now", "std::process"]
        {
            assert!(
                !text.contains(forbidden),
                "{} uses {forbidden}; kyro-core does no IO",
                path.display()
            );
        }
    }
}

#[test]
fn example_configurations_parse_with_the_hosts_rules() {
    let mut n_configs = 0;
    for entry in std::fs::read_dir(workspace_root().join("examples")).unwrap() {
        let path = entry.unwrap().path().join("kyro.toml");
        if !path.exists() {
            continue;
        }
        n_configs += 1;
        let config =
            kyro_host::config::HostConfig::read(&path).unwrap_or_else(|err| panic!("{err}"));
        assert!(!config.stores.is_empty(), "{} names no store", path.display());
        for store in &config.stores {
            assert!(
                store.ownership_mode.parse::<kyro_core::OwnershipMode>().is_ok(),
                "{}",
                path.display()
            );
        }
    }
    assert!(n_configs >= 2, "the examples lost their kyro.toml files");
}

fn host_sources() -> Vec<layers::Source> {
    let sources = layers::sources(&workspace_root().join("kyro-host/src"));
    assert!(sources.len() > 30, "the walk found too few host files: {}", sources.len());
    sources
}

#[test]
fn host_layer_edges_point_down() {
    let violations = layers::layer_violations(&host_sources());
    assert!(violations.is_empty(), "layer edges that point the wrong way: {violations:#?}");
}

#[test]
fn host_modules_import_no_cycle() {
    let cycles = layers::cycles(&host_sources());
    assert!(cycles.is_empty(), "import cycles inside the host: {cycles:#?}");
}

#[test]
fn host_files_stay_below_the_size_limit() {
    let oversized = layers::oversized_files(&host_sources());
    assert!(
        oversized.is_empty(),
        "host files over {} lines: {oversized:#?}",
        layers::MAX_FILE_LINES
    );
}

#[test]
fn host_functions_are_short_or_say_why() {
    let long = layers::long_functions(&host_sources());
    assert!(
        long.is_empty(),
        "host functions over {} lines without a `long-function:` reason: {long:#?}",
        layers::MAX_FUNCTION_LINES
    );
}

/// Each structural rule fires on a tree that breaks it, and stays quiet on one that does not.
#[test]
fn every_structural_rule_fires_when_broken() {
    let file = |path: &str, text: &str| (PathBuf::from(path), text.to_owned());
    let good = vec![
        file("lib.rs", "//! root\nmod wire;\nmod runtime;\n"),
        file("wire/mod.rs", "//! wire\npub(crate) struct Packet;\n"),
        file("runtime/mod.rs", "//! runtime\nmod retrieve;\nuse crate::wire::Packet;\n"),
        file(
            "runtime/retrieve.rs",
            "//! retrieve\nuse super::Runtime;\nuse crate::wire::{Packet, routes::RETRIEVE};\n",
        ),
    ];
    assert_eq!(layers::layer_violations(&good), Vec::<String>::new());
    assert_eq!(layers::cycles(&good), Vec::<String>::new());

    let mut upward = good.clone();
    upward.push(file("wire/packet.rs", "//! packet\nuse crate::runtime::Runtime;\n"));
    let violations = layers::layer_violations(&upward);
    assert!(
        violations
            .iter()
            .any(|violation| violation.contains("layer wire may not import crate::runtime")),
        "{violations:?}"
    );
    let inline = vec![file("wire/packet.rs", "//! packet\nfn f() { crate::http::router(); }\n")];
    assert_eq!(layers::layer_violations(&inline).len(), 1, "an inline path counts too");
    let grouped =
        vec![file("stores/mod.rs", "//! s\nuse crate::{config::X,\n    runtime::{a, b}};\n")];
    assert_eq!(layers::layer_violations(&grouped).len(), 1, "a grouped use counts too");
    let in_comment = vec![file("wire/mod.rs", "//! see crate::runtime::Runtime\n// crate::http\n")];
    assert!(layers::layer_violations(&in_comment).is_empty(), "comments do not count");

    let cyclic = vec![
        file("runtime/a.rs", "//! a\nuse crate::runtime::b::B;\npub(crate) struct A;\n"),
        file("runtime/b.rs", "//! b\nuse super::c::C;\npub(crate) struct B;\n"),
        file("runtime/c.rs", "//! c\nuse crate::runtime::a::A;\npub(crate) struct C;\n"),
    ];
    let cycles = layers::cycles(&cyclic);
    assert!(
        cycles.iter().any(|cycle| cycle == "runtime::a -> runtime::b -> runtime::c -> runtime::a"),
        "{cycles:?}"
    );

    let big = vec![file("wire/big.rs", &"// line\n".repeat(layers::MAX_FILE_LINES + 1))];
    assert_eq!(layers::oversized_files(&big).len(), 1);
    assert!(layers::oversized_files(&good).is_empty());

    let body = "    let x = 1;\n".repeat(layers::MAX_FUNCTION_LINES);
    let long = vec![file("runtime/long.rs", &format!("//! l\nfn long() {{\n{body}}}\n"))];
    assert_eq!(layers::long_functions(&long).len(), 1);
    let said = vec![file(
        "runtime/long.rs",
        &format!(
            "//! l\n// long-function: one table, read top to bottom.\nfn long() {{\n{body}}}\n"
        ),
    )];
    assert!(layers::long_functions(&said).is_empty());
    let short = vec![file("runtime/short.rs", "//! s\nfn short() {\n    let x = 1;\n}\n")];
    assert!(layers::long_functions(&short).is_empty());
}
