"""Commit-to-consumer latency of a sluice PostgreSQL source, for
scripts/bench-postgres.

    commit_to_ack.py BOOTSTRAP TOPIC REGISTRY COUNT TIMEOUT_S

Reads TOPIC from the start with confluent-kafka (Avro through REGISTRY)
until COUNT change events with op=c arrived, and for each one takes
(time received) - (source.ts_us, the commit time PostgreSQL wrote).
That is commit -> acknowledged by the broker -> fetched by a consumer, an
upper bound of commit -> ack. Prints p50, p99 and max in milliseconds as
one JSON line. Same machine, so one clock.
"""

import json
import os
import sys
import time

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main(bootstrap, topic, registry, count, timeout_s):
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry}))
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"sluice-latency-{os.getpid()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        # Fetch as soon as anything is there: the consumer adds little.
        "fetch.wait.max.ms": 5,
        "fetch.min.bytes": 1,
    })
    consumer.subscribe([topic])
    latencies = []
    deadline = time.time() + timeout_s
    while len(latencies) < count and time.time() < deadline:
        message = consumer.poll(0.1)
        if message is None or message.error() or message.value() is None:
            continue
        received_us = time.time() * 1e6
        value = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
        # Warm-up rows (negative ids) were committed before we started.
        if value.get("op") != "c" or value["after"]["id"] < 0:
            continue
        latencies.append((received_us - value["source"]["ts_us"]) / 1000.0)
    consumer.close()
    if not latencies:
        print(json.dumps({"count": 0}))
        return
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    print(json.dumps({
        "count": len(latencies),
        "p50_ms": round(pick(0.50), 2),
        "p99_ms": round(pick(0.99), 2),
        "max_ms": round(latencies[-1], 2),
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
