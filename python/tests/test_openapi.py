"""docs/openapi.json against a real `vitrine serve`: the server serves the
document, every answer below validates against the schema the document gives
for that route and status (jsonschema, Draft 7), and the document names no
route the server lacks."""

import json
import os
import pathlib
import re
import subprocess
import urllib.error
import urllib.request

import jsonschema
import pytest

from conftest import cli

DOC = json.loads((pathlib.Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())


@pytest.fixture(scope="module")
def server(bundle_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "events.csv"
    p = subprocess.Popen([cli(), "serve", "--bundle", str(bundle_dir), "--port", "0",
                          "--event-log", str(log), "--drain-seconds", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    assert m, f"no listening line: {line!r}"
    yield f"http://127.0.0.1:{m.group(1)}"
    p.terminate()
    assert p.wait(timeout=30) == 0


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def response_schema(path, method, status):
    responses = DOC["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, not in the document"
    r = responses[str(status)]
    if "$ref" in r:
        r = DOC["components"]["responses"][r["$ref"].rsplit("/", 1)[1]]
    return r["content"]["application/json"]["schema"]


def validate(path, method, status, body_text):
    # The document itself is the root, so "#/components/..." refs resolve.
    schema = dict(DOC, **response_schema(path, method, status))
    jsonschema.Draft7Validator(schema).validate(json.loads(body_text))


def test_the_server_serves_the_document(server):
    status, ctype, text = call(server, "GET", "/openapi.json")
    assert status == 200 and ctype == "application/json"
    assert json.loads(text) == DOC


def test_sample_answers_validate(server, bundle_dir):
    items = (bundle_dir / "item_ids.txt").read_text().split()
    users = (bundle_dir / "user_ids.txt").read_text().split()
    samples = [
        ("/health", "GET", "/health", None),
        ("/ready", "GET", "/ready", None),
        ("/similar/{item}", "GET", f"/similar/{items[3]}?k=5&explain=true", None),
        ("/similar/{item}", "GET", "/similar/NO-SUCH-ITEM", None),
        ("/similar/{item}", "GET", f"/similar/{items[3]}?k=0", None),
        ("/recommend", "POST", "/recommend", {"user": users[2], "k": 5, "explain": True}),
        ("/recommend", "POST", "/recommend", {"history": items[:3], "k": 4,
                                              "rules": ["CAP 1 PER brand"]}),
        ("/recommend", "POST", "/recommend", {"user": "someone-new", "k": 3}),
        ("/recommend", "POST", "/recommend", {"k": 3}),
        ("/events", "POST", "/events", {"user": users[2], "item": items[7], "event": "view"}),
        ("/events", "POST", "/events", [{"user": "u1", "item": items[1]},
                                        {"user": "u2", "item": items[2]}]),
        ("/events", "POST", "/events", {"user": "u1", "item": "NO-SUCH-ITEM"}),
        ("/reload", "POST", "/reload", {}),
        ("/reload", "POST", "/reload", {"bundle": "/etc"}),
    ]
    seen = set()
    for documented, method, path, body in samples:
        status, ctype, text = call(server, method, path, body)
        assert ctype == "application/json", (path, ctype)
        validate(documented, method, status, text)
        seen.add((documented, status))
    # Both successes and errors were exercised.
    assert ("/recommend", 200) in seen and ("/recommend", 400) in seen
    assert ("/similar/{item}", 404) in seen and ("/reload", 403) in seen
    status, ctype, text = call(server, "GET", "/metrics")
    assert status == 200 and ctype.startswith("text/plain") and "vitrine_http_requests_total" in text


def test_a_wrong_answer_would_fail_validation():
    # The oracle can fail: a health answer without its generation is refused.
    with pytest.raises(jsonschema.ValidationError):
        validate("/health", "GET", 200, json.dumps({"status": "ok"}))
