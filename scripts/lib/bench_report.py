"""The table and chart of one scripts/bench run, from the CSV the
benchmark scripts wrote (scripts/lib/bench_results.py).

    python3 scripts/lib/bench_report.py RESULTS.csv CHART.svg

Ratios are sluice's rate over the basis the goal names: the native tool
doing the same work in the same run, or for snapshots and the binlog
stream the slower of that tool and a plain rdkafka producer of the same
bytes (sluice cannot outrun the broker client it uses): the path's own
records sent again, or where a path has none measured, the datagen-shaped
records of scripts/bench-producer. Goals are issue 18's.
"""
import csv
import os
import sys
from html import escape

# path: (basis, goal ratio). "tool" = the tool beside it; "tool|producer" =
# the slower of the tool and the plain producer of the same bytes.
RATE_GOALS = {
    "PostgreSQL snapshot": ("tool|producer", 0.6),
    "PostgreSQL stream": ("tool", 0.95),
    "MariaDB snapshot": ("tool|producer", 0.6),
    "MariaDB binlog stream": ("tool|producer", 0.6),
    "JDBC sink -> PostgreSQL": ("tool", 0.5),
    "JDBC sink -> MariaDB": ("tool", 0.5),
}
CPU_GOAL_US = 1.5
RSS_GOAL_MIB = 64.0
P99_GOAL_MS = 20.0
# Published rates of the peers, for scale (their runs, their machines).
PEERS = [
    ("PostgreSQL stream", "Debezium on Kafka Connect, 4 vCPU, 6.9 GB", 45_000),
    ("PostgreSQL stream", "Conduit, 110 MB", 48_000),
    ("MariaDB binlog stream", "Debezium MySQL, 4 vCPU, 2.2 GB", 134_000),
]


def machine_cores():
    """The cores of the machine the bench ran on: this one's, unless
    SLUICE_BENCH_CORES names another's (a report made from a CSV that was
    measured elsewhere)."""
    given = os.environ.get("SLUICE_BENCH_CORES")
    if not given:
        return os.cpu_count() or 1
    if not given.isdigit() or int(given) < 1:
        sys.exit(f"SLUICE_BENCH_CORES must be the bench machine's number of cores, "
                 f"a whole number of 1 or more (got {given!r})")
    return int(given)


def cpu_budget(needed_rate, cores, busy, worker, plain, broker, db):
    """What a missed rate goal leaves for sluice's own work: at
    `needed_rate` events a second, `cores` give each event so many µs of
    CPU in all; the database server, the broker and (where measured) the
    Kafka client itself, as a plain producer of the same records spends,
    take their share at the CPU per event they spend now. The rest is the
    most sluice's own work (the worker's CPU beyond the client's) may cost
    for the goal to be met with every core busy: an upper bound, since a
    machine shared by busy processes that wait on each other never keeps
    every core busy. `busy` is the cores the path kept busy."""
    total = cores * 1e6 / needed_rate
    client = plain or 0.0
    others = (db or 0.0) + (broker or 0.0) + client
    left = total - others
    own = worker - client
    who = "sluice's own work (the worker beyond its Kafka client)" if plain else "the worker"
    parts = [f"the database {db or 0:.2f}", f"the broker {broker or 0:.2f}"]
    if plain:
        parts.append(f"the Kafka client (a plain producer of its records) {plain:.2f}")
    line = (f"at the goal's {needed_rate:,.0f}/s, {cores} cores give {total:.2f} µs an event; "
            f"{', '.join(parts)} leave {left:.2f} µs for {who}, which takes {own:.2f} now")
    if left < own:
        return line + f": {own - left:.2f} µs too much even with every core busy"
    return line + (f"; {busy:.2f} of the {cores} cores were busy, so the goal needs the idle ones "
                   "kept busy (or less CPU an event)")


def number(text):
    return float(text) if text not in ("", None) else None


def load(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def basis_of(row, producer_rate):
    """The rate a path is measured against, and what that is."""
    tool = number(row["tool_per_s"])
    how, _ = RATE_GOALS.get(row["path"], ("tool", None))
    own = number(row.get("producer_per_s"))
    producer = own or producer_rate
    if how == "tool|producer" and producer and tool:
        which = "plain producer of its records" if own else "plain producer (datagen records)"
        return min(tool, producer), f"{row['tool']} / {which}"
    return tool, row["tool"]


def main(csv_path, svg_path):
    rows = load(csv_path)
    producer = next((r for r in rows if r["path"] == "datagen -> Kafka"), None)
    producer_rate = number(producer["tool_per_s"]) if producer else None
    cores_here = machine_cores()
    lines = []
    # CPU µs per event of the worker, the broker and the database server,
    # and the cores the three kept busy at sluice's rate: the machine's two
    # cores are shared, so a path whose cores are near 2 gains only from
    # less CPU per event somewhere, not from more parallelism.
    # "plain": the CPU µs per record of the plain producer sending the
    # path's records again, the part of the worker's that any librdkafka
    # client pays for those bytes.
    header = (f"{'path':34}{'sluice/s':>10}  {'against':56}{'basis/s':>10}{'ratio':>7}{'goal':>7}  "
              f"{'worker':>7}{'plain':>7}{'broker':>7}{'db':>7}{'cores':>6}{'RSS MiB':>8}  note")
    lines.append(header)
    lines.append("-" * len(header))
    chart = []
    misses = []
    for row in rows:
        rate = number(row["sluice_per_s"]) or 0.0
        basis, against = basis_of(row, producer_rate)
        _, goal = RATE_GOALS.get(row["path"], ("tool", None))
        ratio = rate / basis if basis else None
        cpu = number(row["cpu_us_per_event"])
        plain = number(row.get("producer_cpu_us_per_event"))
        broker = number(row.get("broker_cpu_us_per_event"))
        db = number(row.get("db_cpu_us_per_event"))
        cores = (cpu + (broker or 0) + (db or 0)) * rate / 1e6 if cpu is not None else None
        rss = number(row["peak_rss_mib"])
        lines.append(
            f"{row['path']:34}{rate:10.0f}  {against[:56]:56}"
            f"{(f'{basis:10.0f}' if basis else ' ' * 10)}"
            f"{(f'{ratio:7.2f}' if ratio is not None else ' ' * 7)}"
            f"{(f'{goal:7.2f}' if goal else ' ' * 7)}  "
            + "".join(f"{v:7.2f}" if v is not None else " " * 7 for v in (cpu, plain, broker, db))
            + (f"{cores:6.2f}" if cores is not None else " " * 6)
            + (f"{rss:8.1f}" if rss is not None else " " * 8)
            + f"  {row['note']}"
        )
        if goal and ratio is not None:
            chart.append((row["path"], ratio, goal))
            if ratio < goal:
                misses.append(f"{row['path']}: {ratio:.2f}x of {against} (goal {goal}x)")
                if cpu is not None:
                    misses.append("  " + cpu_budget(goal * basis, cores_here, cores, cpu, plain, broker, db))
        if cpu is not None and cpu > CPU_GOAL_US and not row["path"].startswith("JDBC"):
            floor = f"; a plain producer of its records: {plain:.2f}" if plain is not None else ""
            misses.append(f"{row['path']}: {cpu:.2f} µs worker CPU per event (goal {CPU_GOAL_US}{floor})")
        if rss is not None and rss > RSS_GOAL_MIB:
            misses.append(f"{row['path']}: peak RSS {rss:.1f} MiB (goal {RSS_GOAL_MIB:.0f})")
        if "p99" in row["note"]:
            p99 = number(row["note"].split("p99 ")[1].split(" ")[0])
            if p99 is not None and p99 > P99_GOAL_MS:
                floor = ""
                if "broker alone" in row["note"]:
                    floor = f"; the broker alone: p99 {row['note'].split('broker alone ')[1].split('p99 ')[1].split(' ')[0]} ms"
                misses.append(f"{row['path']}: p99 {p99} ms at {rate:.0f} commits/s (goal {P99_GOAL_MS:.0f} ms at 1,000/s{floor})")
    by_path = {r["path"]: number(r["sluice_per_s"]) for r in rows}
    lines.append("")
    for path, peer, peer_rate in PEERS:
        if by_path.get(path):
            lines.append(f"{path} {by_path[path]:,.0f}/s on this 2-core machine: {by_path[path] / peer_rate:.2f}x {peer}'s published {peer_rate:,}/s")
    lines.append("")
    lines.append("goals missed:" if misses else "every goal met")
    lines.extend(f"  {m}" for m in misses)
    print("\n".join(lines))
    write_chart(svg_path, chart)


def write_chart(path, bars):
    """Bars of each path's ratio with its goal marked; 1.0 = as fast as
    the basis."""
    width, left, row_h, top = 760, 230, 30, 40
    scale_max = max([1.0] + [max(r, g) for _, r, g in bars]) * 1.1
    px = lambda ratio: left + (width - left - 20) * ratio / scale_max
    height = top + row_h * len(bars) + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-weight="bold">sluice / native tool (same machine, same run); | = goal</text>',
        f'<line x1="{px(1.0):.1f}" y1="{top - 6}" x2="{px(1.0):.1f}" y2="{height - 30}" stroke="#888" stroke-dasharray="4 3"/>',
        f'<text x="{px(1.0):.1f}" y="{height - 14}" text-anchor="middle" fill="#555">1.0x</text>',
    ]
    for i, (name, ratio, goal) in enumerate(bars):
        y = top + i * row_h
        colour = "#2a9d4b" if ratio >= goal else "#d9822b"
        out.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end">{escape(name)}</text>')
        out.append(f'<rect x="{left}" y="{y + 4}" width="{px(ratio) - left:.1f}" height="{row_h - 10}" fill="{colour}"/>')
        out.append(f'<text x="{px(ratio) + 4:.1f}" y="{y + 17}">{ratio:.2f}x</text>')
        out.append(f'<line x1="{px(goal):.1f}" y1="{y + 1}" x2="{px(goal):.1f}" y2="{y + row_h - 3}" stroke="black" stroke-width="2"/>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: bench_report.py RESULTS.csv CHART.svg")
    main(sys.argv[1], sys.argv[2])
