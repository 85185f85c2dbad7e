//! The configuration keys every vector store shares, parsed together with a connector's own keys
//! from one flat table, and turned into the capability manifest.
//!
//! ```toml
//! dimension = 384                        # required, 1..=16384
//! distance = "cosine"                    # cosine (default) | l2 | inner_product
//! filterable_keys = ["lang", "year"]     # default: none
//! max_top_k = 100                        # default: the declared manifest's caps
//! max_fetch_ids = 100
//! max_response_bytes = 1048576
//! max_filter_nodes = 64
//! dsn = { env = "MY_STORE_DSN" }         # a connector's own key (here, a secret)
//! ```
//!
//! Parsing is the only thing it does: it does not resolve secrets or reach the store.

use std::collections::BTreeSet;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, Deserializer, Error as _, IntoDeserializer, MapAccess, Visitor,
};
use serde::{Deserialize, forward_to_deserialize_any};

use crate::manifest::{CapabilityManifest, Caps, Distance, FilterableKeys, VectorSpec};
use crate::{ConnectorError, FilterKey, Result};

/// A vector store's configuration: the keys every store shares, and the connector's own keys `S`,
/// in one flat table.
///
/// Deserializing it takes the shared keys listed below and hands every other key to `S`, which
/// should be a struct with `#[serde(deny_unknown_fields)]` so that a misspelled key is refused
/// (`()` when the connector has no keys of its own). Type every secret in `S` as a
/// [`SecretSource`](crate::SecretSource): that is what lets `kyro certify` and host startup find
/// it, replace it by a canary and prove it never leaks; a secret typed as a plain string is
/// invisible to those checks.
///
/// ```
/// use kyro_connector_sdk::{
///     CapabilityManifest, ConnectorConfig, Operation, OwnershipMode, SecretSource,
///     VectorStoreConfig,
/// };
/// use serde::Deserialize;
///
/// #[derive(Debug, Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct MyKeys {
///     dsn: SecretSource,
///     table: String,
/// }
///
/// let config = ConnectorConfig::from_json(
///     r#"{"dimension": 3, "filterable_keys": ["lang"], "max_top_k": 50,
///         "dsn": {"env": "MY_DSN"}, "table": "docs"}"#,
/// );
/// let config: VectorStoreConfig<MyKeys> = config.parse()?;
/// let declared = CapabilityManifest::closed()
///     .with_operation(Operation::Search)
///     .with_ownership_mode(OwnershipMode::EventFeed);
/// let manifest = config.manifest(declared)?;
/// assert_eq!(manifest.caps.max_top_k, 50);
/// assert_eq!(config.store.table, "docs");
///
/// let misspelled = ConnectorConfig::from_json(
///     r#"{"dimension": 3, "dsn": {"env": "MY_DSN"}, "tabel": "docs"}"#,
/// );
/// let err = misspelled.parse::<VectorStoreConfig<MyKeys>>().unwrap_err();
/// assert!(err.message().contains("unknown field `tabel`"));
/// # Ok::<(), kyro_connector_sdk::ConnectorError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct VectorStoreConfig<S = ()> {
    /// `dimension`: how many dimensions every vector has (required).
    pub dimension: u32,
    /// `distance`: `cosine` (the default), `l2` or `inner_product`.
    pub distance: Distance,
    /// `filterable_keys`: the metadata keys filters may use (default: none).
    pub filterable_keys: BTreeSet<FilterKey>,
    /// `max_top_k`: the largest `top_k`; the declared manifest's cap when absent.
    pub max_top_k: Option<u32>,
    /// `max_fetch_ids`: the most ids in one fetch; the declared manifest's cap when absent.
    pub max_fetch_ids: Option<u32>,
    /// `max_response_bytes`: the most content in one answer, in bytes; the declared manifest's
    /// cap when absent.
    pub max_response_bytes: Option<u64>,
    /// `max_filter_nodes`: the most nodes in one filter; the declared manifest's cap when absent.
    pub max_filter_nodes: Option<u32>,
    /// Every other key, as the connector's own type.
    pub store: S,
}

impl<S> VectorStoreConfig<S> {
    /// The manifest an opened connector declares: `declared` (its operations, ownership modes
    /// and watermark kind) with this configuration's vector spec, filterable keys and caps. A cap
    /// left out of the configuration keeps `declared`'s value.
    ///
    /// # Errors
    ///
    /// `Configuration`, naming the key, for a dimension outside 1..=16384 or a cap outside
    /// 1..= the contract's limit ([`Caps::CONTRACT`]).
    pub fn manifest(&self, declared: CapabilityManifest) -> Result<CapabilityManifest> {
        in_range("dimension", u64::from(self.dimension), MAX_DIMENSION)?;
        let defaults = declared.caps;
        let caps = Caps {
            max_top_k: self.max_top_k.unwrap_or(defaults.max_top_k),
            max_fetch_ids: self.max_fetch_ids.unwrap_or(defaults.max_fetch_ids),
            max_response_bytes: self.max_response_bytes.unwrap_or(defaults.max_response_bytes),
            max_filter_nodes: self.max_filter_nodes.unwrap_or(defaults.max_filter_nodes),
            ..defaults
        };
        let contract = Caps::CONTRACT;
        in_range("max_top_k", caps.max_top_k.into(), contract.max_top_k.into())?;
        in_range("max_fetch_ids", caps.max_fetch_ids.into(), contract.max_fetch_ids.into())?;
        in_range("max_response_bytes", caps.max_response_bytes, contract.max_response_bytes)?;
        in_range(
            "max_filter_nodes",
            caps.max_filter_nodes.into(),
            contract.max_filter_nodes.into(),
        )?;
        Ok(declared
            .with_vector(VectorSpec { dimension: self.dimension, distance: self.distance })
            .with_filterable_keys(FilterableKeys::Listed(self.filterable_keys.clone()))
            .with_caps(caps))
    }
}

/// The contract's largest embedding dimension (`kyro_core::limits`).
const MAX_DIMENSION: u64 = 16_384;

fn in_range(key: &str, value: u64, max: u64) -> Result<()> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConnectorError::configuration(format!(
            "invalid connector config at `{key}`: must be in 1..={max}"
        )))
    }
}

impl<'de, S: Deserialize<'de>> Deserialize<'de> for VectorStoreConfig<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_map(ConfigVisitor(PhantomData))
    }
}

/// The shared keys, as they are met in the table.
#[derive(Default)]
struct Shared {
    dimension: Option<u32>,
    distance: Option<Distance>,
    filterable_keys: Option<BTreeSet<FilterKey>>,
    max_top_k: Option<u32>,
    max_fetch_ids: Option<u32>,
    max_response_bytes: Option<u64>,
    max_filter_nodes: Option<u32>,
}

/// Distance names as configuration spells them.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum DistanceName {
    Cosine,
    L2,
    InnerProduct,
}

impl From<DistanceName> for Distance {
    fn from(name: DistanceName) -> Self {
        match name {
            DistanceName::Cosine => Self::Cosine,
            DistanceName::L2 => Self::L2,
            DistanceName::InnerProduct => Self::InnerProduct,
        }
    }
}

impl Shared {
    /// Reads the value of `key` if it is a shared key; `false` when it is the connector's.
    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> std::result::Result<bool, A::Error> {
        fn once<T, E: de::Error>(
            slot: &mut Option<T>,
            key: &'static str,
            value: T,
        ) -> std::result::Result<(), E> {
            if slot.replace(value).is_some() {
                return Err(E::duplicate_field(key));
            }
            Ok(())
        }
        match key {
            "dimension" => once(&mut self.dimension, "dimension", map.next_value()?)?,
            "distance" => {
                once(&mut self.distance, "distance", map.next_value::<DistanceName>()?.into())?;
            }
            "filterable_keys" => {
                once(&mut self.filterable_keys, "filterable_keys", map.next_value()?)?;
            }
            "max_top_k" => once(&mut self.max_top_k, "max_top_k", map.next_value()?)?,
            "max_fetch_ids" => once(&mut self.max_fetch_ids, "max_fetch_ids", map.next_value()?)?,
            "max_response_bytes" => {
                once(&mut self.max_response_bytes, "max_response_bytes", map.next_value()?)?;
            }
            "max_filter_nodes" => {
                once(&mut self.max_filter_nodes, "max_filter_nodes", map.next_value()?)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

struct ConfigVisitor<S>(PhantomData<S>);

impl<'de, S: Deserialize<'de>> Visitor<'de> for ConfigVisitor<S> {
    type Value = VectorStoreConfig<S>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a table of connector configuration keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut own_keys = OwnKeys { map, shared: Shared::default() };
        let store = S::deserialize(&mut own_keys)?;
        // `S` normally reads the table to its end; whatever it left is refused here.
        own_keys.refuse_rest()?;
        let shared = own_keys.shared;
        Ok(VectorStoreConfig {
            dimension: shared.dimension.ok_or_else(|| A::Error::missing_field("dimension"))?,
            distance: shared.distance.unwrap_or(Distance::Cosine),
            filterable_keys: shared.filterable_keys.unwrap_or_default(),
            max_top_k: shared.max_top_k,
            max_fetch_ids: shared.max_fetch_ids,
            max_response_bytes: shared.max_response_bytes,
            max_filter_nodes: shared.max_filter_nodes,
            store,
        })
    }
}

/// The table as the connector's own type sees it: every entry except the shared keys, which are
/// read into `shared` on the way past.
struct OwnKeys<A> {
    map: A,
    shared: Shared,
}

impl<'de, A: MapAccess<'de>> OwnKeys<A> {
    /// The next key that is not a shared one.
    fn next_own_key(&mut self) -> std::result::Result<Option<String>, A::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            if !self.shared.read(&key, &mut self.map)? {
                return Ok(Some(key));
            }
        }
        Ok(None)
    }

    fn refuse_rest(&mut self) -> std::result::Result<(), A::Error> {
        match self.next_own_key()? {
            Some(key) => Err(A::Error::unknown_field(&key, &[])),
            None => Ok(()),
        }
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for &mut OwnKeys<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> std::result::Result<Option<K::Value>, Self::Error> {
        match self.next_own_key()? {
            Some(key) => seed.deserialize(key.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        self.map.next_value_seed(seed)
    }
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for &mut OwnKeys<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        visitor.visit_map(self)
    }

    /// A connector without keys of its own (`()`): any key left is unknown.
    fn deserialize_unit<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        self.refuse_rest()?;
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        self.deserialize_unit(visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests;
