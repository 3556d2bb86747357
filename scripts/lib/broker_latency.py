"""The broker's own produce -> consume latency, for scripts/bench-postgres:
the floor under sluice's commit -> consumer latency on the same broker.

    broker_latency.py BOOTSTRAP TOPIC RATE COUNT

Creates TOPIC (one partition), sends COUNT small records at RATE per
second with the producer settings sluice's producer uses (idempotent,
acks=all, lz4, linger.ms=5), each carrying its send time, and reads them
with the consumer settings scripts/lib/commit_to_ack.py uses. Prints p50,
p99 and max of (time received) - (time sent) in milliseconds as one JSON
line, as commit_to_ack.py does. Same machine, so one clock.
"""

import json
import os
import sys
import threading
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from latency_summary import consumer_settings, summary


def main(bootstrap, topic, rate, count):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result()
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 5,
    })
    consumer = Consumer(consumer_settings(bootstrap, f"sluice-broker-latency-{os.getpid()}"))
    consumer.subscribe([topic])
    latencies = []
    stop = threading.Event()

    def consume():
        while not stop.is_set() and len(latencies) < count:
            message = consumer.poll(0.1)
            if message is None or message.error() or message.value() is None:
                continue
            received = time.time()
            sent = float(message.value())
            if sent > 0:
                latencies.append((received - sent) * 1000.0)

    reader = threading.Thread(target=consume)
    reader.start()
    # A warm-up record, so the first measured one does not pay for the
    # consumer joining its group.
    producer.produce(topic, b"-1")
    producer.flush(10)
    time.sleep(2)
    start = time.time()
    for i in range(count):
        producer.produce(topic, repr(time.time()).encode())
        producer.poll(0)
        delay = start + (i + 1) / rate - time.time()
        if delay > 0:
            time.sleep(delay)
    producer.flush(30)
    reader.join(timeout=30)
    stop.set()
    reader.join()
    consumer.close()
    print(json.dumps(summary(latencies)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
