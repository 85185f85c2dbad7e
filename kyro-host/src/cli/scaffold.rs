//! `kyro plugin new`: a connector crate to start from, outside any workspace, that builds as a
//! cdylib and certifies once its store functions are written.
//!
//! The crate's files come from `kyro-host/templates/plugin/`, compiled into the binary, with
//! `@@key@@` placeholders filled in. It depends on the SDK by path (the SDK is not published),
//! by default the SDK source this `kyro` was built from, and copies that source tree's
//! `Cargo.lock` and `rust-toolchain.toml` so the plugin builds with the versions the SDK was tested
//! with.
//!
//! It never overwrites anything: the crate's directory must not exist yet.

use std::path::{Path, PathBuf};

/// Who writes the store, which decides the ownership mode and operations the crate declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreKind {
    /// The application writes the store and reports each change to KyroDB as a change event.
    EventFeed,
    /// KyroDB writes the store through the connector and keeps its ACKs as evidence.
    WriteThrough,
    /// Nobody writes: the store serves immutable, versioned bundles.
    SnapshotBundle,
}

impl StoreKind {
    /// Every kind, in the order `--help` lists them.
    pub(crate) const ALL: [Self; 3] = [Self::EventFeed, Self::WriteThrough, Self::SnapshotBundle];

    /// The name `--store-kind` takes.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::EventFeed => "event-feed",
            Self::WriteThrough => "write-through",
            Self::SnapshotBundle => "snapshot-bundle",
        }
    }

    fn ownership_mode(self) -> &'static str {
        match self {
            Self::EventFeed => "event_feed",
            Self::WriteThrough => "write_through",
            Self::SnapshotBundle => "snapshot_bundle",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::EventFeed => {
                "the application writes the store and reports each change to KyroDB as an event"
            }
            Self::WriteThrough => {
                "KyroDB writes the store through this connector and acknowledges each write once it is visible"
            }
            Self::SnapshotBundle => "the store serves immutable, versioned bundles",
        }
    }

    /// The body of the generated `declared()`.
    fn declared(self) -> &'static str {
        match self {
            Self::EventFeed => {
                "    CapabilityManifest::closed()
        .with_operation(Operation::Search)
        .with_operation(Operation::Fetch)
        // The application's own pipeline writes the store and reports each change to KyroDB as
        // a change event; a read always shows the store's current state.
        .with_ownership_mode(OwnershipMode::EventFeed)"
            }
            Self::WriteThrough => {
                "    CapabilityManifest::closed()
        .with_operation(Operation::Search)
        .with_operation(Operation::Fetch)
        .with_operation(Operation::Upsert)
        .with_operation(Operation::Delete)
        // Writes go through this connector, which acknowledges each once a read would see it.
        .with_ownership_mode(OwnershipMode::WriteThrough)"
            }
            Self::SnapshotBundle => {
                "    CapabilityManifest::closed()
        .with_operation(Operation::Search)
        .with_operation(Operation::Fetch)
        .with_operation(Operation::SnapshotVersion)
        // Each scope is served from an immutable version whose content never changes.
        .with_ownership_mode(OwnershipMode::SnapshotBundle)"
            }
        }
    }
}

impl std::str::FromStr for StoreKind {
    type Err = ScaffoldError;

    fn from_str(text: &str) -> Result<Self, ScaffoldError> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| ScaffoldError::StoreKind { given: text.to_owned() })
    }
}

/// Why no crate was generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ScaffoldError {
    /// The name cannot be a crate name.
    #[error(
        "plugin name {name:?} must start with a lowercase letter and hold only a-z, 0-9, - and _ (at most 64 characters)"
    )]
    Name {
        /// The name given.
        name: String,
    },
    /// The store kind is not one of [`StoreKind::ALL`].
    #[error("store kind {given:?} must be event-feed, write-through or snapshot-bundle")]
    StoreKind {
        /// What was given.
        given: String,
    },
    /// The crate's directory is already there.
    #[error("{path} already exists; kyro plugin new never overwrites")]
    Exists {
        /// The directory.
        path: PathBuf,
    },
    /// The SDK source is not where it was looked for.
    #[error(
        "the connector SDK source is not at {path} (no Cargo.toml naming kyro-connector-sdk); pass --sdk with the connector-sdk directory of a KyroDB checkout"
    )]
    SdkMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A file could not be written.
    #[error("failed to write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// What to generate.
#[derive(Debug, Clone)]
pub(crate) struct PluginTemplate {
    /// The crate's (and plugin's) name.
    pub(crate) name: String,
    /// Who writes the store.
    pub(crate) kind: StoreKind,
    /// The SDK's source directory (`connector-sdk` of a KyroDB checkout).
    pub(crate) sdk: PathBuf,
}

/// The SDK source this binary was built from.
pub(crate) fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("connector-sdk")
}

/// Generates the crate in `parent/<name>` and returns its directory.
///
/// # Errors
///
/// A name that cannot be a crate name, an SDK path without the SDK, an existing directory, or a
/// file that cannot be written (what was written by then stays, for the author to look at).
pub(crate) fn generate(parent: &Path, template: &PluginTemplate) -> Result<PathBuf, ScaffoldError> {
    check_name(&template.name)?;
    let sdk = std::fs::canonicalize(&template.sdk)
        .ok()
        .filter(|sdk| is_sdk(sdk))
        .ok_or_else(|| ScaffoldError::SdkMissing { path: template.sdk.clone() })?;
    let dir = parent.join(&template.name);
    if dir.exists() {
        return Err(ScaffoldError::Exists { path: dir });
    }
    let values = placeholders(template, &sdk);
    for (file, text) in FILES {
        write(&dir.join(file), &fill(text, &values))?;
    }
    // Pinned to what the SDK was built and tested with, when its source tree has them.
    if let Some(source_root) = sdk.parent() {
        for pinned in ["Cargo.lock", "rust-toolchain.toml"] {
            if let Ok(text) = std::fs::read_to_string(source_root.join(pinned)) {
                write(&dir.join(pinned), &text)?;
            }
        }
    }
    Ok(dir)
}

/// The generated files and their templates.
const FILES: [(&str, &str); 8] = [
    ("Cargo.toml", include_str!("../../templates/plugin/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("../../templates/plugin/lib.rs.tmpl")),
    ("src/store.rs", include_str!("../../templates/plugin/store.rs.tmpl")),
    ("store.toml", include_str!("../../templates/plugin/store.toml.tmpl")),
    ("kyro.toml", include_str!("../../templates/plugin/kyro.toml.tmpl")),
    (".github/workflows/certify.yml", include_str!("../../templates/plugin/certify.yml.tmpl")),
    ("README.md", include_str!("../../templates/plugin/README.md.tmpl")),
    (".gitignore", include_str!("../../templates/plugin/gitignore.tmpl")),
];

fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let valid = name.len() <= 64
        && name.starts_with(|first: char| first.is_ascii_lowercase())
        && name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_'
        });
    if valid { Ok(()) } else { Err(ScaffoldError::Name { name: name.to_owned() }) }
}

fn is_sdk(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|manifest| {
            manifest.get("package")?.get("name")?.as_str().map(|name| name == "kyro-connector-sdk")
        })
        .unwrap_or(false)
}

fn placeholders(template: &PluginTemplate, sdk: &Path) -> Vec<(&'static str, String)> {
    let crate_name = template.name.replace('-', "_");
    let repository = env!("CARGO_PKG_REPOSITORY");
    vec![
        ("name", template.name.clone()),
        ("description", template.kind.description().to_owned()),
        ("declared", template.kind.declared().to_owned()),
        ("ownership_mode", template.kind.ownership_mode().to_owned()),
        (
            "library_file",
            format!("{}{crate_name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX),
        ),
        ("dsn_env", format!("{}_DSN", crate_name.to_ascii_uppercase())),
        // serde_json's string escapes are a subset of TOML's basic-string escapes.
        ("sdk_path", serde_json::Value::String(sdk.display().to_string()).to_string()),
        ("repository", repository.trim_start_matches("https://github.com/").to_owned()),
    ]
}

/// `text` with every `@@key@@` replaced.
///
/// # Panics
///
/// When a template names a key that has no value, which the tests of every template rule out.
fn fill(text: &str, values: &[(&str, String)]) -> String {
    let mut filled = text.to_owned();
    for (key, value) in values {
        filled = filled.replace(&format!("@@{key}@@"), value);
    }
    assert!(!filled.contains("@@"), "a plugin template names a placeholder without a value");
    filled
}

fn write(path: &Path, text: &str) -> Result<(), ScaffoldError> {
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path, text));
    written.map_err(|source| ScaffoldError::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests;
