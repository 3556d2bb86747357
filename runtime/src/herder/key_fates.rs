//! What happens to Debezium and Connect keys sluice does not define: each
//! is either accepted without effect (tuning that means nothing here, with
//! the reason) or refused, because accepting a key that changes what is
//! written and then ignoring it (a mask, a renamed topic) would silently
//! send something else than the user configured. Keys in neither list and
//! in no definition are kept with a warning, as typos usually are.

/// What sluice does with a key it does not define.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Accepted and ignored; the reason is logged.
    NoEffect(&'static str),
    /// Accepted only at Debezium's default value (which is what sluice
    /// writes); any other value is refused with the reason.
    DefaultOnly(&'static str, &'static str),
    /// Refused with the reason and what to do instead.
    Refused(&'static str),
}

/// Keys by exact name, or by prefix when the pattern ends in `*`.
const FATES: &[(&str, Fate)] = &[
    // Output-changing keys sluice does not implement.
    ("topic.naming.strategy", Fate::DefaultOnly("io.debezium.schema.DefaultTopicNamingStrategy", "topics are named by Debezium's default strategy (topic.prefix, topic.delimiter, topic.heartbeat.prefix, topic.transaction); rename them further with a RegexRouter transform")),
    ("include.unknown.datatypes", Fate::DefaultOnly("false", "sluice writes a column of a type Debezium does not know (PostgreSQL box, circle, line, lseg, path, polygon, pg_lsn, ...) as its text, where Debezium leaves it out (false) or writes its bytes (true)")),
    ("schema.name.adjustment.mode", Fate::DefaultOnly("none", "schema names are written unchanged (Avro-invalid characters are refused when registering)")),
    ("field.name.adjustment.mode", Fate::DefaultOnly("none", "field names are written unchanged")),
    ("converters", Fate::Refused("Debezium custom converters are Java classes; sluice cannot load them. Map the type downstream, or with a transform")),
    ("offsets.storage.topic", Fate::Refused("a connector-specific offsets topic is not supported: source offsets go to the worker's offset topic (--offset-storage-topic); remove the key")),
    ("signal.data.collection", Fate::Refused("signals (ad-hoc and incremental snapshots) are not implemented; remove the key")),
    ("signal.enabled.channels", Fate::Refused("signals (ad-hoc and incremental snapshots) are not implemented; remove the key")),
    ("incremental.snapshot.*", Fate::Refused("incremental snapshots are not implemented; remove the key")),
    ("database.initial.statements", Fate::Refused("statements run on connect are not supported; set session defaults on the database user instead (ALTER ROLE ... SET)")),
    ("flush.lsn.source", Fate::DefaultOnly("true", "the slot's position is always confirmed once the changes before it are in Kafka, so the server can free WAL")),
    ("xmin.fetch.interval.ms", Fate::DefaultOnly("0", "the source block's xmin is not filled")),
    ("event.deserialization.failure.handling.mode", Fate::DefaultOnly("fail", "use event.processing.failure.handling.mode (fail, warn, skip)")),
    // Tuning of the Java implementation, with no meaning here.
    ("poll.interval.ms", Fate::NoEffect("the runtime is pushed records as they are read; there is no poll loop to pace")),
    ("query.fetch.size", Fate::NoEffect("snapshot.fetch.size sizes the snapshot's round trips")),
    ("slot.max.retries", Fate::NoEffect("the slot is retried with the task's restarts (errors.max.retries, errors.retry.timeout)")),
    ("slot.retry.delay.ms", Fate::NoEffect("the slot is retried with the task's restarts, waiting up to errors.retry.delay.max.ms")),
    ("retriable.restart.connector.wait.ms", Fate::NoEffect("retriable failures restart the task, waiting from 1 s doubling up to errors.retry.delay.max.ms")),
    ("database.tcpKeepAlive", Fate::NoEffect("TCP keep-alive is always on")),
    ("connect.keep.alive", Fate::NoEffect("the binlog connection is kept alive and reconnected by sluice")),
    ("connect.keep.alive.interval.ms", Fate::NoEffect("the binlog connection is kept alive and reconnected by sluice")),
    ("connect.timeout.ms", Fate::NoEffect("connections time out after sluice's own limit")),
    ("snapshot.lock.timeout.ms", Fate::NoEffect("the snapshot takes no table locks")),
    ("snapshot.locking.mode", Fate::NoEffect("the snapshot takes no table locks (a consistent read instead)")),
    ("snapshot.delay.ms", Fate::NoEffect("the snapshot starts at once")),
    ("streaming.delay.ms", Fate::NoEffect("streaming starts at once")),
    ("table.ignore.builtin", Fate::NoEffect("system schemas are never captured")),
    ("schema.refresh.mode", Fate::NoEffect("table definitions are refreshed from each relation message")),
    ("min.row.count.to.stream.results", Fate::NoEffect("snapshot rows are always streamed")),
    ("binlog.buffer.size", Fate::NoEffect("the binlog reader needs no look-ahead buffer")),
    ("custom.metric.tags", Fate::NoEffect("metrics are labelled by connector and task")),
    ("topic.cache.size", Fate::NoEffect("topic names are not cached by size")),
    ("sourceinfo.struct.maker", Fate::NoEffect("the source block is always Debezium's")),
];

/// The fate of `key` if it is one sluice knows but does not define.
pub fn fate(key: &str) -> Option<Fate> {
    FATES.iter().find_map(|(pattern, fate)| {
        let matches = match pattern.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => key == *pattern,
        };
        matches.then_some(*fate)
    })
}

/// The refusal of `key` set to `value`, if it is refused.
pub fn refusal(key: &str, value: &str) -> Option<String> {
    match fate(key)? {
        Fate::Refused(reason) => Some(format!("is not supported by sluice: {reason}")),
        Fate::DefaultOnly(default, reason) if !value.trim().eq_ignore_ascii_case(default) => Some(
            format!("only {default} (Debezium's default) is supported: {reason}"),
        ),
        _ => None,
    }
}

/// Every key (or key prefix) with a fate, for the generated reference and
/// the tests.
pub fn all() -> impl Iterator<Item = (&'static str, Fate)> {
    FATES.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_default_values_decide() {
        assert_eq!(
            refusal(
                "topic.naming.strategy",
                "io.debezium.schema.DefaultTopicNamingStrategy"
            ),
            None
        );
        assert!(refusal("topic.naming.strategy", "x.Custom").is_some());
        assert_eq!(refusal("poll.interval.ms", "500"), None);
        assert!(matches!(fate("poll.interval.ms"), Some(Fate::NoEffect(_))));
        assert_eq!(fate("a.typo"), None);
    }
}
