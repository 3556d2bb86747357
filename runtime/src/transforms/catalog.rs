//! The transform and predicate classes sluice knows, by the class names
//! Connect and Debezium use (the simple name without the package is
//! accepted too), and what each is built from.

use sluice_connector_api::ConfigError;

use super::connect::{
    cast::Cast, extract_field::ExtractField, filter::Filter, flatten::Flatten, headers,
    hoist_field::HoistField, insert_field::InsertField, mask_field::MaskField,
    regex_router::RegexRouter, replace_field::ReplaceField, set_schema_metadata::SetSchemaMetadata,
    timestamp_converter::TimestampConverter, timestamp_router::TimestampRouter,
    value_to_key::ValueToKey,
};
use super::debezium::by_logical_table_router::ByLogicalTableRouter;
use super::debezium::event_router::EventRouter;
use super::debezium::extract_new_record_state::ExtractNewRecordState;
use super::debezium::header_to_value::HeaderToValue;
use super::fields::Side;
use super::predicates::{HasHeaderKey, RecordIsTombstone, TopicNameMatches};
use super::settings::Settings;
use super::{Predicate, Transform};

const CONNECT: &str = "org.apache.kafka.connect.transforms.";
const PREDICATES: &str = "org.apache.kafka.connect.transforms.predicates.";
const DEBEZIUM: &str = "io.debezium.transforms.";

/// The transform classes sluice implements, fully qualified.
pub const TRANSFORMS: &[&str] = &[
    "org.apache.kafka.connect.transforms.Cast$Key",
    "org.apache.kafka.connect.transforms.Cast$Value",
    "org.apache.kafka.connect.transforms.DropHeaders",
    "org.apache.kafka.connect.transforms.ExtractField$Key",
    "org.apache.kafka.connect.transforms.ExtractField$Value",
    "org.apache.kafka.connect.transforms.Filter",
    "org.apache.kafka.connect.transforms.Flatten$Key",
    "org.apache.kafka.connect.transforms.Flatten$Value",
    "org.apache.kafka.connect.transforms.HeaderFrom$Key",
    "org.apache.kafka.connect.transforms.HeaderFrom$Value",
    "org.apache.kafka.connect.transforms.HoistField$Key",
    "org.apache.kafka.connect.transforms.HoistField$Value",
    "org.apache.kafka.connect.transforms.InsertField$Key",
    "org.apache.kafka.connect.transforms.InsertField$Value",
    "org.apache.kafka.connect.transforms.InsertHeader",
    "org.apache.kafka.connect.transforms.MaskField$Key",
    "org.apache.kafka.connect.transforms.MaskField$Value",
    "org.apache.kafka.connect.transforms.RegexRouter",
    "org.apache.kafka.connect.transforms.ReplaceField$Key",
    "org.apache.kafka.connect.transforms.ReplaceField$Value",
    "org.apache.kafka.connect.transforms.SetSchemaMetadata$Key",
    "org.apache.kafka.connect.transforms.SetSchemaMetadata$Value",
    "org.apache.kafka.connect.transforms.TimestampConverter$Key",
    "org.apache.kafka.connect.transforms.TimestampConverter$Value",
    "org.apache.kafka.connect.transforms.TimestampRouter",
    "org.apache.kafka.connect.transforms.ValueToKey",
    "io.debezium.transforms.ExtractNewRecordState",
    "io.debezium.transforms.outbox.EventRouter",
    "io.debezium.transforms.ByLogicalTableRouter",
    "io.debezium.transforms.HeaderToValue",
];

/// The predicate classes sluice implements, fully qualified.
pub const PREDICATE_CLASSES: &[&str] = &[
    "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
    "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
    "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
];

/// Known classes sluice does not implement yet: refused by name rather
/// than ignored, since each changes what is written.
const NOT_YET: &[&str] = &[
    "io.debezium.transforms.TimezoneConverter",
    "io.debezium.transforms.ExtractChangedRecordState",
    "io.debezium.transforms.SchemaChangeEventFilter",
    "io.debezium.transforms.partitions.PartitionRouting",
    // Scripted (Groovy/JavaScript): no script engine here.
    "io.debezium.transforms.Filter",
    "io.debezium.transforms.ContentBasedRouter",
];

/// `class` fully qualified: a simple name (`RegexRouter`,
/// `InsertField$Value`) is looked up among the known classes.
fn qualified<'a>(class: &'a str, known: &[&'a str]) -> Option<&'a str> {
    let class = class.trim();
    known
        .iter()
        .copied()
        .find(|k| *k == class || k.rsplit('.').next() == Some(class))
}

/// Builds the transform `class` from its settings.
pub fn transform(class: &str, settings: &Settings) -> Result<Box<dyn Transform>, ConfigError> {
    let Some(full) = qualified(class, TRANSFORMS) else {
        let message = match qualified(class, NOT_YET) {
            Some(full) => format!(
                "{full} is not supported by this version of sluice; remove it or apply it in the consumer"
            ),
            None => format!(
                "no transform class named {class}; sluice implements {}",
                TRANSFORMS.join(", ")
            ),
        };
        return Err(settings.error("type", message));
    };
    let (base, side) = match full.split_once('$') {
        Some((base, suffix)) => (base, Side::from_suffix(suffix)),
        None => (full, None),
    };
    let side = side.unwrap_or(Side::Value);
    Ok(
        match base
            .strip_prefix(CONNECT)
            .or_else(|| base.strip_prefix(DEBEZIUM))
        {
            Some("Cast") => Box::new(Cast::new(side, settings)?),
            Some("TimestampConverter") => Box::new(TimestampConverter::new(side, settings)?),
            Some("DropHeaders") => Box::new(headers::DropHeaders::new(settings)?),
            Some("ExtractField") => Box::new(ExtractField::new(side, settings)?),
            Some("Filter") => Box::new(Filter),
            Some("Flatten") => Box::new(Flatten::new(side, settings)?),
            Some("HeaderFrom") => Box::new(headers::HeaderFrom::new(side, settings)?),
            Some("HoistField") => Box::new(HoistField::new(side, settings)?),
            Some("InsertField") => Box::new(InsertField::new(side, settings)?),
            Some("InsertHeader") => Box::new(headers::InsertHeader::new(settings)?),
            Some("MaskField") => Box::new(MaskField::new(side, settings)?),
            Some("RegexRouter") => Box::new(RegexRouter::new(settings)?),
            Some("ReplaceField") => Box::new(ReplaceField::new(side, settings)?),
            Some("SetSchemaMetadata") => Box::new(SetSchemaMetadata::new(side, settings)?),
            Some("TimestampRouter") => Box::new(TimestampRouter::new(settings)?),
            Some("ValueToKey") => Box::new(ValueToKey::new(settings)?),
            Some("ExtractNewRecordState") => Box::new(ExtractNewRecordState::new(settings)?),
            Some("outbox.EventRouter") => Box::new(EventRouter::new(settings)?),
            Some("ByLogicalTableRouter") => Box::new(ByLogicalTableRouter::new(settings)?),
            Some("HeaderToValue") => Box::new(HeaderToValue::new(settings)?),
            _ => return Err(settings.error("type", format!("{full} has no implementation"))),
        },
    )
}

/// Builds the predicate `class` from its settings.
pub fn predicate(class: &str, settings: &Settings) -> Result<Box<dyn Predicate>, ConfigError> {
    let full = qualified(class, PREDICATE_CLASSES).ok_or_else(|| {
        settings.error(
            "type",
            format!(
                "no predicate class named {class}; sluice implements {}",
                PREDICATE_CLASSES.join(", ")
            ),
        )
    })?;
    Ok(match full.strip_prefix(PREDICATES) {
        Some("TopicNameMatches") => Box::new(TopicNameMatches::new(settings)?),
        Some("HasHeaderKey") => Box::new(HasHeaderKey::new(settings)?),
        _ => Box::new(RecordIsTombstone),
    })
}
