"""Independent Avro client for sluice's interoperability test.

consume BOOTSTRAP TOPIC REGISTRY N
    Reads N records from the start of TOPIC with confluent-kafka's Consumer
    and decodes keys and values with AvroDeserializer through REGISTRY;
    prints one JSON line per record: {"key": ..., "value": ...}.

produce BOOTSTRAP TOPIC REGISTRY N
    Registers a schema through SchemaRegistryClient (via AvroSerializer)
    and produces N records, for sluice to decode.
"""

import json
import os
import sys

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

PRODUCED_SCHEMA = json.dumps({
    "type": "record",
    "name": "Reading",
    "namespace": "io.sluice.interop",
    "fields": [
        {"name": "sensor", "type": "string"},
        {"name": "celsius", "type": "double"},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
})


def consume(bootstrap, topic, registry, count):
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry}))
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        # A group of its own: tests run in parallel and never commit.
        "group.id": f"sluice-interop-{os.getpid()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    seen = 0
    idle = 0
    while seen < count:
        message = consumer.poll(1.0)
        if message is None:
            idle += 1
            if idle > 60:
                sys.exit(f"only {seen} of {count} records arrived within 60 s of idling")
            continue
        idle = 0
        if message.error():
            print(f"consumer: {message.error()}", file=sys.stderr)
            continue
        key = deserializer(message.key(), SerializationContext(topic, MessageField.KEY))
        value = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
        print(json.dumps({"key": key, "value": value}, default=str), flush=True)
        seen += 1
    consumer.close()


def produce(bootstrap, topic, registry, count):
    # The test broker does not create topics on first use.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    serializer = AvroSerializer(SchemaRegistryClient({"url": registry}), PRODUCED_SCHEMA)
    producer = Producer({"bootstrap.servers": bootstrap})
    failures = []

    def delivered(error, _message):
        if error is not None:
            failures.append(error)

    for i in range(count):
        value = {"sensor": f"s{i}", "celsius": 20.5 + i, "note": None if i % 2 else "even"}
        payload = serializer(value, SerializationContext(topic, MessageField.VALUE))
        producer.produce(topic, value=payload, on_delivery=delivered)
    if producer.flush(30) != 0:
        sys.exit("records were not acknowledged within 30 s")
    if failures:
        sys.exit(f"delivery failed: {failures[0]}")


if __name__ == "__main__":
    command, bootstrap, topic, registry, count = sys.argv[1:6]
    {"consume": consume, "produce": produce}[command](bootstrap, topic, registry, int(count))
