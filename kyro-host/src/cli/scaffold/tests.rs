//! Unit tests of `kyro plugin new`: names, kinds, and what each kind generates (the e2e test
//! `tests/it/scaffold.rs` builds and certifies a generated crate).

use std::path::PathBuf;

use super::{PluginTemplate, ScaffoldError, StoreKind, default_sdk_path, generate};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kyro-scaffold-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn template(name: &str, kind: StoreKind) -> PluginTemplate {
    PluginTemplate { name: name.to_owned(), kind, sdk: default_sdk_path() }
}

#[test]
fn every_kind_generates_a_complete_crate_with_every_placeholder_filled() {
    let parent = temp_dir("kinds");
    for kind in StoreKind::ALL {
        let name = format!("acme-{}", kind.as_str());
        let dir = generate(&parent, &template(&name, kind)).unwrap();
        for file in [
            "Cargo.toml",
            "Cargo.lock",
            "rust-toolchain.toml",
            "src/lib.rs",
            "src/store.rs",
            "store.toml",
            "kyro.toml",
            ".github/workflows/certify.yml",
            "README.md",
            ".gitignore",
        ] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            assert!(!text.contains("@@"), "{kind:?} {file}");
        }
        let manifest: toml::Table =
            std::fs::read_to_string(dir.join("Cargo.toml")).unwrap().parse().unwrap();
        assert_eq!(manifest["package"]["name"].as_str(), Some(name.as_str()));
        assert!(manifest.contains_key("workspace"), "a crate outside any workspace");
        let sdk = manifest["dependencies"]["kyro-connector-sdk"]["path"].as_str().unwrap();
        assert_eq!(PathBuf::from(sdk), std::fs::canonicalize(default_sdk_path()).unwrap());

        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains(&format!("OwnershipMode::{kind:?}")), "{lib}");
        let host = crate::config::HostConfig::read(&dir.join("kyro.toml")).unwrap();
        assert_eq!(host.stores[0].ownership_mode, kind.ownership_mode());
        assert_eq!(host.stores[0].id, name);
        let store: toml::Table =
            std::fs::read_to_string(dir.join("store.toml")).unwrap().parse().unwrap();
        assert_eq!(store, host.stores[0].config, "store.toml and kyro.toml configure alike");
        let dsn_env = format!("ACME_{}_DSN", kind.as_str().replace('-', "_").to_uppercase());
        assert_eq!(store["dsn"]["env"].as_str(), Some(dsn_env.as_str()));
        let workflow = std::fs::read_to_string(dir.join(".github/workflows/certify.yml")).unwrap();
        assert!(workflow.contains("--report-json") && workflow.contains("--junit"), "{workflow}");
    }
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn bad_names_kinds_sdks_and_existing_directories_are_refused() {
    let parent = temp_dir("refusals");
    for name in ["", "Acme", "1acme", "acme store", "acme/../x", &"a".repeat(65)] {
        let err = generate(&parent, &template(name, StoreKind::EventFeed)).unwrap_err();
        assert!(matches!(err, ScaffoldError::Name { .. }), "{name:?}: {err}");
    }
    let err = "write_through".parse::<StoreKind>().unwrap_err();
    assert!(err.to_string().contains("event-feed, write-through or snapshot-bundle"), "{err}");
    assert_eq!("snapshot-bundle".parse::<StoreKind>().unwrap(), StoreKind::SnapshotBundle);

    let not_sdk = PluginTemplate { sdk: parent.clone(), ..template("acme", StoreKind::EventFeed) };
    let err = generate(&parent, &not_sdk).unwrap_err();
    assert!(matches!(err, ScaffoldError::SdkMissing { .. }), "{err}");

    std::fs::create_dir_all(parent.join("acme")).unwrap();
    std::fs::write(parent.join("acme/keep"), "mine").unwrap();
    let err = generate(&parent, &template("acme", StoreKind::EventFeed)).unwrap_err();
    assert!(matches!(err, ScaffoldError::Exists { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(parent.join("acme/keep")).unwrap(), "mine");
    std::fs::remove_dir_all(&parent).unwrap();
}
