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
    "cpu_us_per_event",
    "peak_rss_mib",
    "note",
]


def record(path, sluice_per_s, tool="", tool_per_s=None, cpu_us=None, rss_mib=None, note=""):
    """Appends one measured path: sluice's rate beside the tool doing the
    same work in the same run, worker CPU per event, peak RSS."""
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
            "" if cpu_us is None else f"{float(cpu_us):.2f}",
            "" if rss_mib is None else f"{float(rss_mib):.1f}",
            note,
        ])
