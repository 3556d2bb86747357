"""Latencies summed up as the benchmark scripts print them, shared by
scripts/lib/commit_to_ack.py and scripts/lib/broker_latency.py."""



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
