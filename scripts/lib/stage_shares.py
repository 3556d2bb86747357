"""Where a bench phase's connector spent its time, from the worker's
/metrics, as a phrase for the phase's note:

    stage_shares.py REST CONNECTOR PHASE_SECONDS [AT_START]
    stage_shares.py REST CONNECTOR --now     (prints AT_START, one line)

- a sink: the share of the phase it spent applying batches to the target
  (`sluice_sink_put_seconds_total`) and waiting for the next batch to be
  read and decoded (`sluice_sink_next_batch_wait_seconds_total`). Applying
  most of the time means the target's side paces the sink, and a faster
  decoder would not make it faster;
- a source: the share the source task spent handing records over, nearly
  all of it waiting for the runtime to take them
  (`sluice_source_emit_seconds_total`), and the share the runtime waited
  for the broker (`sluice_source_broker_wait_seconds_total`). A task
  seldom held back is what paces its path; one held back most of the time
  waits on conversion or the broker.

The counters start with the connector: read them once its phase is done
and before it is deleted; a phase that resumes a connector created
before passes what `--now` printed at its start (taken before the clock
starts, as a Python start costs the machine ~0.1 s of CPU). Prints
nothing when the worker has no such series.
"""

import json
import sys
import urllib.request


def series(metrics_text, connector):
    """The connector's task-0 values of every series, by name."""
    label = f'{{connector="{connector}",task="0"}} '
    values = {}
    for line in metrics_text.splitlines():
        name, sep, value = line.partition(label)
        if sep and not line.startswith("#"):
            try:
                values[name] = float(value)
            except ValueError:
                pass
    return values


def phrase(values, seconds):
    """The note's words for a phase of `seconds`; empty when unknown."""
    if seconds <= 0:
        return ""

    def share(name):
        return f"{100 * values.get(name, 0.0) / seconds:.0f}%"

    if values.get("sluice_sink_put_batches_total", 0) > 0:
        return (f"applying {share('sluice_sink_put_seconds_total')} of the phase, "
                f"waiting for the next batch {share('sluice_sink_next_batch_wait_seconds_total')}")
    if "sluice_source_emit_seconds_total" in values:
        return (f"source held back by the runtime {share('sluice_source_emit_seconds_total')} of the phase, "
                f"runtime by the broker {share('sluice_source_broker_wait_seconds_total')}")
    return ""


def since(now, start):
    """The counters' growth from `start` (a `--now` line) to `now`."""
    return {name: value - start.get(name, 0.0) for name, value in now.items()}


def main(args):
    if len(args) not in (3, 4):
        sys.exit("usage: stage_shares.py REST CONNECTOR PHASE_SECONDS [AT_START] | REST CONNECTOR --now")
    rest, connector, seconds = args[:3]
    with urllib.request.urlopen(f"{rest}/metrics", timeout=5) as answer:
        values = series(answer.read().decode(), connector)
    if seconds == "--now":
        print(json.dumps(values))
        return
    if len(args) == 4:
        values = since(values, json.loads(args[3]))
    print(phrase(values, float(seconds)))


if __name__ == "__main__":
    main(sys.argv[1:])
