//! Unit tests of the SDK's pure parts: secrets, configuration errors, ABI versions and payloads.

use serde::Deserialize;

use crate::abi::{self, ABI_VERSION, AbiVersion, PAYLOAD_VERSION};
use crate::{ConnectorConfig, ErrorKind, Secret, SecretSource};

#[test]
fn secrets_never_show_their_value() {
    let secret = Secret::new("postgres://kyro:hunter2-canary@db:5432/kyro");
    assert_eq!(format!("{secret:?}"), "Secret(***)");
    assert_eq!(format!("{secret}"), "***");
    assert_eq!(serde_json::to_string(&secret).unwrap(), "\"***\"");
    let source = SecretSource::Value(secret.clone());
    assert_eq!(format!("{source:?}"), "Value(***)");
    assert_eq!(serde_json::to_string(&source).unwrap(), r#"{"value":"***"}"#);
    assert_eq!(secret.expose(), "postgres://kyro:hunter2-canary@db:5432/kyro");
}

#[test]
fn redaction_removes_the_whole_value_and_a_url_password() {
    let secret = Secret::new("postgres://kyro:hunter2-canary@db:5432/kyro");
    let message =
        "failed for postgres://kyro:hunter2-canary@db:5432/kyro; password hunter2-canary rejected";
    assert_eq!(secret.redact_from(message), "failed for ***; password *** rejected");
}

#[test]
fn secret_sources_resolve_from_env_and_file() {
    let dir = std::env::temp_dir().join(format!("kyro-sdk-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dsn");
    std::fs::write(&file, "from-file\n").unwrap();
    let source: SecretSource =
        serde_json::from_str(&format!(r#"{{"file":"{}"}}"#, file.display())).unwrap();
    assert_eq!(source.resolve().unwrap().expose(), "from-file");
    let missing: SecretSource =
        serde_json::from_str(r#"{"env":"KYRO_SDK_TEST_UNSET_VARIABLE"}"#).unwrap();
    let err = missing.resolve().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.message().contains("KYRO_SDK_TEST_UNSET_VARIABLE"));
    assert!(serde_json::from_str::<SecretSource>(r#"{"vault":"x"}"#).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "only deserialized")]
struct ExampleConfig {
    table: String,
    dimension: u32,
    dsn: SecretSource,
}

#[test]
fn config_errors_name_the_key_but_never_the_value() {
    let wrong_type = ConnectorConfig::from_json(
        r#"{"table":"docs","dimension":"postgres://u:canary-pw@h/db","dsn":{"env":"X"}}"#,
    );
    let err = wrong_type.parse::<ExampleConfig>().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.message().contains("`dimension`"), "{err}");
    assert!(!err.message().contains("canary-pw"), "{err}");

    let unknown = ConnectorConfig::from_json(
        r#"{"table":"docs","dimension":8,"dsn":{"env":"X"},"tabel":"x"}"#,
    );
    let err = unknown.parse::<ExampleConfig>().unwrap_err();
    assert!(err.message().contains("unknown field `tabel`"), "{err}");

    let missing = ConnectorConfig::from_json(r#"{"table":"docs","dsn":{"value":"canary-pw"}}"#);
    let err = missing.parse::<ExampleConfig>().unwrap_err();
    assert!(err.message().contains("missing field `dimension`"), "{err}");
    assert!(!format!("{missing:?}").contains("canary-pw"));
}

#[test]
fn abi_versions_are_compatible_within_a_major_up_to_the_host_minor() {
    let host = AbiVersion::new(1, 2);
    assert!(AbiVersion::new(1, 0).is_compatible_with(host));
    assert!(AbiVersion::new(1, 2).is_compatible_with(host));
    assert!(!AbiVersion::new(1, 3).is_compatible_with(host));
    assert!(!AbiVersion::new(2, 0).is_compatible_with(host));
    assert!(!AbiVersion::new(0, 9).is_compatible_with(host));
    assert_eq!(AbiVersion::from_bits(AbiVersion::new(7, 3).to_bits()), AbiVersion::new(7, 3));
    assert!(ABI_VERSION.is_compatible_with(ABI_VERSION));
}

#[test]
fn the_export_macro_uses_abi_stables_root_module_name() {
    // The export macro hard-codes this symbol name because attributes need a literal.
    assert_eq!(abi::__private::ROOT_MODULE_LOADER_NAME, "_1as_0lib_1header_0root_bmodule_bloader");
}

#[test]
fn payloads_carry_and_check_their_version() {
    let bytes = abi::encode(&42_u32, 8).unwrap();
    assert_eq!(bytes[0], PAYLOAD_VERSION);
    assert_eq!(abi::decode::<u32>(&bytes).unwrap(), 42);
    let mut future = bytes.clone();
    future[0] = PAYLOAD_VERSION + 1;
    let err = abi::decode::<u32>(&future).unwrap_err();
    assert!(err.message().contains("payload version"), "{err}");
    assert!(abi::decode::<u32>(&[]).is_err());
}
