"""Structured logs: one JSON access line per request, with what operators search by."""

import json
import time

from tests.e2e.test_routing import ASK, routes


def access_lines(gateway, request_id: str, within: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + within
    while True:
        found = []
        for line in gateway.log().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("request_id") == request_id:
                    found.append(entry)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_each_request_has_one_json_access_line(stage):
    key = routes(stage, ("p1", "openai", "up-1", {}))
    answer = stage.client(key).messages.with_raw_response.create(
        **ASK, extra_headers={"x-request-id": "order-77"}
    )
    request_id = answer.headers["request-id"]

    (line,) = access_lines(stage.gateway, request_id)

    assert line["logger"] == "tollgate.access" and line["level"] == "info"
    assert line["endpoint"] == "messages" and line["tenant"] == "acme"
    assert line["key_prefix"] == key[:11]
    assert (line["model"], line["provider"], line["upstream_model"]) == (
        "claude-test",
        "p1",
        "up-1",
    )
    assert (line["status"], line["http_status"]) == ("ok", 200)
    assert line["client_request_id"] == "order-77" and len(line["trace_id"]) == 32
    assert line["latency_ms"] > 0 and line["input_tokens"] > 0 and "timestamp" in line
    log = stage.gateway.log()
    assert key not in log and "sk-upstream-secret" not in log  # never a secret


def test_count_tokens_is_logged_too(stage):
    key = routes(stage, ("p1", "openai", "up-1", {}))
    answer = stage.client(key).messages.with_raw_response.count_tokens(
        model="claude-test", messages=[{"role": "user", "content": "x"}]
    )
    (line,) = access_lines(stage.gateway, answer.headers["request-id"])
    assert line["endpoint"] == "count_tokens" and line["status"] == "ok"
