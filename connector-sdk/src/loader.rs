//! The host side of the plugin boundary: load a connector cdylib from disk and drive it through
//! the same [`Connector`] trait as an in-process connector.
//!
//! Loading order, each step refusing with a one-line [`LoadError`]:
//! 1. the file exists and is read once for its SHA-256;
//! 2. `libloading` opens it and reads the plain ABI version symbol, which must be compatible with
//!    this host's [`ABI_VERSION`] — before any `abi_stable` code of the plugin runs;
//! 3. `abi_stable` checks its own header and the root module's layout;
//! 4. the plugin describes itself ([`PluginInfo`]) without opening a store.
//!
//! Libraries are never unloaded: a connector's code may still be running on a timed-out thread.

use std::path::{Path, PathBuf};

use abi_stable::library::lib_header_from_path;
use abi_stable::sabi_trait::TD_Opaque;
use std::cell::RefCell;

use abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use sha2::{Digest, Sha256};

use crate::abi::{
    ABI_VERSION, ABI_VERSION_SYMBOL, AbiConnectorBox, AbiHostLog, AbiHostLogBox, AbiVersion,
    ConnectorModuleRef, RequestRef, Response, decode, decode_search, encode_into_vec,
};
use crate::config::{ConnectorConfig, HostContext, LogLevel};
use crate::connector::{Connector, ConnectorHealth, PluginInfo, SearchRequest, SearchResponse};
use crate::manifest::CapabilityManifest;
use crate::{
    ConnectorError, Document, DocumentId, MutationAck, Result, Scope, SnapshotVersion,
    StoredDocument, Watermark,
};

/// Why a plugin file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file is not there.
    #[error("plugin file {path} does not exist")]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("failed to read plugin file {path}: {source}")]
    Read {
        /// The path given.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not a dynamic library this platform can load.
    #[error("{path} is not a loadable dynamic library: {reason}")]
    NotALibrary {
        /// The path given.
        path: PathBuf,
        /// What the dynamic loader said.
        reason: String,
    },
    /// The library does not export the KyroDB version symbol.
    #[error(
        "{path} is not a KyroDB connector plugin: it does not export kyro_connector_abi_version"
    )]
    NotAPlugin {
        /// The path given.
        path: PathBuf,
    },
    /// The plugin speaks another ABI version.
    #[error(
        "plugin {path} was built for connector ABI {plugin}, but this host speaks connector ABI {host}"
    )]
    AbiMismatch {
        /// The path given.
        path: PathBuf,
        /// The plugin's version.
        plugin: AbiVersion,
        /// The host's version.
        host: AbiVersion,
    },
    /// `abi_stable` refused the library's header or layout.
    #[error("plugin {path} failed the ABI layout check: {reason}")]
    Layout {
        /// The path given.
        path: PathBuf,
        /// The first line of `abi_stable`'s explanation.
        reason: String,
    },
    /// The plugin could not describe itself.
    #[error("plugin {path} failed to describe itself: {source}")]
    Info {
        /// The path given.
        path: PathBuf,
        /// What it answered.
        source: ConnectorError,
    },
}

/// A loaded plugin file, ready to open connectors.
#[derive(Clone)]
pub struct Plugin {
    path: PathBuf,
    sha256: String,
    abi_version: AbiVersion,
    info: PluginInfo,
    module: ConnectorModuleRef,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("abi_version", &self.abi_version)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Loads the plugin at `path`, checking its ABI version first.
///
/// # Errors
///
/// See [`LoadError`]; each variant is a one-line explanation naming the file.
pub fn load(path: &Path) -> Result<Plugin, LoadError> {
    let path = path.to_path_buf();
    if !path.exists() {
        return Err(LoadError::Missing { path });
    }
    let bytes =
        std::fs::read(&path).map_err(|source| LoadError::Read { path: path.clone(), source })?;
    let sha256 = hex(&Sha256::digest(&bytes));
    let abi_version = read_abi_version(&path)?;
    if !abi_version.is_compatible_with(ABI_VERSION) {
        return Err(LoadError::AbiMismatch { path, plugin: abi_version, host: ABI_VERSION });
    }
    let header = lib_header_from_path(&loadable(&path)).map_err(|err| LoadError::Layout {
        path: path.clone(),
        reason: first_line(&err.to_string()),
    })?;
    let module = header.init_root_module::<ConnectorModuleRef>().map_err(|err| {
        LoadError::Layout { path: path.clone(), reason: first_line(&err.to_string()) }
    })?;
    let info = match module.plugin_info()() {
        RResult::ROk(bytes) => decode::<PluginInfo>(bytes.as_slice()),
        RResult::RErr(err) => Err(ConnectorError::from(err)),
    }
    .map_err(|source| LoadError::Info { path: path.clone(), source })?;
    Ok(Plugin { path, sha256, abi_version, info, module })
}

fn read_abi_version(path: &Path) -> Result<AbiVersion, LoadError> {
    // SAFETY: loading a library runs its initializers. That is the point of a plugin; the file
    // was named by the operator. The handle is leaked below, so nothing loaded is ever unloaded.
    let library = unsafe { libloading::Library::new(loadable(path)) }.map_err(|err| {
        LoadError::NotALibrary { path: path.to_path_buf(), reason: first_line(&err.to_string()) }
    })?;
    // SAFETY: the symbol is declared by the export macro as `extern "C" fn() -> u64`; a library
    // that exports the name with another type is not built with this SDK and fails later checks.
    let bits = unsafe {
        let symbol = library
            .get::<extern "C" fn() -> u64>(ABI_VERSION_SYMBOL)
            .map_err(|_| LoadError::NotAPlugin { path: path.to_path_buf() })?;
        symbol()
    };
    std::mem::forget(library);
    Ok(AbiVersion::from_bits(bits))
}

/// The path the dynamic loader is given: it looks a bare file name up in the system's library
/// directories, not in the current directory, so `libmine.so` becomes `./libmine.so`.
fn loadable(path: &Path) -> PathBuf {
    if path.parent().is_some_and(|parent| parent.as_os_str().is_empty()) {
        Path::new(".").join(path)
    } else {
        path.to_path_buf()
    }
}

fn first_line(text: &str) -> String {
    text.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or("no detail").to_owned()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

impl Plugin {
    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's SHA-256, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The ABI version it was built against.
    pub fn abi_version(&self) -> AbiVersion {
        self.abi_version
    }

    /// What it says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Opens a connector; its log lines go to `host`.
    ///
    /// # Errors
    ///
    /// What the plugin's `open` answered (typically `Configuration` or `Unavailable`).
    pub fn open(&self, config: &ConnectorConfig, host: HostContext) -> Result<ForeignConnector> {
        let log = AbiHostLogBox::from_value(HostLogAdapter { host }, TD_Opaque);
        let connector = match self.module.open()(RStr::from_str(config.as_json()), log) {
            RResult::ROk(connector) => connector,
            RResult::RErr(err) => return Err(err.into()),
        };
        let mut foreign = ForeignConnector { connector, manifest: CapabilityManifest::closed() };
        foreign.manifest = match foreign.call(&RequestRef::Describe)? {
            Response::Describe(manifest) => manifest,
            _ => return Err(unexpected("describe")),
        };
        Ok(foreign)
    }
}

struct HostLogAdapter {
    host: HostContext,
}

impl AbiHostLog for HostLogAdapter {
    fn log(&self, level: u8, message: RStr<'_>) {
        self.host.log(LogLevel::from_u8(level), message.as_str());
    }
}

/// A connector living in a loaded plugin, driven through the [`Connector`] trait.
///
/// Calls run on the caller's thread and are not bounded in time; wrap it in a
/// [`GuardedConnector`](crate::guard::GuardedConnector) to bound them and quarantine on panic.
pub struct ForeignConnector {
    connector: AbiConnectorBox,
    manifest: CapabilityManifest,
}

fn unexpected(operation: &str) -> ConnectorError {
    ConnectorError::internal(format!(
        "plugin answered {operation} with a response of another operation"
    ))
}

/// Per-thread request and response buffers, reused across calls so a call allocates no buffer.
struct Buffers {
    request: Vec<u8>,
    response: RVec<u8>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = const { RefCell::new(Buffers { request: Vec::new(), response: RVec::new() }) };
}

/// Buffers that grew past this are released after the call rather than kept for the thread.
const MAX_RETAINED_BUFFER_BYTES: usize = 1024 * 1024;

impl ForeignConnector {
    fn call(&self, request: &RequestRef<'_>) -> Result<Response> {
        self.call_decoding(request, |bytes| decode(bytes))
    }

    /// Sends `request` and decodes the answer with `decode_answer`, on this thread's buffers.
    fn call_decoding<T>(
        &self,
        request: &RequestRef<'_>,
        decode_answer: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        BUFFERS.with(|buffers| match buffers.try_borrow_mut() {
            Ok(mut buffers) => {
                let Buffers { request: request_bytes, response } = &mut *buffers;
                let result = self
                    .call_with(request, request_bytes, response)
                    .and_then(|()| decode_answer(response.as_slice()));
                if request_bytes.capacity() > MAX_RETAINED_BUFFER_BYTES {
                    *request_bytes = Vec::new();
                }
                if response.capacity() > MAX_RETAINED_BUFFER_BYTES {
                    *response = RVec::new();
                }
                result
            }
            // Only reachable if a connector calls back into the host on the same thread.
            Err(_) => {
                let mut response = RVec::new();
                self.call_with(request, &mut Vec::new(), &mut response)?;
                decode_answer(response.as_slice())
            }
        })
    }

    /// Sends an already encoded request (see [`crate::abi::unchecked`]) and returns the encoded
    /// response, for certification checks of the plugin's own input validation.
    ///
    /// # Errors
    ///
    /// What the plugin answered.
    pub fn call_raw(&self, request: &[u8]) -> Result<Vec<u8>> {
        let mut response = RVec::new();
        match self.connector.call(RSlice::from_slice(request), &mut response) {
            RResult::ROk(()) => Ok(response.into_vec()),
            RResult::RErr(err) => Err(err.into()),
        }
    }

    fn call_with(
        &self,
        request: &RequestRef<'_>,
        request_bytes: &mut Vec<u8>,
        response: &mut RVec<u8>,
    ) -> Result<()> {
        encode_into_vec(request, request_bytes)?;
        match self.connector.call(RSlice::from_slice(request_bytes), response) {
            RResult::ROk(()) => Ok(()),
            RResult::RErr(err) => Err(err.into()),
        }
    }
}

impl Connector for ForeignConnector {
    fn describe(&self) -> CapabilityManifest {
        self.manifest.clone()
    }

    fn search(&self, scope: &Scope, request: &SearchRequest) -> Result<SearchResponse> {
        self.call_decoding(&RequestRef::Search { scope, request }, |bytes| {
            decode_search(bytes, scope)
        })
    }

    fn fetch(&self, scope: &Scope, ids: &[DocumentId]) -> Result<Vec<StoredDocument>> {
        match self.call(&RequestRef::Fetch { scope, ids })? {
            Response::Fetch(documents) => Ok(documents),
            _ => Err(unexpected("fetch")),
        }
    }

    fn upsert(&self, scope: &Scope, document: &Document) -> Result<MutationAck> {
        match self.call(&RequestRef::Upsert { scope, document })? {
            Response::Mutation(ack) => Ok(ack),
            _ => Err(unexpected("upsert")),
        }
    }

    fn delete(&self, scope: &Scope, id: &DocumentId) -> Result<MutationAck> {
        match self.call(&RequestRef::Delete { scope, id })? {
            Response::Mutation(ack) => Ok(ack),
            _ => Err(unexpected("delete")),
        }
    }

    fn watermark(&self, scope: &Scope) -> Result<Watermark> {
        match self.call(&RequestRef::Watermark { scope })? {
            Response::Watermark(watermark) => Ok(watermark),
            _ => Err(unexpected("watermark")),
        }
    }

    fn snapshot_version(&self, scope: &Scope) -> Result<SnapshotVersion> {
        match self.call(&RequestRef::SnapshotVersion { scope })? {
            Response::SnapshotVersion(version) => Ok(version),
            _ => Err(unexpected("snapshot_version")),
        }
    }

    fn health(&self) -> Result<ConnectorHealth> {
        match self.call(&RequestRef::Health)? {
            Response::Health(health) => Ok(health),
            _ => Err(unexpected("health")),
        }
    }

    fn certification_seed(&self, scope: &Scope, documents: &[Document]) -> Result<()> {
        match self.call(&RequestRef::CertificationSeed { scope, documents })? {
            Response::Done => Ok(()),
            _ => Err(unexpected("certification_seed")),
        }
    }

    fn certification_purge(&self, scope: &Scope) -> Result<()> {
        match self.call(&RequestRef::CertificationPurge { scope })? {
            Response::Done => Ok(()),
            _ => Err(unexpected("certification_purge")),
        }
    }
}
