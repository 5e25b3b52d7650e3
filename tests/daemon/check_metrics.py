#!/usr/bin/python3
"""Checks cyclecastd's /metrics text with an independent parser, Debian's python3-prometheus-client.

Usage: check_metrics.py FILE

Exit 0 when the text parses, every family appears once (a family whose samples interleave with
another's is split by the parser into several of the same name), and the families cyclecastd
documents (docs/daemon.md, "Metrics") are there with their types and labels; otherwise 1, with a
line per problem. Run with Debian's /usr/bin/python3: the module is the Debian package's.
"""
import collections
import sys

from prometheus_client.parser import text_string_to_metric_families

# name as the parser reports it (a counter without its _total) -> (type, labels of its samples)
EXPECTED = {
    "cyclecast_messages": ("counter", set()),
    "cyclecast_rejected": ("counter", {"reason"}),
    "cyclecast_commit_seconds": ("histogram", set()),
    "cyclecast_mqtt_connected": ("gauge", set()),
    "cyclecast_http_responses": ("counter", {"code"}),
    "cyclecast_live_mae_ratio": ("gauge", {"model", "origin", "step"}),
    "cyclecast_live_scored": ("gauge", {"model", "origin", "step"}),
    "cyclecast_retrain_progress_ratio": ("gauge", set()),
    "cyclecast_forecasts_implausible": ("counter", {"origin"}),
    "cyclecast_forecasts_past_end_of_life": ("counter", set()),
    "cyclecast_drift_detected": ("gauge", set()),
    "cyclecast_drift_mean_error": ("gauge", set()),
    "cyclecast_wal_bytes": ("gauge", set()),
    "cyclecast_build_info": ("gauge", {"version", "compiler"}),
    "process_cpu_seconds": ("counter", set()),
    "process_start_time_seconds": ("gauge", set()),
    "process_resident_memory_bytes": ("gauge", set()),
    "process_virtual_memory_bytes": ("gauge", set()),
    "process_open_fds": ("gauge", set()),
    "process_max_fds": ("gauge", set()),
}
# Renamed: must be gone.
GONE = ["cyclecast_live_mae", "cyclecast_retrain_progress"]


def problems_of(text):
    families = list(text_string_to_metric_families(text))
    counts = collections.Counter(f.name for f in families)
    for name, n in sorted(counts.items()):
        if n > 1:
            yield f"family {name} appears {n} times (its samples interleave with another's)"
    by_name = {f.name: f for f in families}
    for name, (kind, labels) in EXPECTED.items():
        family = by_name.get(name)
        if family is None:
            yield f"family {name} is missing"
            continue
        if family.type != kind:
            yield f"family {name} is a {family.type}, not a {kind}"
        if not family.samples:
            yield f"family {name} has no sample"
        for sample in family.samples:
            got = set(sample.labels) - {"le"}
            if got != labels:
                yield f"{sample.name} has labels {sorted(got)}, not {sorted(labels)}"
    for name in GONE:
        if name in by_name:
            yield f"family {name} was renamed and must be gone"
    for family in families:
        if family.name.endswith("_ratio"):
            for sample in family.samples:
                if not 0.0 <= sample.value <= 1.0:
                    yield f"{sample.name}{sample.labels} = {sample.value} is not within 0..1"
    lives = by_name.get("cyclecast_live_mae_ratio")
    if lives is not None:
        origins = {s.labels.get("origin") for s in lives.samples}
        models = {s.labels.get("model") for s in lives.samples}
        if len(origins) < 2 or len(models) < 2:
            yield f"live error of models {sorted(models)}, origins {sorted(origins)}: want 2 of each"


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    try:
        problems = list(problems_of(text))
    except ValueError as error:  # the parser refuses the text
        problems = [f"does not parse: {error}"]
    for problem in problems:
        print(problem)
    if not problems:
        print(f"ok: {len(list(text_string_to_metric_families(text)))} families")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
