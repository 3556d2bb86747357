"""What scripts/lib/commit_to_ack.py and scripts/lib/broker_latency.py
share, so the two latencies are measured alike: the consumer's settings
and the summary they print."""


def consumer_settings(bootstrap, group):
    """A consumer that fetches as soon as anything is there, so it adds
    little to what it measures."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 5,
        "fetch.min.bytes": 1,
    }



def summary(latencies_ms, prefix=""):
    """Count, p50, p99 and max in milliseconds, keys named with `prefix`."""
    if not latencies_ms:
        return {f"{prefix}count": 0}
    ordered = sorted(latencies_ms)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {
        f"{prefix}count": len(ordered),
        f"{prefix}p50_ms": round(pick(0.50), 2),
        f"{prefix}p99_ms": round(pick(0.99), 2),
        f"{prefix}max_ms": round(ordered[-1], 2),
    }
