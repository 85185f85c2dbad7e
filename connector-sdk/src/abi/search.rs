//! Search answers on the wire: a hit whose scope is the request's own crosses without it.
//!
//! A correct store answers a search with hits of the scope it was asked for, so repeating the
//! tenant and namespace in every hit is two strings per hit encoded by the plugin and decoded,
//! allocated and re-validated by the host: about a third of the boundary's cost per hit. The
//! plugin side compares each hit's scope with the request's and leaves it out when they are
//! equal; the host puts the request's scope (a reference count, see [`Scope`]) back. A hit of any
//! other scope crosses in full, so the host's scope check sees exactly what the connector
//! returned either way.
//!
//! The bytes are those of [`Response::Search`] holding a [`WireSearch`]; the encoder and the
//! decoder here produce and read them without building a `WireSearch`, and the tests check both
//! against the derived encoding.

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};

use crate::connector::{SearchResponse, Shortfall};
use crate::{DocumentId, Metadata, Revision, Scope, Watermark};

/// The position of `Search` among `Response`'s variants.
pub(crate) const SEARCH_VARIANT: u8 = 1;

const WIRE_SEARCH_FIELDS: &[&str] = &["hits", "shortfall"];

/// A search answer as it crosses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WireSearch {
    pub(crate) hits: Vec<WireHit>,
    pub(crate) shortfall: Option<Shortfall>,
}

/// One hit as it crosses: `scope` is `None` when it is the request's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WireHit {
    pub(crate) scope: Option<Scope>,
    pub(crate) id: DocumentId,
    pub(crate) content: Option<String>,
    pub(crate) metadata: Metadata,
    pub(crate) revision: Option<Revision>,
    pub(crate) watermark: Option<Watermark>,
    pub(crate) score: f32,
}

/// [`WireHit`], borrowed from a hit the connector returned.
#[derive(Serialize)]
struct WireHitRef<'a> {
    scope: Option<&'a Scope>,
    id: &'a DocumentId,
    content: &'a Option<String>,
    metadata: &'a Metadata,
    revision: &'a Option<Revision>,
    watermark: &'a Option<Watermark>,
    score: f32,
}

/// The plugin side: a connector's answer to a search in `scope`, encoded as
/// `Response::Search(WireSearch)` without building one.
pub(crate) struct SearchAnswer<'a> {
    pub(crate) scope: &'a Scope,
    pub(crate) response: &'a SearchResponse,
}

struct Hits<'a>(&'a SearchAnswer<'a>);

impl Serialize for Hits<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let hits = &self.0.response.hits;
        let mut seq = serializer.serialize_seq(Some(hits.len()))?;
        for hit in hits {
            let document = &hit.document;
            seq.serialize_element(&WireHitRef {
                scope: (document.scope != *self.0.scope).then_some(&document.scope),
                id: &document.id,
                content: &document.content,
                metadata: &document.metadata,
                revision: &document.revision,
                watermark: &document.watermark,
                score: hit.score,
            })?;
        }
        seq.end()
    }
}

struct Body<'a>(&'a SearchAnswer<'a>);

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut body = serializer.serialize_struct("WireSearch", WIRE_SEARCH_FIELDS.len())?;
        body.serialize_field("hits", &Hits(self.0))?;
        body.serialize_field("shortfall", &self.0.response.shortfall)?;
        body.end()
    }
}

impl Serialize for SearchAnswer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_variant(
            "Response",
            SEARCH_VARIANT.into(),
            "Search",
            &Body(self),
        )
    }
}

#[cfg(feature = "loader")]
pub(crate) use host::SearchAnswerSeed;

/// The host side, which only a host (the `loader` feature) decodes.
#[cfg(feature = "loader")]
mod host {
    use serde::Deserializer;
    use serde::de::{DeserializeSeed, EnumAccess, Error as _, SeqAccess, VariantAccess, Visitor};

    use super::{SEARCH_VARIANT, WIRE_SEARCH_FIELDS, WireHit};
    use crate::connector::{SearchResponse, Shortfall};
    use crate::{Scope, SearchHit, StoredDocument};

    /// `Response`'s variant names, for `deserialize_enum` (postcard reads only the index).
    const RESPONSE_VARIANTS: &[&str] = &[
        "Describe",
        "Search",
        "Fetch",
        "Mutation",
        "Watermark",
        "SnapshotVersion",
        "Health",
        "Done",
    ];

    impl WireHit {
        fn into_hit(self, request_scope: &Scope) -> SearchHit {
            SearchHit {
                document: StoredDocument {
                    scope: self.scope.unwrap_or_else(|| request_scope.clone()),
                    id: self.id,
                    content: self.content,
                    metadata: self.metadata,
                    revision: self.revision,
                    watermark: self.watermark,
                },
                score: self.score,
            }
        }
    }

    /// The host side: decodes a `Response::Search` into the hits a connector returned, putting the
    /// request's scope into every hit that crossed without one. Any other variant is an error.
    pub(crate) struct SearchAnswerSeed<'a> {
        pub(crate) scope: &'a Scope,
    }

    impl<'de> DeserializeSeed<'de> for SearchAnswerSeed<'_> {
        type Value = SearchResponse;

        fn deserialize<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<SearchResponse, D::Error> {
            deserializer.deserialize_enum("Response", RESPONSE_VARIANTS, self)
        }
    }

    impl<'de> Visitor<'de> for SearchAnswerSeed<'_> {
        type Value = SearchResponse;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a search response")
        }

        fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<SearchResponse, A::Error> {
            let (variant, access) = data.variant::<u32>()?;
            if variant != u32::from(SEARCH_VARIANT) {
                return Err(A::Error::custom(format!(
                    "plugin answered search with response variant {variant}"
                )));
            }
            access.newtype_variant_seed(BodySeed { scope: self.scope })
        }
    }

    struct BodySeed<'a> {
        scope: &'a Scope,
    }

    impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
        type Value = SearchResponse;

        fn deserialize<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<SearchResponse, D::Error> {
            deserializer.deserialize_struct("WireSearch", WIRE_SEARCH_FIELDS, self)
        }
    }

    impl<'de> Visitor<'de> for BodySeed<'_> {
        type Value = SearchResponse;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("hits and a shortfall")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SearchResponse, A::Error> {
            let hits = seq
                .next_element_seed(HitsSeed { scope: self.scope })?
                .ok_or_else(|| A::Error::invalid_length(0, &self))?;
            let shortfall = seq
                .next_element::<Option<Shortfall>>()?
                .ok_or_else(|| A::Error::invalid_length(1, &self))?;
            Ok(SearchResponse { hits, shortfall })
        }
    }

    struct HitsSeed<'a> {
        scope: &'a Scope,
    }

    /// Hits preallocated from the encoded count at most; a longer list grows as it decodes.
    const MAX_PREALLOCATED_HITS: usize = 1024;

    impl<'de> DeserializeSeed<'de> for HitsSeed<'_> {
        type Value = Vec<SearchHit>;

        fn deserialize<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Vec<SearchHit>, D::Error> {
            deserializer.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for HitsSeed<'_> {
        type Value = Vec<SearchHit>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of hits")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<SearchHit>, A::Error> {
            let mut hits =
                Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOCATED_HITS));
            while let Some(hit) = seq.next_element::<WireHit>()? {
                hits.push(hit.into_hit(self.scope));
            }
            Ok(hits)
        }
    }
}

impl WireSearch {
    /// The derived form of what [`SearchAnswer`] encodes, for tests.
    #[cfg(test)]
    pub(crate) fn of(scope: &Scope, response: &SearchResponse) -> super::Response {
        super::Response::Search(Self {
            hits: response
                .hits
                .iter()
                .map(|hit| WireHit {
                    scope: (hit.document.scope != *scope).then(|| hit.document.scope.clone()),
                    id: hit.document.id.clone(),
                    content: hit.document.content.clone(),
                    metadata: hit.document.metadata.clone(),
                    revision: hit.document.revision.clone(),
                    watermark: hit.document.watermark,
                    score: hit.score,
                })
                .collect(),
            shortfall: response.shortfall.clone(),
        })
    }
}
