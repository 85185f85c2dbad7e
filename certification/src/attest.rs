//! Signed certification statements: a DSSE envelope around an in-toto Statement that binds a
//! plugin file (its SHA-256) to the report of its certification (the report file's SHA-256), the
//! suite version, the profile and the verdict, signed with Ed25519.
//!
//! ```json
//! {"payloadType": "application/vnd.in-toto+json",
//!  "payload": "<base64 of the statement>",
//!  "signatures": [{"keyid": "<16 hex digits>", "sig": "<base64 Ed25519 signature of PAE(type, payload)>"}]}
//! ```
//!
//! The statement is in-toto's v1 `Statement` with one subject, the plugin file, and the predicate
//! type [`PREDICATE_TYPE`]; the signature covers DSSE's pre-authentication encoding, so neither
//! the payload nor its type can be changed without breaking it.
//!
//! Keys are one-line text files: `kyro-attest-ed25519-secret-key <base64 of the 32-byte seed>`
//! and `kyro-attest-ed25519-public-key <base64 of the 32-byte public key>`. A key's id is the
//! first 16 hex digits of the SHA-256 of its public key bytes.
//!
//! Everything here is pure: bytes and keys in, bytes and verdicts out. Reading key, plugin and
//! report files, and choosing what to trust, is the caller's (the `kyro` host).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::report::Report;

/// The DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The in-toto statement type this module writes and accepts.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of a KyroDB certification.
pub const PREDICATE_TYPE: &str = "https://kyrodb.dev/attestation/certification/v1";

const SECRET_KEY_LABEL: &str = "kyro-attest-ed25519-secret-key";
const PUBLIC_KEY_LABEL: &str = "kyro-attest-ed25519-public-key";

/// Why a key, a statement or an envelope was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// A key's text is not in the key file format.
    #[error("not a {expected} key file: {reason}")]
    KeyFormat {
        /// `secret` or `public`.
        expected: &'static str,
        /// What is wrong; never the key material.
        reason: &'static str,
    },
    /// The report names no plugin file, so there is nothing to attest.
    #[error("the report names no plugin file with a SHA-256 (an in-process certification)")]
    NoPluginFile,
    /// The envelope or its statement is not what this module writes.
    #[error("malformed attestation: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// No signature verifies under any trusted key.
    #[error("no signature of the attestation verifies under a trusted key (trusted: {trusted})")]
    Untrusted {
        /// The ids of the trusted keys.
        trusted: String,
    },
    /// The statement is about another file.
    #[error(
        "the attestation is for a plugin file with SHA-256 {attested}, not this one ({actual})"
    )]
    PluginMismatch {
        /// What the statement names.
        attested: String,
        /// The file's digest.
        actual: String,
    },
    /// The statement is about another report.
    #[error("the attestation is for a report with SHA-256 {attested}, not this one ({actual})")]
    ReportMismatch {
        /// What the statement names.
        attested: String,
        /// The report's digest.
        actual: String,
    },
}

/// Hex SHA-256 of `bytes`, as statements and reports write digests.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An Ed25519 signing key. Its `Debug` output never shows the key.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// The key whose seed is `seed` (32 random bytes for a new key).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Reads a secret key file's text.
    ///
    /// # Errors
    ///
    /// [`AttestError::KeyFormat`] when the text is not one key line.
    pub fn from_text(text: &str) -> Result<Self, AttestError> {
        key_bytes(text, SECRET_KEY_LABEL, "secret").map(Self::from_seed)
    }

    /// The secret key file's text.
    pub fn to_text(&self) -> String {
        format!("{SECRET_KEY_LABEL} {}\n", BASE64.encode(self.0.to_bytes()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(*** public {})", self.public_key().key_id())
    }
}

/// An Ed25519 public key, trusted to sign certification statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Reads a public key file's text.
    ///
    /// # Errors
    ///
    /// [`AttestError::KeyFormat`] when the text is not one key line or not a valid point.
    pub fn from_text(text: &str) -> Result<Self, AttestError> {
        let bytes = key_bytes(text, PUBLIC_KEY_LABEL, "public")?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).map(Self).map_err(|_| {
            AttestError::KeyFormat { expected: "public", reason: "not an Ed25519 public key" }
        })
    }

    /// The public key file's text.
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_KEY_LABEL} {}\n", BASE64.encode(self.0.to_bytes()))
    }

    /// The key's id: the first 16 hex digits of the SHA-256 of its bytes.
    pub fn key_id(&self) -> String {
        sha256_hex(self.0.as_bytes())[..16].to_owned()
    }
}

fn key_bytes(text: &str, label: &str, expected: &'static str) -> Result<[u8; 32], AttestError> {
    let format_error = |reason| AttestError::KeyFormat { expected, reason };
    let (found_label, encoded) =
        text.trim().split_once(' ').ok_or_else(|| format_error("expected `<label> <base64>`"))?;
    if found_label != label {
        return Err(format_error("the label names another kind of key"));
    }
    let bytes = BASE64.decode(encoded.trim()).map_err(|_| format_error("the key is not base64"))?;
    bytes.try_into().map_err(|_| format_error("the key is not 32 bytes"))
}

/// An in-toto v1 statement about one certified plugin file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// The plugin file, exactly one.
    pub subject: Vec<ResourceDescriptor>,
    /// [`PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// What was certified, and how.
    pub predicate: Certification,
}

/// A file and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    /// The file's name.
    pub name: String,
    /// Its digests.
    pub digest: Sha256Digest,
}

/// A SHA-256 digest, hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sha256Digest {
    /// Hex, lowercase.
    pub sha256: String,
}

/// The certification predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certification {
    /// `certified`, `refused` or `invalid`.
    pub verdict: String,
    /// The check suite's version.
    pub suite_version: String,
    /// The certification profile, such as `pgvector/write_through`.
    pub profile: String,
    /// The report file.
    pub report: ReportReference,
    /// The plugin as it described itself.
    pub plugin: PluginReference,
}

/// The report a statement is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportReference {
    /// The report file's digest.
    pub digest: Sha256Digest,
}

/// The plugin a statement is about, as it described itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginReference {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The SDK version it was built with.
    pub sdk_version: String,
}

impl Statement {
    /// The statement for `report`, whose file holds exactly `report_bytes`.
    ///
    /// # Errors
    ///
    /// [`AttestError::NoPluginFile`] for a report of a connector certified in-process.
    pub fn for_report(report: &Report, report_bytes: &[u8]) -> Result<Self, AttestError> {
        let plugin = &report.plugin;
        let sha256 = plugin.sha256.clone().ok_or(AttestError::NoPluginFile)?;
        let name = plugin
            .path
            .as_deref()
            .and_then(|path| std::path::Path::new(path).file_name())
            .map_or_else(|| plugin.name.clone(), |name| name.to_string_lossy().into_owned());
        Ok(Self {
            statement_type: STATEMENT_TYPE.to_owned(),
            subject: vec![ResourceDescriptor { name, digest: Sha256Digest { sha256 } }],
            predicate_type: PREDICATE_TYPE.to_owned(),
            predicate: Certification {
                verdict: report.verdict.as_str().to_owned(),
                suite_version: report.suite_version.to_owned(),
                profile: report.profile.clone(),
                report: ReportReference {
                    digest: Sha256Digest { sha256: sha256_hex(report_bytes) },
                },
                plugin: PluginReference {
                    name: plugin.name.clone(),
                    version: plugin.version.clone(),
                    sdk_version: plugin.sdk_version.clone(),
                },
            },
        })
    }

    /// The SHA-256 of the plugin file the statement is about.
    pub fn plugin_sha256(&self) -> &str {
        self.subject.first().map_or("", |subject| subject.digest.sha256.as_str())
    }

    /// Checks that the statement is about the plugin file with digest `plugin_sha256`.
    ///
    /// # Errors
    ///
    /// [`AttestError::PluginMismatch`].
    pub fn check_plugin(&self, plugin_sha256: &str) -> Result<(), AttestError> {
        if self.plugin_sha256() == plugin_sha256 {
            Ok(())
        } else {
            Err(AttestError::PluginMismatch {
                attested: self.plugin_sha256().to_owned(),
                actual: plugin_sha256.to_owned(),
            })
        }
    }

    /// Checks that the statement is about the report file holding `report_bytes`.
    ///
    /// # Errors
    ///
    /// [`AttestError::ReportMismatch`].
    pub fn check_report(&self, report_bytes: &[u8]) -> Result<(), AttestError> {
        let actual = sha256_hex(report_bytes);
        let attested = &self.predicate.report.digest.sha256;
        if *attested == actual {
            Ok(())
        } else {
            Err(AttestError::ReportMismatch { attested: attested.clone(), actual })
        }
    }
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`PAYLOAD_TYPE`].
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The statement's JSON, base64.
    pub payload: String,
    /// At least one signature.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The signing key's id (a hint; verification tries every trusted key).
    pub keyid: String,
    /// The Ed25519 signature of the pre-authentication encoding, base64.
    pub sig: String,
}

/// Signs `statement` with `key`.
pub fn sign(statement: &Statement, key: &SigningKey) -> Envelope {
    let payload = serde_json::to_vec(statement).expect("a statement is plain strings and lists");
    let signature = key.0.sign(&pae(PAYLOAD_TYPE, &payload));
    Envelope {
        payload_type: PAYLOAD_TYPE.to_owned(),
        payload: BASE64.encode(&payload),
        signatures: vec![EnvelopeSignature {
            keyid: key.public_key().key_id(),
            sig: BASE64.encode(signature.to_bytes()),
        }],
    }
}

impl Envelope {
    /// The envelope as a JSON document (one line, newline-terminated).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an envelope is plain strings and lists") + "\n"
    }

    /// Reads an envelope document.
    ///
    /// # Errors
    ///
    /// [`AttestError::Malformed`] when it is not a DSSE envelope.
    pub fn from_json(bytes: &[u8]) -> Result<Self, AttestError> {
        serde_json::from_slice(bytes)
            .map_err(|err| AttestError::Malformed { reason: format!("not a DSSE envelope: {err}") })
    }

    /// The statement, once a signature verifies under one of `trusted`; the key that verified
    /// it comes along.
    ///
    /// # Errors
    ///
    /// [`AttestError::Malformed`] for another payload type or statement type, or an undecodable
    /// payload; [`AttestError::Untrusted`] when no signature verifies under a trusted key.
    pub fn verify(&self, trusted: &[PublicKey]) -> Result<(Statement, PublicKey), AttestError> {
        if self.payload_type != PAYLOAD_TYPE {
            return Err(AttestError::Malformed {
                reason: format!("payload type {:?} is not {PAYLOAD_TYPE}", self.payload_type),
            });
        }
        let payload = BASE64.decode(&self.payload).map_err(|_| AttestError::Malformed {
            reason: "the payload is not base64".to_owned(),
        })?;
        let message = pae(&self.payload_type, &payload);
        let signer = self.signatures.iter().find_map(|signature| {
            let bytes = BASE64.decode(&signature.sig).ok()?;
            let signature = ed25519_dalek::Signature::from_slice(&bytes).ok()?;
            trusted.iter().find(|key| key.0.verify_strict(&message, &signature).is_ok())
        });
        let Some(signer) = signer else {
            let ids: Vec<String> = trusted.iter().map(PublicKey::key_id).collect();
            return Err(AttestError::Untrusted { trusted: ids.join(", ") });
        };
        let statement: Statement = serde_json::from_slice(&payload).map_err(|err| {
            AttestError::Malformed { reason: format!("the payload is not a statement: {err}") }
        })?;
        if statement.statement_type != STATEMENT_TYPE
            || statement.predicate_type != PREDICATE_TYPE
            || statement.subject.len() != 1
        {
            return Err(AttestError::Malformed {
                reason: format!(
                    "expected a {STATEMENT_TYPE} statement of {PREDICATE_TYPE} about one file"
                ),
            });
        }
        Ok((statement, signer.clone()))
    }
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len(type)> <type> <len(body)> <body>`.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut message =
        format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    message.extend_from_slice(payload);
    message
}

#[cfg(test)]
mod tests;
