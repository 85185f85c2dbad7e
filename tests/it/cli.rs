//! The `kyro` binary as a process: `--help`, `--version` and `plugin inspect`.

use std::process::{Command, Output};

use kyro_e2e::{fixture_package, kyro_binary, plugin_path};
use kyro_fixture_support::Defect;
use sha2::{Digest, Sha256};

fn kyro(args: &[&str]) -> Output {
    Command::new(kyro_binary()).args(args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_and_version_work() {
    let help = kyro(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(text.contains("plugin") && text.contains("Usage: kyro"), "{text}");

    let version = kyro(&["--version"]);
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8(version.stdout).unwrap().trim(),
        format!("kyro {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn plugin_inspect_reports_the_plugin_without_opening_a_store() {
    let path = plugin_path(&fixture_package(Defect::None));
    let output = kyro(&["plugin", "inspect", path.to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let expected_sha = Sha256::digest(std::fs::read(&path).unwrap())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<String>();
    assert_eq!(report["sha256"], expected_sha.as_str());
    assert_eq!(report["name"], "fixture-reference");
    assert_eq!(report["abi_version"], "1.0");
    assert_eq!(report["sdk_version"], env!("CARGO_PKG_VERSION"));
    let operations: Vec<&str> = report["capabilities"]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op.as_str().unwrap())
        .collect();
    assert_eq!(operations, ["search", "fetch", "upsert", "delete", "watermark"]);

    let text = kyro(&["plugin", "inspect", path.to_str().unwrap()]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains(&expected_sha) && text.contains("abi version   1.0"), "{text}");
}

#[test]
fn plugin_inspect_refuses_wrong_files_with_one_line_and_a_failing_exit() {
    let dir = std::env::temp_dir().join(format!("kyro-cli-wrong-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text_file = dir.join("notes.so");
    std::fs::write(&text_file, "hello").unwrap();
    let cases = [
        (dir.join("missing.so"), "does not exist"),
        (text_file, "is not a loadable dynamic library"),
        (
            plugin_path("kyro-fixture-abi-mismatch"),
            "built for connector ABI 2.0, but this host speaks connector ABI 1.0",
        ),
    ];
    for (path, expected) in cases {
        let output = kyro(&["plugin", "inspect", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{}", path.display());
        let message = stderr(&output);
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.starts_with("error: ") && message.contains(expected), "{message}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
