#!/usr/bin/python3
"""Checks a running cyclecastd against its OpenAPI description (docs/openapi.json).

Calls every documented operation, its successful case and the error cases the description
lists, and validates each answer with an independent validator (Debian's python3-jsonschema,
JSON Schema draft 2020-12, the dialect of OpenAPI 3.1): the status must be one the operation
documents, the Content-Type the one documented for it, the documented headers present, and the
body valid against the documented schema. Object schemas that do not say otherwise are closed
for the check (additionalProperties: false), so that a field the daemon sends but the
description does not name fails too; the published description leaves them open, so that
clients ignore fields added later.

Run by tests/daemon/openapi_daemon_test.cc against a daemon whose registry holds two models
(one the champion), whose runs have reports and whose cells have scored forecasts:
  check_live.py DOCUMENT BASE_URL TOKEN
and, once the daemon has lost its broker, for the degraded health answer (503) alone:
  check_live.py DOCUMENT BASE_URL TOKEN degraded
Prints one line per request and "ok: N requests, M operations" at the end; exit 1 on any
mismatch, with every mismatch listed.
"""
import copy
import http.client
import json
import sys
import time
import urllib.parse

import jsonschema

OPERATION_KEYS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def closed(schema):
    """The schema with every object that names its properties, and says nothing else of the
    rest, closed to other properties."""
    if isinstance(schema, dict):
        out = {key: closed(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out \
                and "unevaluatedProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [closed(value) for value in schema]
    return schema


class Checker:
    def __init__(self, document, base_url, token):
        self.document = document
        self.strict = closed(copy.deepcopy(document))
        self.resolver = jsonschema.RefResolver.from_schema(self.strict)
        url = urllib.parse.urlsplit(base_url)
        self.host, self.port = url.hostname, url.port
        self.token = token
        self.failures = []
        self.requests = 0
        self.seen = {}  # (path, method) -> set of statuses answered

    def fail(self, what):
        self.failures.append(what)
        print("FAIL: " + what)

    def operation(self, path, method):
        item = self.document["paths"].get(path)
        if item is None or method not in item:
            raise KeyError(f"{method.upper()} {path} is not in the description")
        return item[method]

    def call(self, method, path, params=None, token=None, body=None, expect=None):
        """Sends METHOD on `path` with `params` put in as given (already encoded), and checks
        the answer against the description. Returns (status, headers, body bytes)."""
        target = path
        for name, value in (params or {}).items():
            target = target.replace("{" + name + "}", value)
        headers = {"Connection": "close"}
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        payload = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        connection.request(method.upper(), target, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        self.requests += 1
        status = response.status
        print(f"{method.upper()} {target} -> {status}")
        self.seen.setdefault((path, method), set()).add(status)
        where = f"{method.upper()} {target} ({status})"
        if expect is not None and status != expect:
            self.fail(f"{where}: expected {expect}; body {data[:300]!r}")
        if response.getheader("Date") is None:
            self.fail(f"{where}: no Date header")
        self.check(path, method, status, response, data, where)
        return status, response, data

    def check(self, path, method, status, response, data, where):
        documented = self.operation(path, method)["responses"]
        answer = documented.get(str(status))
        if answer is None:
            self.fail(f"{where}: status not documented (documented: {', '.join(documented)})")
            return
        if "$ref" in answer:
            answer = self.resolve(answer["$ref"])
        for header in answer.get("headers", {}):
            if response.getheader(header) is None:
                self.fail(f"{where}: documented header {header} missing")
        content = answer.get("content", {})
        content_type = response.getheader("Content-Type")
        if content_type not in content:
            self.fail(f"{where}: Content-Type {content_type!r} not documented ({list(content)})")
            return
        if not content_type.startswith("application/json"):
            return  # text, HTML, a bundle: nothing to validate but the media type
        try:
            value = json.loads(data)
        except ValueError as e:
            self.fail(f"{where}: body is not JSON ({e})")
            return
        schema = self.strict_of(path, method, status, content_type)
        validator = jsonschema.Draft202012Validator(schema, resolver=self.resolver)
        for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
            at = "/".join(str(p) for p in error.absolute_path)
            self.fail(f"{where}: at /{at}: {error.message[:300]}")

    def resolve(self, ref):
        node = self.document
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        return node

    def strict_of(self, path, method, status, content_type):
        answer = self.strict["paths"][path][method]["responses"][str(status)]
        if "$ref" in answer:
            node = self.strict
            for part in answer["$ref"].lstrip("#/").split("/"):
                node = node[part]
            answer = node
        return answer["content"][content_type]["schema"]

    def json_of(self, data):
        return json.loads(data)

    def poll(self, condition, timeout_s, what):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        self.fail(f"timed out waiting for {what}")
        return False


def run_checks(c):
    token = c.token
    # Every schema of the description is a valid draft 2020-12 schema.
    for name, schema in c.strict["components"]["schemas"].items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            c.fail(f"components/schemas/{name} is not a valid schema: {e.message}")

    # Health, metrics, this description.
    c.call("get", "/healthz", expect=200)
    c.call("get", "/metrics", expect=200)
    _, _, served = c.call("get", "/api/v1/openapi.json", expect=200)
    if json.loads(served) != c.document:
        c.fail("GET /api/v1/openapi.json: not the description this check reads")

    # Cells.
    _, _, data = c.call("get", "/api/v1/cells", expect=200)
    cells = c.json_of(data)
    forecast_cells = [x["cell_id"] for x in cells if x.get("forecast")]
    if not forecast_cells:
        c.fail("no cell has a forecast: the test's data should give some")
    for cell in forecast_cells[:1] + [x["cell_id"] for x in cells if x["cell_id"] == "t5"]:
        c.call("get", "/api/v1/cells/{cell}", {"cell": cell}, expect=200)
    c.call("get", "/api/v1/cells/{cell}", {"cell": "no-such-cell"}, expect=404)
    c.call("get", "/api/v1/cells/{cell}", {"cell": "%2e%2e"}, expect=400)
    c.call("get", "/api/v1/cells/{cell}", {"cell": "x" * 65}, expect=400)

    # Models and bundles.
    _, _, data = c.call("get", "/api/v1/models", expect=200)
    models = c.json_of(data)
    champions = [m["version"] for m in models if m["status"] == "champion"]
    others = [m["version"] for m in models if m["status"] != "champion"]
    if len(champions) != 1 or not others:
        c.fail(f"the test's registry should hold a champion and another model: {models}")
        return
    if not any(m["live_error"] for m in models):
        c.fail("no model has a live error: the test's data should score forecasts")
    for version in champions + others:
        c.call("get", "/api/v1/models/{version}", {"version": version}, expect=200)
        c.call("get", "/api/v1/models/{version}/bundle", {"version": version}, expect=200)
    c.call("get", "/api/v1/models/{version}", {"version": "no-such-model"}, expect=404)
    c.call("get", "/api/v1/models/{version}", {"version": ".hidden"}, expect=400)
    c.call("get", "/api/v1/models/{version}/bundle", {"version": "no-such-model"}, expect=404)
    c.call("get", "/api/v1/models/{version}/bundle", {"version": "a%2fb"}, expect=400)

    # Runs and reports.
    _, _, data = c.call("get", "/api/v1/runs", expect=200)
    runs = c.json_of(data)
    with_report = [r["id"] for r in runs if r["report_url"]]
    if not with_report:
        c.fail(f"no run has a report: {runs}")
    for run in runs:
        c.call("get", "/api/v1/runs/{id}", {"id": str(run["id"])}, expect=200)
    for run in with_report:
        c.call("get", "/api/v1/runs/{id}/report", {"id": str(run)}, expect=200)
    c.call("get", "/api/v1/runs/{id}", {"id": "999999"}, expect=404)
    c.call("get", "/api/v1/runs/{id}", {"id": "0"}, expect=400)
    c.call("get", "/api/v1/runs/{id}", {"id": "abc"}, expect=400)
    c.call("get", "/api/v1/runs/{id}/report", {"id": "999999"}, expect=404)
    c.call("get", "/api/v1/runs/{id}/report", {"id": "1x"}, expect=400)

    # Edge nodes (the dashboard's nodes page).
    c.call("get", "/api/v1/nodes", expect=200)

    # Changes: the refusals first (no token, a wrong one, a bad body), then the changes.
    why = {"who": "openapi-check", "why": "the live check says so"}
    promote = "/api/v1/models/{version}/promote"
    other = {"version": others[0]}
    c.call("post", promote, other, expect=401)
    c.call("post", promote, other, token="not-the-token", expect=403)
    c.call("post", promote, other, token=token, body={"whyy": "typo"}, expect=400)
    c.call("post", promote, other, token=token, body=b"[1, 2", expect=400)
    c.call("post", promote, {"version": "no-such-model"}, token=token, body=why, expect=404)
    c.call("post", promote, {"version": "%00"}, token=token, body=why, expect=400)
    c.call("post", promote, {"version": champions[0]}, token=token, body=why, expect=409)
    c.call("post", promote, other, token=token, body=why, expect=200)
    c.call("post", "/api/v1/rollback", expect=401)
    c.call("post", "/api/v1/rollback", token="not-the-token", expect=403)
    c.call("post", "/api/v1/rollback", token=token, body={"who": 7}, expect=400)
    c.call("post", "/api/v1/rollback", token=token, body=why, expect=200)
    # The model promoted by hand is rolled back now, so there is nothing to go back to.
    c.call("post", "/api/v1/rollback", token=token, body=why, expect=409)

    move = "/api/v1/cells/{cell}/move"
    c.call("post", move, {"cell": "t1"}, expect=401)
    c.call("post", move, {"cell": "t1"}, token="not-the-token", body={"rig": "rig-b"}, expect=403)
    c.call("post", move, {"cell": "t1"}, token=token, body=why, expect=400)  # no rig
    c.call("post", move, {"cell": "t1"}, token=token, body={"rig": "../x"}, expect=400)
    c.call("post", move, {"cell": "no-such-cell"}, token=token, body={"rig": "rig-b"}, expect=404)
    c.call("post", move, {"cell": "t1"}, token=token, body=dict(why, rig="rig-b"), expect=200)

    retrain = "/api/v1/retrain"
    c.call("post", retrain, expect=401)
    c.call("post", retrain, token="not-the-token", expect=403)
    c.call("post", retrain, token=token, body={"who": "x" * 129}, expect=400)
    status, _, data = c.call("post", retrain, token=token, body=why, expect=200)
    if status == 200:
        started = c.json_of(data)
        # While it runs: a second one conflicts, and the run shows what it is doing.
        c.call("post", retrain, token=token, body=why, expect=409)
        c.call("get", "/api/v1/runs", expect=200)
        c.call("get", "/api/v1/runs/{id}", {"id": str(started["id"])}, expect=200)
        c.call("get", "/healthz")

    # Every documented operation was called, with its success and at least one client error it
    # documents.
    for path, item in c.document["paths"].items():
        for method in (m for m in item if m in OPERATION_KEYS):
            seen = c.seen.get((path, method), set())
            documented = {int(s) for s in item[method]["responses"]}
            if not any(200 <= s < 300 for s in seen):
                c.fail(f"{method.upper()} {path}: no successful answer seen")
            if any(400 <= s < 500 for s in documented) and not any(400 <= s < 500 for s in seen):
                c.fail(f"{method.upper()} {path}: none of its documented client errors seen")


def check_degraded(c):
    _, _, data = c.call("get", "/healthz", expect=503)
    if c.json_of(data).get("problems") == []:
        c.fail("GET /healthz (503): degraded without a problem")


def main():
    if len(sys.argv) not in (4, 5) or sys.argv[4:] not in ([], ["degraded"]):
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        document = json.load(f)
    checker = Checker(document, sys.argv[2], sys.argv[3])
    if sys.argv[4:] == ["degraded"]:
        check_degraded(checker)
        operations = 1
    else:
        run_checks(checker)
        operations = sum(1 for item in document["paths"].values()
                         for m in item if m in OPERATION_KEYS)
    if checker.failures:
        print(f"{len(checker.failures)} failures in {checker.requests} requests:")
        for failure in checker.failures:
            print("  " + failure)
        sys.exit(1)
    print(f"ok: {checker.requests} requests, {operations} operations")


if __name__ == "__main__":
    main()
