//! sluice's schema registry without its HTTP face: Avro schemas parsed
//! ([`schema_text`], [`untrusted`]) into a model ([`avro_model`]) and
//! checked for compatibility ([`compat`]); subjects, versions and ids kept
//! by the [`Registry`] in a schema log ([`log`]) that a standalone registry
//! keeps in a file and a group of workers on a `_schemas` topic; and the
//! [`client`] of any Confluent-API registry. The runtime serves it over
//! Confluent's REST API.

pub mod avro_model;
pub mod client;
pub mod compat;
mod error;
pub mod log;
pub mod schema_text;
mod service;
mod state;
pub mod untrusted;

pub use avro_model::AvroModel;
pub use error::RegistryError;
pub use schema_text::{parse as parse_schema, ParsedSchema};
pub use service::{Registry, SchemaRequest, SubjectVersion, VersionSpec};
pub use state::Mode;
