"""CPU clock ticks used so far by each process named on the command line,
counting its descendants too: the ones still running and the ones it has
waited for (PostgreSQL runs a backend per connection, and a backend's time
moves to the server's count when its client disconnects). For the benches'
split of a phase's CPU between the worker, the broker and the database.

    python3 scripts/lib/cpu_ticks.py PID...    one number per PID, in order

A PID of "-", or of a process that is gone, counts 0.
"""
import os
import sys


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (which may hold
    spaces and parentheses), so field n of proc(5) is at index n - 3."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text[text.rindex(")") + 2:].split()


def processes():
    """Every process's parent and the ticks it and its waited-for children
    used (utime, stime, cutime, cstime: proc(5) fields 14 to 17)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = stat_fields(entry)
        except OSError:
            continue  # ended while the table was read
        found[entry] = (fields[1], sum(int(x) for x in fields[11:15]))
    return found


def ticks(pid, table):
    if pid not in table:
        return 0
    children = [child for child, (parent, _) in table.items() if parent == pid]
    return table[pid][1] + sum(ticks(child, table) for child in children)


if __name__ == "__main__":
    table = processes()
    print(" ".join(str(ticks(pid, table)) for pid in sys.argv[1:]))
