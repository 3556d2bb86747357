//! The connector contract of sluice.
//!
//! Everything a connector crate needs to plug into the runtime lives here and
//! nothing else does: the source and sink traits, the typed record model that
//! converters turn into JSON or Avro, config definitions with validation, and
//! the offset types a source uses to resume. This crate depends on no other
//! crate of the workspace, so connectors never reach into the runtime.

pub mod batch;
pub mod calendar;
pub mod column_mapping;
pub mod config;
pub mod context;
pub mod database_url;
pub mod debezium;
pub mod decimal;
pub mod error;
pub mod filters;
pub mod footprint;
pub mod logical;
pub mod modes;
pub mod offset;
pub mod plugin;
#[cfg(feature = "postgres-tls")]
pub mod postgres_tls;
pub mod record;
pub mod schema;
pub mod sink;
pub mod snapshot_markers;
pub mod snapshot_select;
pub mod source;
pub mod source_settings;
pub mod text;
pub mod topic_naming;
pub mod transaction;
pub mod value;

pub use batch::{Batch, BatchLimit};
pub use config::{ConfigDef, ConfigKey, ConfigType, ConfigValue, ConnectorConfig, Importance};
pub use context::{
    bounded_source_context, source_context, Checkpoint, DurableOffsets, Emitted, Emitter,
    ProgressReader, RuntimeEnd, Shutdown, SourceContext, TableProgress, TaskProgress, TaskRecords,
    TopicReader,
};
pub use error::{ConfigError, ConnectorError};
pub use offset::{SourceOffset, SourcePartition};
pub use plugin::{PluginInfo, PluginKind};
pub use record::{SinkRecord, SourceRecord, TopicKind};
pub use schema::{Field, Schema, SchemaKind};
pub use sink::{FieldSelection, FieldSelector, SinkConnector, SinkTask};
pub use source::{SourceConnector, SourceTask, StopReason, TopicSchemas};
pub use text::Text;
pub use value::Value;
