#!/usr/bin/env python3
"""The few calls bench/ingest/run makes to cyclecastd's operators' API (docs/api.md).

Python's standard library only, so that the benchmark needs nothing beyond what it already uses.
  daemon_api.py retrain BASE TOKEN_FILE   starts a run; prints its id
  daemon_api.py run BASE ID               prints the run: status, stage, progress, detail
  daemon_api.py champion BASE             prints the champion /healthz reports (empty: none)
  daemon_api.py forecasts BASE            prints the counter cyclecast_forecasts_total
"""
import json
import sys
import urllib.request


def fetch(url, token=None):
    request = urllib.request.Request(url, method="POST" if token else "GET")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read().decode()
    except urllib.error.HTTPError as error:
        # /healthz answers 503 when degraded, with the same body.
        if error.code == 503:
            return error.read().decode()
        sys.exit(f"daemon_api.py: {url}: HTTP {error.code}: {error.read().decode()}")


def main(argv):
    command, base = argv[1], argv[2]
    if command == "retrain":
        with open(argv[3]) as token_file:
            token = token_file.read().strip()
        print(json.loads(fetch(base + "/api/v1/retrain", token))["id"])
    elif command == "run":
        run = json.loads(fetch(base + "/api/v1/runs/" + argv[3]))
        progress = run.get("progress")
        progress = "-" if progress is None else f"{progress:.3f}"
        detail = run.get("detail") or run.get("error") or ""
        print(f"{run['status']} stage={run['stage']} progress={progress} detail={detail}")
    elif command == "champion":
        print(json.loads(fetch(base + "/healthz")).get("champion") or "")
    elif command == "forecasts":
        for line in fetch(base + "/metrics").splitlines():
            if line.startswith("cyclecast_forecasts_total "):
                print(int(float(line.split()[1])))
                return
        sys.exit("daemon_api.py: no cyclecast_forecasts_total in /metrics")
    else:
        sys.exit(f"daemon_api.py: unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
