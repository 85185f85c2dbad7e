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

#[cfg(feature = "loader")]
mod search_wire {
    use std::collections::BTreeMap;

    use crate::abi::search::{SearchAnswer, WireSearch};
    use crate::abi::{self, Response};
    use crate::{
        DocumentId, Metadata, Revision, Scope, SearchHit, SearchResponse, Shortfall,
        ShortfallReason, StoredDocument, Watermark,
    };

    fn hit(scope: &Scope, id: &str, score: f32) -> SearchHit {
        SearchHit {
            document: StoredDocument {
                scope: scope.clone(),
                id: DocumentId::new(id).unwrap(),
                content: Some(format!("content of {id}")),
                metadata: Metadata::new(BTreeMap::from([("lang".into(), "en".into())])).unwrap(),
                revision: Some(Revision::new("r7").unwrap()),
                watermark: Some(Watermark(42)),
            },
            score,
        }
    }

    /// A response holding hits of the request's scope and one of another tenant's.
    fn response(asked: &Scope) -> SearchResponse {
        let other = Scope::new("globex", asked.namespace()).unwrap();
        SearchResponse {
            hits: vec![hit(asked, "a", 0.9), hit(&other, "b", 0.8), hit(asked, "c", 0.7)],
            shortfall: Some(Shortfall {
                requested: 10,
                returned: 3,
                reason: ShortfallReason::Exhausted,
            }),
        }
    }

    fn encoded(asked: &Scope, response: &SearchResponse) -> Vec<u8> {
        let mut bytes = Vec::new();
        abi::encode_into_vec(&SearchAnswer { scope: asked, response }, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn a_search_answer_encodes_as_the_derived_wire_form() {
        let asked = Scope::new("acme", "support").unwrap();
        let response = response(&asked);
        let derived = abi::encode(&WireSearch::of(&asked, &response), 0).unwrap();
        assert_eq!(encoded(&asked, &response), derived);
        let Response::Search(wire) = abi::decode::<Response>(&derived).unwrap() else {
            panic!("not a search response");
        };
        let scopes: Vec<_> = wire.hits.iter().map(|hit| hit.scope.clone()).collect();
        assert_eq!(scopes, [None, Some(response.hits[1].document.scope.clone()), None]);
    }

    #[test]
    fn a_decoded_search_answer_is_what_the_connector_returned() {
        let asked = Scope::new("acme", "support").unwrap();
        let response = response(&asked);
        let decoded = abi::decode_search(&encoded(&asked, &response), &asked).unwrap();
        assert_eq!(decoded, response);
        assert_eq!(decoded.hits[1].document.scope.tenant_id(), "globex");
        let empty = SearchResponse { hits: Vec::new(), shortfall: None };
        assert_eq!(abi::decode_search(&encoded(&asked, &empty), &asked).unwrap(), empty);
    }

    #[test]
    fn a_search_decode_refuses_other_answers_and_other_versions() {
        let asked = Scope::new("acme", "support").unwrap();
        let done = abi::encode(&Response::Done, 0).unwrap();
        let err = abi::decode_search(&done, &asked).unwrap_err();
        assert!(err.message().contains("response of another operation"), "{err}");
        let mut future = encoded(&asked, &response(&asked));
        future[0] = abi::PAYLOAD_VERSION + 1;
        let err = abi::decode_search(&future, &asked).unwrap_err();
        assert!(err.message().contains("payload version"), "{err}");
        let truncated = encoded(&asked, &response(&asked));
        assert!(abi::decode_search(&truncated[..truncated.len() - 4], &asked).is_err());
    }
}
