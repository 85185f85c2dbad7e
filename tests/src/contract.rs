//! The published KyroDB Runtime API v1 contract, for the end-to-end tests: the pinned OpenAPI
//! document (`contracts/kyro-runtime.v1.openapi.json` from the `kyrodb` 1.0.3 source
//! distribution, fetched and hash-checked by `scripts/setup-contract.sh`), a validator of JSON
//! values against its component schemas and its routes' request and response schemas, a
//! collector of findings for route tests, and a request corpus generated from the schemas.
//!
//! The document is the authority, so nothing here encodes a schema by hand: every verdict comes
//! from the document through the `jsonschema` crate (OpenAPI 3.1 schemas are JSON Schema
//! 2020-12), with `format` checked too, because the official SDK parses `date-time` fields.
//! It does not talk to a server; the tests do that and hand the answers in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::{Map, Value, json};

use crate::http::HttpResponse;

/// SHA-256 of the pinned contract document; `scripts/setup-contract.sh` checks the same.
pub const CONTRACT_SHA256: &str =
    "d299009fbb771af8c3b7fddff78346c180fc00e3dbaf9c57620e42b8cee9716b";

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), std::path::Path::to_path_buf)
}

/// Where `scripts/setup-contract.sh` puts the contract document.
pub fn contract_path() -> PathBuf {
    workspace_root().join("target/contract/kyro-runtime.v1.openapi.json")
}

/// The Python of the venv `scripts/setup-contract.sh` builds with the official SDK.
///
/// # Panics
///
/// When the venv has not been built, with the command that builds it.
pub fn sdk_python() -> PathBuf {
    let python = workspace_root().join("target/sdk-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup-contract.sh (scripts/test.sh does) to build the SDK venv",
        python.display()
    );
    python
}

/// One schema violation: where in the value, where in the contract, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the validated value (`/scope/metadata_filter_hash`); empty for the root.
    pub instance_path: String,
    /// JSON pointer of the failing keyword in the contract document.
    pub schema_path: String,
    /// What the validator says, shortened.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.instance_path.is_empty() { "(root)" } else { &self.instance_path };
        write!(f, "at {at}: {} [schema {}]", self.message, self.schema_path)
    }
}

/// Why a value does not match: what it was validated against, and every violation.
#[derive(Debug, Clone)]
pub struct Violations {
    /// The schema or route the value was checked against.
    pub target: String,
    /// Each violation, in the validator's order.
    pub list: Vec<Violation>,
}

impl Violations {
    /// Whether any violation is at `instance_path` (a JSON pointer).
    pub fn has_at(&self, instance_path: &str) -> bool {
        self.list.iter().any(|violation| violation.instance_path == instance_path)
    }

    /// Whether any violation's message mentions `text`.
    pub fn mentions(&self, text: &str) -> bool {
        self.list.iter().any(|violation| violation.message.contains(text))
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "does not match {}:", self.target)?;
        for violation in &self.list {
            write!(f, "\n    {violation}")?;
        }
        Ok(())
    }
}

/// One operation of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// `GET` or `POST`.
    pub method: String,
    /// The path template (`/v1/traces/{trace_id}`).
    pub path: String,
    /// The `operationId`.
    pub operation_id: String,
    /// The `x-kyro-plane`: `data`, `observability` or `observability-admin`.
    pub plane: String,
    /// The response keys the contract lists (`200`, `4XX`, `503`, ...).
    pub responses: Vec<String>,
    /// Whether it takes a JSON body.
    pub has_body: bool,
}

/// The loaded contract document and its compiled validators.
pub struct Contract {
    document: Value,
    validators: Mutex<BTreeMap<String, Arc<Validator>>>,
}

impl fmt::Debug for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contract").finish_non_exhaustive()
    }
}

impl Contract {
    /// The pinned contract, loaded once per test process.
    ///
    /// # Panics
    ///
    /// When the document is missing, is not the pinned one, or is not JSON; each with the
    /// command that fixes it.
    pub fn pinned() -> &'static Self {
        static CONTRACT: OnceLock<Contract> = OnceLock::new();
        CONTRACT.get_or_init(|| {
            let path = contract_path();
            let bytes = std::fs::read(&path).unwrap_or_else(|err| {
                panic!(
                    "cannot read the pinned contract {} ({err}): run scripts/setup-contract.sh (scripts/test.sh does)",
                    path.display()
                )
            });
            let digest = sha256_hex(&bytes);
            assert_eq!(
                digest,
                CONTRACT_SHA256,
                "{} is not the pinned contract (SHA-256 {digest}, pinned {CONTRACT_SHA256}): delete it and run scripts/setup-contract.sh",
                path.display()
            );
            let document = serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                panic!("the pinned contract {} is not JSON: {err}", path.display())
            });
            Self::from_document(document)
        })
    }

    /// A contract from a document already in memory.
    pub fn from_document(document: Value) -> Self {
        Self { document, validators: Mutex::new(BTreeMap::new()) }
    }

    /// The raw document.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Every operation, in the document's order.
    pub fn operations(&self) -> Vec<Operation> {
        let mut operations = Vec::new();
        let Some(paths) = self.document["paths"].as_object() else { return operations };
        for (path, item) in paths {
            let Some(item) = item.as_object() else { continue };
            for (method, operation) in item {
                if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    continue;
                }
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    path: path.clone(),
                    operation_id: operation["operationId"].as_str().unwrap_or("").to_owned(),
                    plane: operation["x-kyro-plane"].as_str().unwrap_or("").to_owned(),
                    responses: operation["responses"]
                        .as_object()
                        .map(|responses| responses.keys().cloned().collect())
                        .unwrap_or_default(),
                    has_body: operation.get("requestBody").is_some(),
                });
            }
        }
        operations
    }

    /// The names of the component schemas.
    pub fn schema_names(&self) -> Vec<String> {
        self.document["components"]["schemas"]
            .as_object()
            .map(|schemas| schemas.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Validates `value` against the component schema `name`.
    ///
    /// # Errors
    ///
    /// Every violation, or one saying the schema does not exist.
    pub fn validate_schema(&self, name: &str, value: &Value) -> Result<(), Violations> {
        let target = format!("components/schemas/{name}");
        if self.document["components"]["schemas"].get(name).is_none() {
            return Err(missing(target, "the contract has no such schema"));
        }
        self.validate_with(&target, &json!({ "$ref": format!("#/{target}") }), value)
    }

    /// Validates a response body of `method path` (the path template as the contract writes it)
    /// with status `status`: the exact status, else its class (`4XX`), else `default`.
    ///
    /// # Errors
    ///
    /// Every violation, or one saying the contract lists no such route or response.
    pub fn validate_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        value: &Value,
    ) -> Result<(), Violations> {
        let route = format!("{method} {path}");
        let operation = self
            .operation(method, path)
            .ok_or_else(|| missing(route.clone(), "the contract has no such route".to_owned()))?;
        let responses = &operation["responses"];
        let exact = status.to_string();
        let class = format!("{}XX", status / 100);
        let Some((key, response)) = [exact.as_str(), class.as_str(), "default"]
            .into_iter()
            .find_map(|key| responses.get(key).map(|response| (key, response)))
        else {
            return Err(missing(
                format!("{route} -> {status}"),
                format!(
                    "the contract lists no response for status {status} (it lists {})",
                    responses
                        .as_object()
                        .map(|map| map.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                ),
            ));
        };
        let response = self.resolve(response);
        let schema = &response["content"]["application/json"]["schema"];
        if schema.is_null() {
            return Err(missing(
                format!("{route} -> {key}"),
                "the contract gives this response no JSON schema".to_owned(),
            ));
        }
        self.validate_with(&format!("{route} -> {key}"), schema, value)
    }

    /// Validates a request body of `method path` against the route's request schema.
    ///
    /// # Errors
    ///
    /// Every violation, or one saying the route takes no body.
    pub fn validate_request(
        &self,
        method: &str,
        path: &str,
        value: &Value,
    ) -> Result<(), Violations> {
        let route = format!("{method} {path} request");
        let schema = self.request_schema(method, path).ok_or_else(|| {
            missing(route.clone(), "the contract gives this route no JSON request body".to_owned())
        })?;
        self.validate_with(&route, &schema, value)
    }

    /// The request body schema of a route, as the document writes it (references unresolved).
    pub fn request_schema(&self, method: &str, path: &str) -> Option<Value> {
        let operation = self.operation(method, path)?;
        let body = self.resolve(operation.get("requestBody")?);
        let schema = &body["content"]["application/json"]["schema"];
        (!schema.is_null()).then(|| schema.clone())
    }

    fn operation(&self, method: &str, path: &str) -> Option<&Value> {
        self.document["paths"].get(path)?.get(method.to_ascii_lowercase())
    }

    /// Follows one `$ref` inside the document (`#/components/responses/Error`).
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|reference| reference.strip_prefix('#'))
        {
            Some(pointer) => self.document.pointer(pointer).unwrap_or(&Value::Null),
            None => value,
        }
    }

    fn validate_with(&self, target: &str, schema: &Value, value: &Value) -> Result<(), Violations> {
        let validator = self.validator(target, schema)?;
        let mut list = Vec::new();
        for error in validator.iter_errors(value) {
            collect(&error, &mut list, 0);
        }
        if list.is_empty() { Ok(()) } else { Err(Violations { target: target.to_owned(), list }) }
    }

    /// A validator for `schema` with the document's components beside it, so every
    /// `#/components/...` reference resolves inside the one resource; compiled once per target.
    fn validator(&self, target: &str, schema: &Value) -> Result<Arc<Validator>, Violations> {
        let mut validators =
            self.validators.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(validator) = validators.get(target) {
            return Ok(Arc::clone(validator));
        }
        let mut root = match schema {
            Value::Object(object) => object.clone(),
            other => {
                let mut object = Map::new();
                object.insert("allOf".to_owned(), json!([other]));
                object
            }
        };
        root.insert("components".to_owned(), self.document["components"].clone());
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .map_err(|err| {
                missing(target.to_owned(), format!("the schema does not compile: {err}"))
            })?;
        let validator = Arc::new(validator);
        validators.insert(target.to_owned(), Arc::clone(&validator));
        Ok(validator)
    }
}

fn missing(target: impl Into<String>, message: impl Into<String>) -> Violations {
    Violations {
        target: target.into(),
        list: vec![Violation {
            instance_path: String::new(),
            schema_path: String::new(),
            message: message.into(),
        }],
    }
}

const MAX_MESSAGE_CHARS: usize = 300;

/// Flattens one validator error into violations. A `oneOf`/`anyOf` failure is explained by the
/// errors of its branches; for a union tagged on `type`, only the branch whose tag matched.
fn collect(error: &ValidationError<'_>, out: &mut Vec<Violation>, depth: usize) {
    let branches = match error.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            Some(context)
        }
        _ => None,
    };
    if let Some(branches) = branches
        && depth < 4
        && !branches.is_empty()
    {
        let tag_mismatch = |branch: &&Vec<ValidationError<'static>>| {
            branch.iter().any(|inner| {
                matches!(inner.kind(), ValidationErrorKind::Constant { .. })
                    && inner.instance_path().as_str().ends_with("/type")
            })
        };
        let matching: Vec<&Vec<ValidationError<'static>>> =
            branches.iter().filter(|branch| !tag_mismatch(branch)).collect();
        if matching.len() == 1 {
            for inner in matching[0] {
                collect(inner, out, depth + 1);
            }
            return;
        }
    }
    let mut message = error.to_string();
    if message.chars().count() > MAX_MESSAGE_CHARS {
        message = message.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + "…";
    }
    out.push(Violation {
        instance_path: error.instance_path().as_str().to_owned(),
        schema_path: error.schema_path().as_str().to_owned(),
        message,
    });
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// What a route test found: every answer whose status or body does not match the contract.
///
/// A route test checks many cases against one server; collecting instead of stopping at the
/// first mismatch lets one run list every gap of a route.
#[derive(Debug)]
pub struct Findings {
    label: String,
    list: Vec<String>,
    n_checked: usize,
}

impl Findings {
    /// An empty collector for the route (or group of routes) `label`.
    pub fn new(label: &str) -> Self {
        Self { label: label.to_owned(), list: Vec::new(), n_checked: 0 }
    }

    /// Checks one answer of `method path_template`: its status is `expected_status`, its body is
    /// JSON and matches the schema the contract names for its status. Returns the body.
    pub fn expect(
        &mut self,
        case: &str,
        method: &str,
        path_template: &str,
        response: &HttpResponse,
        expected_status: u16,
    ) -> Option<Value> {
        self.n_checked += 1;
        let status_ok = response.status == expected_status;
        if !status_ok {
            self.list.push(format!(
                "{case}: {method} {path_template} answered {} where {expected_status} was expected: {}",
                response.status,
                snippet(&response.body)
            ));
        }
        let body: Value = match serde_json::from_slice(&response.body) {
            Ok(body) => body,
            Err(err) => {
                self.list.push(format!(
                    "{case}: {method} {path_template} {} answered a body that is not JSON ({err}): {}",
                    response.status,
                    snippet(&response.body)
                ));
                return None;
            }
        };
        if let Err(violations) =
            Contract::pinned().validate_response(method, path_template, response.status, &body)
        {
            self.list.push(format!("{case}: {} {violations}", response.status));
        }
        status_ok.then_some(body)
    }

    /// Checks an answer against a named schema (for answers the route's own entry does not cover).
    pub fn expect_schema(
        &mut self,
        case: &str,
        response: &HttpResponse,
        expected_status: u16,
        schema: &str,
    ) -> Option<Value> {
        self.n_checked += 1;
        if response.status != expected_status {
            self.list.push(format!(
                "{case}: answered {} where {expected_status} was expected: {}",
                response.status,
                snippet(&response.body)
            ));
        }
        let Ok(body) = serde_json::from_slice::<Value>(&response.body) else {
            self.list.push(format!("{case}: the body is not JSON: {}", snippet(&response.body)));
            return None;
        };
        if let Err(violations) = Contract::pinned().validate_schema(schema, &body) {
            self.list.push(format!("{case}: {} {violations}", response.status));
        }
        (response.status == expected_status).then_some(body)
    }

    /// Records a finding the caller worked out itself.
    pub fn note(&mut self, finding: impl Into<String>) {
        self.list.push(finding.into());
    }

    /// Fails the test with every finding, if there are any.
    ///
    /// # Panics
    ///
    /// When anything did not match the contract.
    pub fn assert_none(self) {
        assert!(
            self.list.is_empty(),
            "{}: {} of {} checks do not match the contract:\n  - {}",
            self.label,
            self.list.len(),
            self.n_checked,
            self.list.join("\n  - ")
        );
    }
}

/// The start of a body, for messages.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.chars().count() > 400 {
        text.chars().take(400).collect::<String>() + "…"
    } else {
        text.into_owned()
    }
}

/// One request body of the corpus: what was done to the valid body, and the bytes to send.
#[derive(Debug, Clone)]
pub struct CorpusCase {
    /// What makes it wrong (`remove /scope/tenant_id`, `/top_k = null`, `non-object: []`).
    pub description: String,
    /// The body, when it is JSON (`None` for the empty and the invalid-JSON bodies).
    pub value: Option<Value>,
    /// The bytes to send.
    pub body: Vec<u8>,
}

/// Values of each JSON type (and an integer below every `minimum` and a string outside every
/// enum) that the corpus puts in place of each field.
fn replacement_samples() -> Vec<(&'static str, Value)> {
    vec![
        ("null", Value::Null),
        ("a boolean", json!(false)),
        ("the integer 0", json!(0)),
        ("a fractional number", json!(1.5)),
        ("a string", json!("kyro-corpus-unlisted")),
        ("an empty array", json!([])),
        ("an empty object", json!({})),
    ]
}

/// The unknown field the corpus adds to every object.
pub const UNKNOWN_FIELD: &str = "kyro_corpus_unknown_field";

/// Request bodies the contract forbids, derived from `valid`, a body the route's request schema
/// accepts: every field removed, every field given each other JSON type and null, an unknown
/// field added to every object, and non-object bodies. A derived body is kept only when the
/// contract's schema refuses it, so the corpus is exactly as strict as the document.
/// Arrays of scalars are mutated at their first element only, which bounds the corpus.
///
/// # Panics
///
/// When `valid` does not match the route's request schema (the corpus would prove nothing).
pub fn request_corpus(
    contract: &Contract,
    method: &str,
    path: &str,
    valid: &Value,
) -> Vec<CorpusCase> {
    if let Err(violations) = contract.validate_request(method, path, valid) {
        panic!("the corpus's valid body for {method} {path} is not valid: {violations}");
    }
    let mut cases = Vec::new();
    for (description, body) in [
        ("non-object body: an array", b"[]".to_vec()),
        ("non-object body: a string", b"\"kyro\"".to_vec()),
        ("non-object body: a number", b"7".to_vec()),
        ("non-object body: null", b"null".to_vec()),
        ("non-object body: empty", Vec::new()),
        ("non-object body: invalid JSON", b"{\"scope\":".to_vec()),
    ] {
        let value = serde_json::from_slice(&body).ok();
        cases.push(CorpusCase { description: description.to_owned(), value, body });
    }
    // Arrays a lenient decoder might read as the object, wrapped or by position.
    let mut arrays = vec![("the valid body inside an array", json!([valid]))];
    if let Value::Object(object) = valid {
        arrays.push((
            "the valid body's values as an array",
            Value::Array(object.values().cloned().collect()),
        ));
    }
    for (description, array) in arrays {
        cases.push(CorpusCase {
            description: format!("non-object body: {description}"),
            body: array.to_string().into_bytes(),
            value: Some(array),
        });
    }
    let mut seen = BTreeSet::new();
    let mut derived = Vec::new();
    mutations(valid, "", &mut derived);
    for (description, mutated) in derived {
        let body = mutated.to_string();
        if !seen.insert(body.clone()) {
            continue;
        }
        if contract.validate_request(method, path, &mutated).is_ok() {
            continue;
        }
        cases.push(CorpusCase { description, body: body.into_bytes(), value: Some(mutated) });
    }
    cases
}

/// Every single-step mutation of `value` below the root pointer `pointer`, as whole bodies.
fn mutations(root: &Value, pointer: &str, out: &mut Vec<(String, Value)>) {
    let Some(node) = root.pointer(pointer) else { return };
    match node {
        Value::Object(object) => {
            for key in object.keys() {
                let child = format!("{pointer}/{}", escape(key));
                let mut removed = root.clone();
                if let Some(Value::Object(parent)) = removed.pointer_mut(pointer) {
                    parent.remove(key);
                }
                out.push((format!("remove {child}"), removed));
                replace_each(root, &child, out);
                mutations(root, &child, out);
            }
            let mut extended = root.clone();
            if let Some(Value::Object(parent)) = extended.pointer_mut(pointer) {
                parent.insert(UNKNOWN_FIELD.to_owned(), json!("x"));
            }
            let at = if pointer.is_empty() { "the root object" } else { pointer };
            out.push((format!("unknown field {UNKNOWN_FIELD} in {at}"), extended));
        }
        Value::Array(items) => {
            let all_scalars = items.iter().all(|item| !item.is_object() && !item.is_array());
            let n_visit = if all_scalars { items.len().min(1) } else { items.len() };
            for item_idx in 0..n_visit {
                let child = format!("{pointer}/{item_idx}");
                replace_each(root, &child, out);
                mutations(root, &child, out);
            }
        }
        _ => {}
    }
}

fn replace_each(root: &Value, pointer: &str, out: &mut Vec<(String, Value)>) {
    for (label, sample) in replacement_samples() {
        let mut replaced = root.clone();
        if let Some(slot) = replaced.pointer_mut(pointer) {
            if *slot == sample {
                continue;
            }
            *slot = sample;
        }
        out.push((format!("{pointer} = {label}"), replaced));
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
