//! The wire layer: every byte a client sees, as typed serde structs of the published Runtime
//! API v1 (`../shared/spec/runtime-contract.md`, the OpenAPI document wins), and the routes
//! they travel on.
//!
//! Request types validate into `kyro_core` types (the `validate`/`to_*` methods); response
//! types are built by the runtime and evidence layers from core values. This layer knows
//! nothing of HTTP, sessions, stores or state: it imports no other layer of the host, and no
//! core struct is serialized to a client except through a type here.

pub(crate) mod capture;
pub(crate) mod change;
pub(crate) mod error;
pub(crate) mod evidence;
pub(crate) mod feedback;
pub(crate) mod health;
pub(crate) mod packet;
pub(crate) mod replay;
pub(crate) mod request;
pub(crate) mod routes;
pub(crate) mod strict;
pub(crate) mod trace;
