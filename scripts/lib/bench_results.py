"""The benchmark scripts' results as rows of one CSV, for scripts/bench.

Each scripts/bench-* script calls `record` once per path it measures; the
row is appended to $SLUICE_BENCH_CSV when that is set (scripts/bench sets
it), and nothing happens otherwise, so the scripts still run alone.
"""
import csv
import os

FIELDS = [
    "path",
    "sluice_per_s",
    "tool",
    "tool_per_s",
    "ratio",
    "producer_per_s",
    "producer_cpu_us_per_event",
    "cpu_us_per_event",
    "broker_cpu_us_per_event",
    "db_cpu_us_per_event",
    "peak_rss_mib",
    "note",
]


def cpu_split(text):
    """The worker's, the broker's and the database's CPU µs per event from
    common.sh's `cpu_us_per_event` ("worker,broker,db")."""
    worker, broker, db = (float(x) for x in text.split(","))
    return worker, broker, db


def cpu_words(cpu, rate, db_name):
    """One line on where a phase's CPU went, from `cpu_us_per_event`'s
    text and the phase's events per second."""
    worker, broker, db = cpu_split(cpu)
    busy = (worker + broker + db) * rate / 1e6
    return (f"CPU µs per event: worker {worker:.2f}, broker {broker:.2f}, {db_name} {db:.2f}"
            f" = {busy:.2f} cores busy")


def record(path, sluice_per_s, tool="", tool_per_s=None, cpu=None, rss_mib=None, note="",
           producer_per_s=None, producer_cpu_us=None):
    """Appends one measured path: sluice's rate beside the tool doing the
    same work in the same run, CPU per event (`cpu_us_per_event`'s text:
    the worker's, the broker's and the database server's), peak RSS, and
    the rate and CPU µs per record of a plain producer sending the path's
    own records again (runtime/examples/plain_producer.rs --same-as), where
    measured: what producing those bytes costs any librdkafka client."""
    worker, broker, db = cpu_split(cpu) if cpu else (None, None, None)
    out = os.environ.get("SLUICE_BENCH_CSV")
    if not out:
        return
    new = not os.path.exists(out) or os.path.getsize(out) == 0
    with open(out, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(FIELDS)
        writer.writerow([
            path,
            round(sluice_per_s),
            tool,
            "" if tool_per_s is None else round(tool_per_s),
            "" if not tool_per_s else f"{sluice_per_s / tool_per_s:.3f}",
            "" if producer_per_s is None else round(producer_per_s),
            "" if producer_cpu_us is None else f"{producer_cpu_us:.2f}",
            *("" if us is None else f"{us:.2f}" for us in (worker, broker, db)),
            "" if rss_mib is None else f"{float(rss_mib):.1f}",
            note,
        ])
