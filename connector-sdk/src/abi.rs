//! The stable plugin ABI: one versioned root module, one trait object, versioned byte payloads.
//!
//! The surface is deliberately small so that it can evolve underneath connector code:
//! - the plain symbol [`ABI_VERSION_SYMBOL`] returns the plugin's [`AbiVersion`]; the loader reads
//!   it with `libloading` before `abi_stable` touches the library, so a plugin of another ABI
//!   version is refused with both versions named;
//! - the root module ([`ConnectorModule`]) has two functions: `plugin_info` and `open`;
//! - an opened connector is one trait object ([`AbiConnector`]) with one method, `call`, that
//!   takes and returns a payload: a version byte followed by a `postcard` encoding of a request or
//!   response enum. New operations are new enum variants at the end, which older plugins answer
//!   with a decode error the host maps to `Unsupported`.
//!
//! Errors cross as [`AbiError`], a plain `#[repr(C)]` struct; panics are caught on the plugin side
//! and cross as errors of kind [`ErrorKind::Panicked`].
//!
//! This module is public for the export macro and the loader; connector authors never call it.

mod objects;
pub(crate) mod search;

use std::panic::{AssertUnwindSafe, catch_unwind};

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::RStr;
use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RString, RVec};
use abi_stable::{StableAbi, declare_root_module_statics, package_version_strings};
use serde::{Deserialize, Serialize};

#[cfg(feature = "loader")]
use crate::connector::SearchResponse;
use crate::connector::{Connector, ConnectorHealth, SearchRequest};
use crate::manifest::CapabilityManifest;
use crate::{
    ConnectorError, Document, DocumentId, ErrorKind, MutationAck, Result, Scope, SnapshotVersion,
    StoredDocument, Watermark,
};

/// An ABI version: plugins and hosts agree when the majors are equal and the plugin's minor is
/// not newer than the host's (a host understands every older minor; minors only add).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiVersion {
    /// Breaking changes bump this.
    pub major: u32,
    /// Backward-compatible additions bump this.
    pub minor: u32,
}

impl AbiVersion {
    /// Builds a version.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Whether a plugin of version `self` can be driven by a host of version `host`.
    pub fn is_compatible_with(self, host: Self) -> bool {
        self.major == host.major && self.minor <= host.minor
    }

    /// Packs the version into the `u64` the plain version symbol returns.
    pub const fn to_bits(self) -> u64 {
        ((self.major as u64) << 32) | self.minor as u64
    }

    /// Unpacks [`AbiVersion::to_bits`].
    pub const fn from_bits(bits: u64) -> Self {
        Self { major: (bits >> 32) as u32, minor: bits as u32 }
    }
}

impl std::fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The ABI version this SDK speaks.
pub const ABI_VERSION: AbiVersion = AbiVersion::new(1, 0);

/// The plain symbol (`extern "C" fn() -> u64`) every plugin exports with its ABI version.
pub const ABI_VERSION_SYMBOL: &[u8] = b"kyro_connector_abi_version\0";

/// The first byte of every payload; bumped when the payload encoding changes shape.
pub const PAYLOAD_VERSION: u8 = 2;

/// An error as it crosses the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct AbiError {
    /// The [`ErrorKind`] as a stable code.
    pub kind: u32,
    /// The message for people.
    pub message: RString,
    /// Extra detail, such as a panic location.
    pub detail: ROption<RString>,
}

const KIND_CODES: [(ErrorKind, u32); 9] = [
    (ErrorKind::InvalidRequest, 1),
    (ErrorKind::Unsupported, 2),
    (ErrorKind::LimitExceeded, 3),
    (ErrorKind::Unavailable, 4),
    (ErrorKind::Timeout, 5),
    (ErrorKind::Configuration, 6),
    (ErrorKind::Panicked, 7),
    (ErrorKind::Quarantined, 8),
    (ErrorKind::Internal, 9),
];

fn kind_code(kind: ErrorKind) -> u32 {
    KIND_CODES.iter().find(|(candidate, _)| *candidate == kind).map_or(9, |(_, code)| *code)
}

fn kind_from_code(code: u32) -> ErrorKind {
    KIND_CODES
        .iter()
        .find(|(_, candidate)| *candidate == code)
        .map_or(ErrorKind::Internal, |(kind, _)| *kind)
}

impl From<&ConnectorError> for AbiError {
    fn from(err: &ConnectorError) -> Self {
        Self {
            kind: kind_code(err.kind()),
            message: RString::from(err.message()),
            detail: ROption::RNone,
        }
    }
}

impl From<AbiError> for ConnectorError {
    fn from(err: AbiError) -> Self {
        let message = match err.detail {
            ROption::RSome(detail) => format!("{} ({detail})", err.message),
            ROption::RNone => err.message.into_string(),
        };
        Self::new(kind_from_code(err.kind), message)
    }
}

pub use objects::{AbiConnector, AbiConnector_TO, AbiHostLog, AbiHostLog_TO};

/// An owned [`AbiConnector`] trait object.
pub type AbiConnectorBox = AbiConnector_TO<'static, RBox<()>>;

/// An owned [`AbiHostLog`] trait object.
pub type AbiHostLogBox = AbiHostLog_TO<'static, RBox<()>>;

/// The root module every plugin exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ConnectorModuleRef)))]
#[sabi(missing_field(panic))]
pub struct ConnectorModule {
    /// The ABI version the plugin was built against (also exported as a plain symbol).
    pub abi_version: AbiVersion,
    /// The plugin's [`PluginInfo`](crate::PluginInfo) as a payload.
    pub plugin_info: extern "C" fn() -> RResult<RVec<u8>, AbiError>,
    /// Opens a connector from JSON configuration text.
    #[sabi(last_prefix_field)]
    pub open:
        extern "C" fn(config: RStr<'_>, log: AbiHostLogBox) -> RResult<AbiConnectorBox, AbiError>,
}

impl RootModule for ConnectorModuleRef {
    declare_root_module_statics! {ConnectorModuleRef}
    const BASE_NAME: &'static str = "kyro_connector";
    const NAME: &'static str = "kyro_connector";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// A request, borrowed, as the host encodes it.
#[cfg(feature = "loader")]
#[derive(Serialize)]
pub(crate) enum RequestRef<'a> {
    Describe,
    Search { scope: &'a Scope, request: &'a SearchRequest },
    Fetch { scope: &'a Scope, ids: &'a [DocumentId] },
    Upsert { scope: &'a Scope, document: &'a Document },
    Delete { scope: &'a Scope, id: &'a DocumentId },
    Watermark { scope: &'a Scope },
    SnapshotVersion { scope: &'a Scope },
    Health,
    CertificationSeed { scope: &'a Scope, documents: &'a [Document] },
    CertificationPurge { scope: &'a Scope },
}

/// A request, owned, as the plugin decodes it. Same variants, same order as [`RequestRef`].
#[derive(Deserialize)]
enum Request {
    Describe,
    Search { scope: Scope, request: SearchRequest },
    Fetch { scope: Scope, ids: Vec<DocumentId> },
    Upsert { scope: Scope, document: Document },
    Delete { scope: Scope, id: DocumentId },
    Watermark { scope: Scope },
    SnapshotVersion { scope: Scope },
    Health,
    CertificationSeed { scope: Scope, documents: Vec<Document> },
    CertificationPurge { scope: Scope },
}

/// A successful answer.
#[derive(Serialize, Deserialize)]
pub(crate) enum Response {
    Describe(CapabilityManifest),
    /// Encoded by [`search::SearchAnswer`] and decoded by [`decode_search`], which skip this type.
    Search(search::WireSearch),
    Fetch(Vec<StoredDocument>),
    Mutation(MutationAck),
    Watermark(Watermark),
    SnapshotVersion(SnapshotVersion),
    Health(ConnectorHealth),
    Done,
}

/// Query embeddings cross the boundary as one little-endian byte string rather than a sequence
/// of numbers: one length prefix and a copy, instead of a serializer call per dimension. It keeps
/// the boundary's cost per search well under its budget (see `docs/benchmarks.md`).
pub(crate) mod embedding_bytes {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::Embedding;

    pub(crate) fn serialize<S: Serializer>(
        embedding: &Embedding,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        if cfg!(target_endian = "little") {
            serializer.serialize_bytes(bytemuck::cast_slice(embedding.as_slice()))
        } else {
            let bytes: Vec<u8> =
                embedding.as_slice().iter().flat_map(|value| value.to_le_bytes()).collect();
            serializer.serialize_bytes(&bytes)
        }
    }

    /// [`serialize`] for fields that hold a reference.
    pub(crate) fn serialize_ref<S: Serializer>(
        embedding: &&Embedding,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serialize(embedding, serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Embedding, D::Error> {
        let bytes = <&'de [u8]>::deserialize(deserializer)?;
        if bytes.len() % 4 != 0 {
            return Err(D::Error::custom("embedding bytes are not a whole number of f32 values"));
        }
        let mut values = SPARE.take();
        values.clear();
        values.extend(
            bytes
                .chunks_exact(4)
                .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])),
        );
        Embedding::new(values).map_err(D::Error::custom)
    }

    thread_local! {
        /// The previous call's query vector, whose allocation the next decode on this thread
        /// reuses: a fresh multi-kilobyte allocation per call costs more than the copy, because
        /// glibc consolidates its small-chunk bins on every large request.
        static SPARE: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    }

    /// Hands a finished request's vector back for reuse.
    pub(crate) fn recycle(embedding: Embedding) {
        SPARE.set(embedding.into());
    }
}

/// Encodes a payload: the version byte, then postcard.
///
/// `size_hint` is the expected encoded size, so the buffer is allocated once.
pub(crate) fn encode<T: Serialize>(value: &T, size_hint: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(size_hint + 1);
    bytes.push(PAYLOAD_VERSION);
    postcard::to_extend(value, bytes)
        .map_err(|err| ConnectorError::internal(format!("failed to encode payload: {err}")))
}

/// Decodes a payload, checking the version byte.
pub(crate) fn decode<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T> {
    postcard::from_bytes(payload_body(bytes)?).map_err(decode_error)
}

/// The payload after its version byte, which must be [`PAYLOAD_VERSION`].
fn payload_body(bytes: &[u8]) -> Result<&[u8]> {
    match bytes.split_first() {
        Some((&PAYLOAD_VERSION, body)) => Ok(body),
        Some((version, _)) => Err(ConnectorError::internal(format!(
            "payload version {version} is not {PAYLOAD_VERSION}, the version this side speaks"
        ))),
        None => Err(ConnectorError::internal("empty payload")),
    }
}

fn decode_error(err: postcard::Error) -> ConnectorError {
    ConnectorError::internal(format!("failed to decode payload: {err}"))
}

/// Decodes the answer to a search in `scope`: the hits with their scopes filled in (see
/// [`search`]).
#[cfg(feature = "loader")]
pub(crate) fn decode_search(bytes: &[u8], scope: &Scope) -> Result<SearchResponse> {
    use serde::de::DeserializeSeed;
    let body = payload_body(bytes)?;
    // The variant index leads as a varint, one byte for an index under 128.
    if body.first().copied() != Some(search::SEARCH_VARIANT) {
        return Err(ConnectorError::internal(
            "plugin answered search with a response of another operation",
        ));
    }
    let mut deserializer = postcard::Deserializer::from_bytes(body);
    search::SearchAnswerSeed { scope }.deserialize(&mut deserializer).map_err(decode_error)
}

/// Encodes a payload into `buffer` (cleared first), reusing its allocation.
#[cfg(feature = "loader")]
pub(crate) fn encode_into_vec<T: Serialize>(value: &T, buffer: &mut Vec<u8>) -> Result<()> {
    buffer.clear();
    buffer.push(PAYLOAD_VERSION);
    let taken = std::mem::take(buffer);
    *buffer = postcard::to_extend(value, taken)
        .map_err(|err| ConnectorError::internal(format!("failed to encode payload: {err}")))?;
    Ok(())
}

/// Encodes a payload into an `RVec` (cleared first), reusing its allocation.
fn encode_into<T: Serialize>(value: &T, buffer: &mut RVec<u8>) -> Result<()> {
    buffer.clear();
    buffer.push(PAYLOAD_VERSION);
    postcard::serialize_with_flavor(value, RVecFlavor { buffer })
        .map_err(|err| ConnectorError::internal(format!("failed to encode payload: {err}")))
}

/// A postcard output that appends to a borrowed `RVec`, copying slices whole.
struct RVecFlavor<'a> {
    buffer: &'a mut RVec<u8>,
}

impl postcard::ser_flavors::Flavor for RVecFlavor<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.buffer.extend_from_copy_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.buffer.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

fn dispatch<C: Connector + ?Sized>(
    connector: &C,
    request: &[u8],
    response: &mut RVec<u8>,
) -> Result<()> {
    let answer = match decode::<Request>(request)? {
        Request::Describe => Response::Describe(connector.describe()),
        Request::Search { scope, request } => {
            let answer = connector.search(&scope, &request);
            embedding_bytes::recycle(request.embedding);
            return encode_into(
                &search::SearchAnswer { scope: &scope, response: &answer? },
                response,
            );
        }
        Request::Fetch { scope, ids } => Response::Fetch(connector.fetch(&scope, &ids)?),
        Request::Upsert { scope, document } => {
            Response::Mutation(connector.upsert(&scope, &document)?)
        }
        Request::Delete { scope, id } => Response::Mutation(connector.delete(&scope, &id)?),
        Request::Watermark { scope } => Response::Watermark(connector.watermark(&scope)?),
        Request::SnapshotVersion { scope } => {
            Response::SnapshotVersion(connector.snapshot_version(&scope)?)
        }
        Request::Health => Response::Health(connector.health()?),
        Request::CertificationSeed { scope, documents } => {
            crate::ensure_certification_scope(&scope)?;
            connector.certification_seed(&scope, &documents)?;
            Response::Done
        }
        Request::CertificationPurge { scope } => {
            crate::ensure_certification_scope(&scope)?;
            connector.certification_purge(&scope)?;
            Response::Done
        }
    };
    encode_into(&answer, response)
}

/// Runs an encoded request against an in-process connector through the same decoder a plugin
/// uses, and returns the encoded response. For certification checks that must send payloads the
/// typed API cannot build (an empty scope, a malformed filter key).
///
/// # Errors
///
/// What the decoder or the connector answered.
pub fn dispatch_raw(connector: &dyn Connector, request: &[u8]) -> Result<Vec<u8>> {
    let mut response = RVec::new();
    dispatch(connector, request, &mut response)?;
    Ok(response.into_vec())
}

/// Payloads that bypass the typed API's validation, for certification's boundary checks.
pub mod unchecked {
    use serde::Serialize;

    use super::{PAYLOAD_VERSION, embedding_bytes};
    use crate::{ConnectorError, Embedding, Result};

    #[derive(Serialize)]
    struct Scope<'a> {
        tenant_id: &'a str,
        namespace: &'a str,
    }

    #[derive(Serialize)]
    enum Filter<'a> {
        Exact { key: &'a str, value: &'a str },
    }

    #[derive(Serialize)]
    struct Search<'a> {
        #[serde(serialize_with = "embedding_bytes::serialize_ref")]
        embedding: &'a Embedding,
        top_k: u32,
        filter: Option<Filter<'a>>,
        include_content: bool,
    }

    /// Mirrors the first variants of the real request enum, in the same order, so the encoding
    /// is what a host would send if it skipped validation.
    #[derive(Serialize)]
    enum Request<'a> {
        Describe,
        Search { scope: Scope<'a>, request: Search<'a> },
        Fetch { scope: Scope<'a>, ids: &'a [&'a str] },
    }

    fn encode(request: &Request<'_>) -> Result<Vec<u8>> {
        let mut bytes = vec![PAYLOAD_VERSION];
        bytes = postcard::to_extend(request, bytes)
            .map_err(|err| ConnectorError::internal(format!("failed to encode payload: {err}")))?;
        Ok(bytes)
    }

    /// A fetch with any tenant and namespace text, empty included.
    ///
    /// # Errors
    ///
    /// Encoding failed.
    pub fn fetch(tenant_id: &str, namespace: &str, ids: &[&str]) -> Result<Vec<u8>> {
        encode(&Request::Fetch { scope: Scope { tenant_id, namespace }, ids })
    }

    /// A search with an `exact` filter whose key is any text.
    ///
    /// # Errors
    ///
    /// Encoding failed.
    pub fn search_with_filter_key(
        tenant_id: &str,
        namespace: &str,
        embedding: &Embedding,
        key: &str,
        value: &str,
    ) -> Result<Vec<u8>> {
        let _ = Request::Describe;
        encode(&Request::Search {
            scope: Scope { tenant_id, namespace },
            request: Search {
                embedding,
                top_k: 10,
                filter: Some(Filter::Exact { key, value }),
                include_content: false,
            },
        })
    }
}

/// Turns a caught panic payload into an error.
pub(crate) fn panic_error(payload: &(dyn std::any::Any + Send)) -> ConnectorError {
    let text = payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned());
    ConnectorError::new(ErrorKind::Panicked, format!("connector panicked: {text}"))
}

/// Runs `body`, turning a panic into an error.
fn guarded<T>(body: impl FnOnce() -> Result<T>) -> RResult<T, AbiError> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => RResult::ROk(value),
        Ok(Err(err)) => RResult::RErr(AbiError::from(&err)),
        Err(payload) => RResult::RErr(AbiError::from(&panic_error(payload.as_ref()))),
    }
}

/// A connector on the plugin side of the boundary.
struct Exported<C> {
    connector: C,
}

impl<C: Connector> AbiConnector for Exported<C> {
    fn call(&self, request: RSlice<'_, u8>, response: &mut RVec<u8>) -> RResult<(), AbiError> {
        guarded(|| dispatch(&self.connector, request.as_slice(), response))
    }
}

/// Items the export macro expands to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, ROOT_MODULE_LOADER_NAME,
        RootModuleResult,
    };
    use abi_stable::prefix_type::PrefixTypeTrait;

    use super::{
        AbiConnectorBox, AbiHostLogBox, AbiVersion, ConnectorModule, ConnectorModuleRef, Exported,
        encode, guarded,
    };
    use crate::{ConnectorConfig, ConnectorPlugin, HostContext, LogLevel};
    use abi_stable::sabi_trait::TD_Opaque;
    use abi_stable::std_types::{RResult, RStr, RVec};

    /// Builds the root module for connector type `C`.
    pub fn root_module<C: ConnectorPlugin>(abi_version: AbiVersion) -> ConnectorModuleRef {
        ConnectorModule { abi_version, plugin_info: plugin_info::<C>, open: open::<C> }
            .leak_into_prefix()
    }

    extern "C" fn plugin_info<C: ConnectorPlugin>() -> RResult<RVec<u8>, super::AbiError> {
        guarded(|| encode(&C::plugin_info(), 1024)).map(RVec::from)
    }

    extern "C" fn open<C: ConnectorPlugin>(
        config: RStr<'_>,
        log: AbiHostLogBox,
    ) -> RResult<AbiConnectorBox, super::AbiError> {
        guarded(|| {
            silence_plugin_panic_output();
            let host = HostContext::new(move |level: LogLevel, message: &str| {
                log.log(level as u8, message.into())
            });
            let connector = C::open(&ConnectorConfig::from_json(config.as_str()), host)?;
            Ok(AbiConnectorBox::from_value(Exported { connector }, TD_Opaque))
        })
    }

    /// A cdylib has its own copy of std and so its own panic hook. Panics are caught and returned
    /// to the host as errors, which decides what to log; the plugin's default hook would print
    /// the message (which may quote inputs) straight to stderr, bypassing redaction.
    fn silence_plugin_panic_output() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    }
}

/// Turns a [`ConnectorPlugin`](crate::ConnectorPlugin) into a loadable cdylib: exports the ABI
/// version symbol and the root module. Invoke it once, at the root of a crate with
/// `crate-type = ["cdylib", "rlib"]`, as the
/// [minimal connector](crate#a-complete-minimal-connector) does.
///
/// Linking two crates that both invoke it into one binary fails with a duplicate symbol: load
/// connectors as files, and link at most one as an `rlib` (for its own tests).
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        $crate::__export_connector_with_abi_version!($connector, $crate::abi::ABI_VERSION);
    };
}

/// [`export_connector!`] with an explicit ABI version, for the loader's own tests of version
/// mismatches. Not for connectors.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_connector_with_abi_version {
    ($connector:ty, $abi_version:expr) => {
        /// The ABI version this plugin was built against, read by the loader before anything else.
        #[unsafe(no_mangle)]
        pub extern "C" fn kyro_connector_abi_version() -> u64 {
            $crate::abi::AbiVersion::to_bits($abi_version)
        }

        /// The `abi_stable` library header; the name is `abi_stable`'s root module loader name,
        /// checked against `ROOT_MODULE_LOADER_NAME` by the SDK's tests.
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static KYRO_CONNECTOR_LIB_HEADER: $crate::abi::__private::LibHeader = {
            fn root_module() -> $crate::abi::ConnectorModuleRef {
                $crate::abi::__private::root_module::<$connector>($abi_version)
            }
            extern "C" fn erased_root_module() -> $crate::abi::__private::RootModuleResult {
                $crate::abi::__private::__call_root_module_loader(root_module)
            }
            // SAFETY: `erased_root_module` returns the prefix reference of a
            // `ConnectorModuleRef`, the module type named here.
            unsafe {
                $crate::abi::__private::LibHeader::from_constructor::<$crate::abi::ConnectorModuleRef>(
                    erased_root_module,
                    $crate::abi::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}
