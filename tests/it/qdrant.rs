//! The Qdrant connector's embedded backend behind the real `kyro`: certified by `kyro certify`
//! for every capability it declares (report kept under `target/test-artifacts/`).

use std::process::Command;

use kyro_e2e::{kyro_binary, plugin_path, profile_dir, temp_dir};
use serde_json::Value;

#[test]
fn kyro_certify_certifies_the_embedded_qdrant_backend_and_keeps_the_report() {
    let dir = temp_dir("qdrant-certify");
    let config_path = dir.join("store.toml");
    std::fs::write(
        &config_path,
        format!(
            "backend = \"embedded\"\npath = \"{}\"\ncollection = \"certification\"\ndimension = 8\ndistance = \"cosine\"\n\
             filterable_keys = [\"lang\", \"year\"]\ncreate_collection = true\n",
            dir.join("qdrant").display()
        ),
    )
    .unwrap();
    let artifacts = profile_dir().parent().unwrap().join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let report_path = artifacts.join("certification-qdrant-embedded.json");
    let output = Command::new(kyro_binary())
        .args(["certify", "--plugin"])
        .arg(plugin_path("kyro-connector-qdrant"))
        .arg("--store-config")
        .arg(&config_path)
        .arg("--report-json")
        .arg(&report_path)
        .arg("--junit")
        .arg(artifacts.join("certification-qdrant-embedded.xml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(report["verdict"], "certified");
    assert_eq!(report["profile"], "qdrant/write_through");
    assert_eq!(report["store_version"], "qdrant-edge 0.7.0");
    // Every declared capability was exercised, and every undeclared one answered unsupported.
    let outcome = |id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["id"] == id)
            .map(|check| check["outcome"].clone())
    };
    for id in [
        "scope.search_excludes_other_tenant",
        "scope.fetch_excludes_other_scopes",
        "filter.injection_values",
        "freshness.write_through.read_your_write",
        "freshness.write_through.delete_ack",
        "unsupported.watermark",
        "unsupported.snapshot_version",
    ] {
        assert_eq!(outcome(id), Some(Value::from("passed")), "{id}");
    }
    assert_eq!(report["cleanup"]["complete"], true);
    std::fs::remove_dir_all(&dir).unwrap();
}
