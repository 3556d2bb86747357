"""Per-key audit of a change topic, read by an independent client.

audit BOOTSTRAP TOPIC REGISTRY FIELD
    Reads TOPIC from the start to its end (Avro through REGISTRY) and checks,
    for each key, that FIELD of the row — a counter the writer raises by one
    on every update — never skips a value: an event whose counter is more
    than one past the highest seen for its key is a lost change (a gap). An
    event at or below the highest is a repeat: redelivery after a crash,
    allowed, and counted. Prints one JSON line:
    {"events", "keys", "gaps", "repeats", "examples"}; exits 1 on a gap.

selftest
    Checks the checker on made-up sequences: a skipped value is a gap, a
    replay is not.
"""

import json
import os
import sys

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def audit(bootstrap, topic, registry, field):
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry}))
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"sluice-audit-{os.getpid()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    metadata = consumer.list_topics(topic, timeout=30)
    partitions = list(metadata.topics[topic].partitions)
    ends = {}
    for p in partitions:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        ends[p] = high
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    done = {p for p, end in ends.items() if end == 0}
    counters = []
    idle = 0
    while len(done) < len(partitions):
        message = consumer.poll(1.0)
        if message is None:
            idle += 1
            if idle > 60:
                sys.exit(f"{topic}: stopped short of its end for 60 s")
            continue
        idle = 0
        if message.error():
            print(f"consumer: {message.error()}", file=sys.stderr)
            continue
        if message.offset() + 1 >= ends[message.partition()]:
            done.add(message.partition())
        if message.value() is None:
            continue  # a tombstone
        key = json.dumps(deserializer(message.key(), SerializationContext(topic, MessageField.KEY)), sort_keys=True)
        value = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
        row = value.get("after")
        if row is None:
            continue  # a delete: its counter is the last update's
        counters.append((key, row[field], message.offset()))
    consumer.close()
    result = tally(counters)
    print(json.dumps(result))
    return result["gaps"] == 0


def tally(counters):
    """Gaps and repeats in (key, counter, offset) events, in topic order."""
    highest = {}
    gaps = repeats = 0
    examples = []
    for key, counter, offset in counters:
        last = highest.get(key)
        if last is None or counter == last + 1:
            highest[key] = counter
        elif counter <= last:
            repeats += 1
        else:
            gaps += 1
            highest[key] = counter
            if len(examples) < 5:
                examples.append({"key": key, "after": last, "next": counter, "offset": offset})
    return {"events": len(counters), "keys": len(highest), "gaps": gaps, "repeats": repeats, "examples": examples}


def selftest():
    replayed = tally([("a", 1, 0), ("a", 2, 1), ("a", 1, 2), ("a", 2, 3), ("a", 3, 4), ("b", 7, 5)])
    assert (replayed["gaps"], replayed["repeats"]) == (0, 2), replayed
    skipped = tally([("a", 1, 0), ("a", 2, 1), ("a", 4, 2), ("b", 1, 3)])
    assert (skipped["gaps"], skipped["examples"][0]["after"]) == (1, 2), skipped
    print("selftest ok")


if __name__ == "__main__":
    if sys.argv[1:] == ["selftest"]:
        selftest()
    elif len(sys.argv) == 6 and sys.argv[1] == "audit":
        sys.exit(0 if audit(*sys.argv[2:]) else 1)
    else:
        sys.exit(__doc__)
