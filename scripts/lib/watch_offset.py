"""Waits until a connector's stored offset meets each of some conditions
in turn and prints, one line each, the time (seconds since the epoch) at
which it was first seen to.

    watch_offset.py REST CONNECTOR READY_FILE CONDITION...

A CONDITION is a Python expression over `o`, the connector's offset (the
first partition that is not a source's schema history; a sink's is
`{"kafka_offset": N}`), e.g. "o.get('tx_seq') == 9". READY_FILE is
created once the watcher polls, so
a bench can start its clock after this process started: a Python start
costs ~0.1 s of CPU on the bench machine, and the benches' earlier loop
(curl and two Python starts every 50 ms) took most of a core from the
two the measured worker shares with its database and broker.
"""

import json
import sys
import time
import urllib.request

POLL_SECONDS = 0.02
GIVE_UP_SECONDS = 1800


def offset(rest: str, connector: str) -> dict:
    with urllib.request.urlopen(f"{rest}/connectors/{connector}/offsets", timeout=5) as answer:
        offsets = json.load(answer)["offsets"]
    data = [o["offset"] for o in offsets if "schema_history" not in o["partition"]]
    return data[0] if data else {}


def main() -> int:
    rest, connector, ready, *conditions = sys.argv[1:]
    tests = [compile(c, "condition", "eval") for c in conditions]
    open(ready, "w").close()
    deadline = time.time() + GIVE_UP_SECONDS
    while tests and time.time() < deadline:
        try:
            o = offset(rest, connector)
        except OSError:
            o = {}
        while tests and eval(tests[0], {}, {"o": o}):
            print(f"{time.time():.6f}", flush=True)
            tests.pop(0)
        if tests:
            time.sleep(POLL_SECONDS)
    if tests:
        print(f"{connector}'s offset never met {conditions[-len(tests)]} in {GIVE_UP_SECONDS} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
