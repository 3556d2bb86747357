"""Commit-to-consumer latency of a sluice PostgreSQL source, for
scripts/bench-postgres.

    commit_to_ack.py BOOTSTRAP TOPIC REGISTRY COUNT TIMEOUT_S

Reads TOPIC from the start with confluent-kafka (Avro through REGISTRY)
until COUNT change events with op=c arrived, and for each one takes
(time received) - (source.ts_us, the commit time PostgreSQL wrote).
That is commit -> acknowledged by the broker -> fetched by a consumer, an
upper bound of commit -> ack. Also (time stamped on the record) - (commit
time): how long sluice took to hand the change to its producer. Prints
p50, p99 and max of both in milliseconds as one JSON line. Same machine,
so one clock.
"""

import json
import os
import sys
import time

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from latency_summary import consumer_settings, summary


def main(bootstrap, topic, registry, count, timeout_s):
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry}))
    consumer = Consumer(consumer_settings(bootstrap, f"sluice-latency-{os.getpid()}"))
    consumer.subscribe([topic])
    latencies = []
    # Commit -> the record's timestamp, which the worker's producer stamps
    # when sluice hands it the record: sluice's own share of the latency.
    to_producer = []
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
        _, stamped_ms = message.timestamp()
        to_producer.append(stamped_ms - value["source"]["ts_us"] / 1000.0)
    consumer.close()
    print(json.dumps(summary(latencies) | summary(to_producer, "to_producer_")))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
