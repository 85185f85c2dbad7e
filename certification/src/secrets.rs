//! Secrets in a connector's configuration, every part of them, and the canaries that stand in for
//! them: what the redaction checks search for and what every output is scrubbed of.
//!
//! A secret is a configuration value in the SDK's `SecretSource` shape (`{ env = .. }`,
//! `{ file = .. }`, `{ value = .. }`), resolved through the SDK. Its parts are the whole value
//! and, for a URL with credentials, the password as written (percent-encoded) and decoded, when
//! it is at least 8 bytes long (a shorter one, such as a test database's `kyro`, would match
//! ordinary words; the whole value is still searched for). A real user name or host is not
//! searched for or scrubbed: they are rarely secret and too short and common to scrub without
//! mangling ordinary text. Canaries are random and long, so every part of them is searched for:
//! the user, the password in both forms, the host and the whole value.
//!
//! What it deliberately does not do: read the environment or files itself (the SDK's
//! `SecretSource::resolve` does, as it does for a connector).

use kyro_connector_sdk::SecretSource;
use serde_json::Value;

use crate::rng::Rng;

/// Whole secrets shorter than this are not searched for: they would match ordinary words.
const MIN_SECRET_BYTES: usize = 4;
/// A password within a URL is searched for on its own from this length.
const MIN_PASSWORD_BYTES: usize = 8;

/// Every searched-for part of every secret of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretSet {
    /// Longest first, so a part inside another is replaced after it.
    parts: Vec<String>,
}

impl SecretSet {
    /// The secrets named in a connector configuration, resolved through the SDK. A secret that
    /// cannot be resolved is skipped: the connector reports it when it opens.
    pub fn from_config(config: &Value) -> Self {
        let mut set = Self::default();
        visit_secret_sources(config, &mut |source| {
            if let Ok(source) = serde_json::from_value::<SecretSource>(source.clone())
                && let Ok(secret) = source.resolve()
            {
                set.add_secret(secret.expose());
            }
        });
        set
    }

    /// Adds a secret: the whole value and, for a URL with credentials, its password in both
    /// forms.
    pub(crate) fn add_secret(&mut self, value: &str) {
        if value.len() >= MIN_SECRET_BYTES {
            self.add_part(value);
        }
        if let Some(url) = UrlParts::parse(value)
            && let Some(password) = url.password
        {
            if password.len() >= MIN_PASSWORD_BYTES {
                self.add_part(password);
            }
            if let Some(decoded) =
                percent_decode(password).filter(|decoded| decoded.len() >= MIN_PASSWORD_BYTES)
            {
                self.add_part(&decoded);
            }
        }
    }

    /// Adds one literal part, whatever its length (callers decide what is long enough).
    pub(crate) fn add_part(&mut self, part: &str) {
        if !part.is_empty() && !self.parts.iter().any(|known| known == part) {
            self.parts.push(part.to_owned());
            self.parts.sort_by(|left, right| right.len().cmp(&left.len()).then(left.cmp(right)));
        }
    }

    /// Adds every part of another set.
    pub(crate) fn extend(&mut self, other: &Self) {
        for part in &other.parts {
            self.add_part(part);
        }
    }

    /// Whether any part occurs in `text`.
    pub fn found_in(&self, text: &str) -> bool {
        self.parts.iter().any(|part| text.contains(part.as_str()))
    }

    /// `text` with every occurrence of every part replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut scrubbed = text.to_owned();
        for part in &self.parts {
            if scrubbed.contains(part.as_str()) {
                scrubbed = scrubbed.replace(part.as_str(), "***");
            }
        }
        scrubbed
    }

    /// Whether the set holds no part.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// A configuration with every secret replaced by canaries, and the canaries' parts.
#[derive(Debug, Clone)]
pub(crate) struct CanaryConfig {
    /// What the probe tries, for witnesses: `canary password` or `canary user, password and host`.
    pub(crate) label: &'static str,
    pub(crate) config: Value,
    pub(crate) parts: SecretSet,
}

/// The canary configurations for `config`: none when it holds no secret. For URL secrets with
/// credentials there are two: the real user and host with a canary password (the store is
/// reached and refuses the password, where drivers echo it), and a canary user, password and
/// host (nothing is reached, where connectors tend to describe what they tried).
pub(crate) fn canary_configs(config: &Value, rng: &mut Rng) -> Vec<CanaryConfig> {
    let nonce = rng.hex(10);
    let user = format!("kcuser{nonce}");
    // Characters that must be percent-encoded in a URL, so both forms are distinct parts.
    let password_decoded = format!("kc!p@ss:w/rd {nonce}");
    let password_encoded = format!("kc%21p%40ss%3Aw%2Frd%20{nonce}");
    let host = format!("kc-host-{nonce}.invalid");
    let plain = format!("kyro-canary-{nonce}");

    let mut has_url = false;
    let mut has_secret = false;
    visit_secret_sources(config, &mut |source| {
        has_secret = true;
        has_url |= resolve(source)
            .as_deref()
            .and_then(UrlParts::parse)
            .is_some_and(|url| url.user.is_some());
    });
    if !has_secret {
        return Vec::new();
    }
    let mut probes = Vec::new();
    let real_host = |parts: &mut SecretSet, original: &str| {
        let Some(url) = UrlParts::parse(original) else {
            parts.add_part(&plain);
            return plain.clone();
        };
        let user = url.user.unwrap_or("kyro");
        let value =
            format!("{}://{user}:{password_encoded}@{}{}", url.scheme, url.host_and_port, url.rest);
        parts.add_part(&password_encoded);
        parts.add_part(&password_decoded);
        parts.add_part(&value);
        value
    };
    let mut parts = SecretSet::default();
    let config_a = replace_secret_sources(config, &mut |original| real_host(&mut parts, original));
    probes.push(CanaryConfig { label: "canary password", config: config_a, parts });
    if has_url {
        let mut parts = SecretSet::default();
        let config_b = replace_secret_sources(config, &mut |original| {
            let Some(url) = UrlParts::parse(original) else {
                parts.add_part(&plain);
                return plain.clone();
            };
            let port = url.host_and_port.rsplit_once(':').map_or("", |(_, port)| port);
            let port = if port.is_empty() { String::new() } else { format!(":{port}") };
            let value =
                format!("{}://{user}:{password_encoded}@{host}{port}{}", url.scheme, url.rest);
            for part in [&user, &password_encoded, &password_decoded, &host, &value] {
                parts.add_part(part);
            }
            value
        });
        probes.push(CanaryConfig {
            label: "canary user, password and host",
            config: config_b,
            parts,
        });
    }
    probes
}

fn resolve(source: &Value) -> Option<String> {
    let source = serde_json::from_value::<SecretSource>(source.clone()).ok()?;
    source.resolve().ok().map(|secret| secret.expose().to_owned())
}

/// `scheme://[user[:password]@]host[:port][/path][?query]`, as far as secrets go.
struct UrlParts<'a> {
    scheme: &'a str,
    user: Option<&'a str>,
    password: Option<&'a str>,
    host_and_port: &'a str,
    rest: &'a str,
}

impl<'a> UrlParts<'a> {
    fn parse(value: &'a str) -> Option<Self> {
        let (scheme, after) = value.split_once("://")?;
        let authority_end = after.find(['/', '?']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(authority_end);
        let (userinfo, host_and_port) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(userinfo) => match userinfo.split_once(':') {
                Some((user, password)) => (Some(user), Some(password)),
                None => (Some(userinfo), None),
            },
            None => (None, None),
        };
        Some(Self { scheme, user, password, host_and_port, rest })
    }
}

/// Percent-decodes `text`; `None` when nothing was encoded or it does not decode to UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut byte_idx = 0;
    while byte_idx < bytes.len() {
        let escaped = (bytes[byte_idx] == b'%')
            .then(|| bytes.get(byte_idx + 1..byte_idx + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(value) => {
                decoded.push(value);
                byte_idx += 3;
            }
            None => {
                decoded.push(bytes[byte_idx]);
                byte_idx += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// Whether `value` has the SDK's `SecretSource` shape: one key, `env`, `file` or `value`, whose
/// value is a string.
fn is_secret_source(value: &Value) -> bool {
    value.as_object().is_some_and(|object| {
        object.len() == 1
            && object.iter().all(|(key, inner)| {
                matches!(key.as_str(), "env" | "file" | "value") && inner.is_string()
            })
    })
}

fn visit_secret_sources(value: &Value, visit: &mut dyn FnMut(&Value)) {
    if is_secret_source(value) {
        visit(value);
        return;
    }
    match value {
        Value::Object(object) => {
            object.values().for_each(|inner| visit_secret_sources(inner, visit))
        }
        Value::Array(items) => items.iter().for_each(|inner| visit_secret_sources(inner, visit)),
        _ => {}
    }
}

/// A copy of `config` with every secret source replaced by `{ value = replace(original) }`.
fn replace_secret_sources(config: &Value, replace: &mut dyn FnMut(&str) -> String) -> Value {
    if is_secret_source(config) {
        let original = resolve(config).unwrap_or_default();
        return serde_json::json!({ "value": replace(&original) });
    }
    match config {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, inner)| (key.clone(), replace_secret_sources(inner, replace)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|inner| replace_secret_sources(inner, replace)).collect())
        }
        other => other.clone(),
    }
}
