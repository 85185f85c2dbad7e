//! Unit tests of signed statements: keys round-trip through their files, a statement verifies
//! under its key and binds exactly one plugin file and one report, and any tampering or a wrong
//! key is refused.

use super::{AttestError, Envelope, PublicKey, SigningKey, Statement, sign};
use crate::report::{CleanupRecord, PluginIdentity, Report, Space, Summary, Verdict};
use crate::space::Naming;

const PLUGIN: &[u8] = b"\x7fELF pretend plugin bytes";
const REPORT: &[u8] = b"{\"verdict\": \"certified\"}\n";

fn report(sha256: Option<String>) -> Report {
    Report {
        schema_version: 1,
        suite_version: crate::SUITE_VERSION,
        verdict: Verdict::Certified,
        profile: "acme/event_feed".to_owned(),
        plugin: PluginIdentity {
            name: "acme".to_owned(),
            version: "1.2.3".to_owned(),
            sdk_version: "0.1.0".to_owned(),
            abi_version: "1.0".to_owned(),
            sha256,
            path: Some("/plugins/libacme.so".to_owned()),
        },
        store_version: Some("acme 9".to_owned()),
        seed: 7,
        depth: crate::Depth::Standard,
        call_timeout_ms: 5000,
        space: Space {
            naming: Naming::Unprefixed,
            naming_reason: "",
            scopes: Vec::new(),
            documents_seeded: 0,
            primary_scope_documents: 0,
            volume_rule: String::new(),
        },
        started_at: String::new(),
        duration_ms: 1,
        summary: Summary { passed: 1, failed: 0, not_applicable: 0, errors: 0 },
        failed_checks: Vec::new(),
        error_checks: Vec::new(),
        checks: Vec::new(),
        latency: Vec::new(),
        cleanup: CleanupRecord::new(Vec::new(), Vec::new()),
    }
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_seed([seed; 32])
}

fn signed() -> Envelope {
    let statement =
        Statement::for_report(&report(Some(super::sha256_hex(PLUGIN))), REPORT).unwrap();
    sign(&statement, &key(7))
}

#[test]
fn a_signed_statement_round_trips_and_binds_the_plugin_and_the_report() {
    let envelope = Envelope::from_json(signed().to_json().as_bytes()).unwrap();
    let (statement, signer) = envelope.verify(&[key(1).public_key(), key(7).public_key()]).unwrap();
    assert_eq!(signer, key(7).public_key());
    assert_eq!(envelope.signatures[0].keyid, key(7).public_key().key_id());
    statement.check_plugin(&super::sha256_hex(PLUGIN)).unwrap();
    statement.check_report(REPORT).unwrap();
    assert_eq!(statement.subject[0].name, "libacme.so");
    let predicate = &statement.predicate;
    assert_eq!(
        (predicate.verdict.as_str(), predicate.suite_version.as_str(), predicate.profile.as_str()),
        ("certified", crate::SUITE_VERSION, "acme/event_feed")
    );
    assert_eq!(predicate.plugin.version, "1.2.3");

    let json: serde_json::Value = serde_json::from_str(&signed().to_json()).unwrap();
    assert_eq!(json["payloadType"], "application/vnd.in-toto+json");
}

#[test]
fn one_changed_byte_of_the_plugin_or_the_report_is_refused() {
    let (statement, _) = signed().verify(&[key(7).public_key()]).unwrap();
    for idx in [0, PLUGIN.len() / 2, PLUGIN.len() - 1] {
        let mut plugin = PLUGIN.to_vec();
        plugin[idx] ^= 1;
        let err = statement.check_plugin(&super::sha256_hex(&plugin)).unwrap_err();
        assert!(matches!(err, AttestError::PluginMismatch { .. }), "{err}");
    }
    let mut report = REPORT.to_vec();
    report[3] ^= 0x20;
    let err = statement.check_report(&report).unwrap_err();
    assert!(matches!(err, AttestError::ReportMismatch { .. }), "{err}");
}

#[test]
fn a_changed_envelope_or_a_wrong_key_is_refused() {
    let err = signed().verify(&[key(8).public_key()]).unwrap_err();
    assert!(matches!(err, AttestError::Untrusted { .. }), "{err}");
    assert!(err.to_string().contains(&key(8).public_key().key_id()), "{err}");
    assert!(matches!(signed().verify(&[]).unwrap_err(), AttestError::Untrusted { .. }));

    // The payload re-encoded with one byte changed: a statement about another file.
    let mut envelope = signed();
    let mut payload = base64_decode(&envelope.payload);
    let idx = payload.iter().position(|&byte| byte == b'c').unwrap();
    payload[idx] = b'd';
    envelope.payload = base64_encode(&payload);
    assert!(matches!(
        envelope.verify(&[key(7).public_key()]).unwrap_err(),
        AttestError::Untrusted { .. }
    ));

    let mut envelope = signed();
    envelope.payload_type = "application/json".to_owned();
    assert!(matches!(
        envelope.verify(&[key(7).public_key()]).unwrap_err(),
        AttestError::Malformed { .. }
    ));

    let mut envelope = signed();
    let mut signature = base64_decode(&envelope.signatures[0].sig);
    signature[10] ^= 1;
    envelope.signatures[0].sig = base64_encode(&signature);
    assert!(matches!(
        envelope.verify(&[key(7).public_key()]).unwrap_err(),
        AttestError::Untrusted { .. }
    ));
    assert!(matches!(Envelope::from_json(b"{}").unwrap_err(), AttestError::Malformed { .. }));
}

#[test]
fn keys_round_trip_through_their_files_and_never_show_the_secret() {
    let secret = key(3);
    let text = secret.to_text();
    assert!(text.starts_with("kyro-attest-ed25519-secret-key "), "{text}");
    assert_eq!(SigningKey::from_text(&text).unwrap().public_key(), secret.public_key());
    let public = secret.public_key().to_text();
    assert_eq!(PublicKey::from_text(&public).unwrap(), secret.public_key());
    let encoded_seed = text.split_whitespace().nth(1).unwrap();
    let debug = format!("{secret:?}");
    assert!(!debug.contains(encoded_seed) && debug.contains("***"), "{debug}");

    let cases = [
        (PublicKey::from_text(&text).unwrap_err(), "another kind of key"),
        (SigningKey::from_text(&public).unwrap_err(), "another kind of key"),
        (SigningKey::from_text("kyro-attest-ed25519-secret-key !!").unwrap_err(), "not base64"),
        (SigningKey::from_text("kyro-attest-ed25519-secret-key AAAA").unwrap_err(), "not 32 bytes"),
        (SigningKey::from_text("").unwrap_err(), "expected"),
    ];
    for (err, reason) in cases {
        assert!(matches!(err, AttestError::KeyFormat { .. }), "{err}");
        assert!(err.to_string().contains(reason), "{err}");
        assert!(!err.to_string().contains(encoded_seed), "{err}");
    }
}

#[test]
fn an_in_process_report_cannot_be_attested() {
    let err = Statement::for_report(&report(None), REPORT).unwrap_err();
    assert!(matches!(err, AttestError::NoPluginFile), "{err}");
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
