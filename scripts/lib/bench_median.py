"""One results CSV from several runs of the benchmark scripts, for
`scripts/bench --repeat N`: on this shared 2-core machine one run of an
unchanged path moves by 30-40 % from the next, so a single run's ratio
says little.

    python3 scripts/lib/bench_median.py OUT.csv RUN1.csv RUN2.csv ...

For each path the row is the whole row of its median run, ranked by the
ratio the report computes (scripts/lib/bench_report.py), by p99 latency
for the latency row, else by sluice's rate; so every rate and CPU figure
in a row was measured together in one run. Peak RSS is the highest of any
run, since the goal is a ceiling. The note says how many runs there were
and the range of the ranking figure, so the spread is in the table too.
"""
import csv
import sys

from bench_report import basis_of, load, number
from bench_results import FIELDS


def producer_rate(rows):
    """The datagen-shaped producer rate a run measured (bench_report's
    fallback basis)."""
    producer = next((r for r in rows if r["path"] == "datagen -> Kafka"), None)
    return number(producer["tool_per_s"]) if producer else None


def p99_ms(row):
    """The p99 latency a latency row's note gives, if any."""
    if "p99 " not in row["note"]:
        return None
    return number(row["note"].split("p99 ")[1].split(" ")[0])


def ranking(row, rows):
    """What a path's runs are ranked by, and its name in the note."""
    p99 = p99_ms(row)
    if p99 is not None:
        return p99, "p99 ms"
    basis, _ = basis_of(row, producer_rate(rows))
    rate = number(row["sluice_per_s"])
    if basis and rate is not None:
        return rate / basis, "ratio"
    return rate, "rows/s"


def merge(runs):
    """The merged rows, in the first run's order of paths."""
    merged = []
    for first in runs[0]:
        path = first["path"]
        measured = []
        for rows in runs:
            row = next((r for r in rows if r["path"] == path), None)
            if row is not None:
                value, what = ranking(row, rows)
                if value is not None:
                    measured.append((value, what, row))
        if not measured:
            merged.append(first)
            continue
        measured.sort(key=lambda m: m[0])
        # The lower median for an even count: a real run, not an average.
        _, what, chosen = measured[(len(measured) - 1) // 2]
        row = dict(chosen)
        rss = [number(m[2]["peak_rss_mib"]) for m in measured]
        rss = [r for r in rss if r is not None]
        if rss:
            row["peak_rss_mib"] = f"{max(rss):.1f}"
        low, high = measured[0][0], measured[-1][0]
        spread = f"{len(measured)} runs, median shown; {what} {low:.2f}-{high:.2f}"
        if what == "rows/s":
            spread = f"{len(measured)} runs, median shown; {what} {low:.0f}-{high:.0f}"
        if len(measured) > 1:
            row["note"] = f"{row['note']}; {spread}" if row["note"] else spread
        merged.append(row)
    return merged


def main(out, paths):
    runs = [load(p) for p in paths]
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for row in merge(runs):
            writer.writerow({k: row.get(k, "") for k in FIELDS})


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: bench_median.py OUT.csv RUN1.csv [RUN2.csv ...]")
    main(sys.argv[1], sys.argv[2:])
