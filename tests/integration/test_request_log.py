"""The request log in the dashboard and the REST API: search, filters, detail, exports."""

from __future__ import annotations

import csv
import io
import json

import pytest
from rest_framework.test import APIClient

from tests.factories import UsageRecordFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    return APIClient()


ATTEMPTS = [
    {
        "provider": "p1",
        "upstream_model": "gpt-1",
        "status": 500,
        "latency_ms": 12.5,
        "error_type": "api_error",
        "error_message": "upstream answered HTTP 500",
        "upstream_request_id": "up_first",
    },
    {
        "provider": "p2",
        "upstream_model": "gpt-2",
        "status": 200,
        "latency_ms": 80.0,
        "error_type": None,
        "error_message": "",
        "upstream_request_id": "up_second",
    },
]


@pytest.fixture
def log(people):
    """acme: a fallback that succeeded, a failure, a count; globex: one request."""
    fallback = UsageRecordFactory(
        tenant=people.tenant,
        api_key=people.key,
        request_id="req_fallback",
        client_request_id="=client-42",  # a spreadsheet formula, typed by a tenant
        upstream_request_id="up_second",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        provider="p2",
        attempts=ATTEMPTS,
        warnings=["top_k dropped: not supported by provider p2"],
        cost_parts={"input": "0.000300000", "output": "0.000750000"},
        ttfb_ms=100.0,
        latency_ms=400.0,
        overhead_ms=1.5,
    )
    failed = UsageRecordFactory(
        tenant=people.tenant,
        request_id="req_failed",
        status="error",
        http_status=429,
        error_type="rate_limit_error",
        error_message="rate limit reached",
        model="claude-haiku",
    )
    counted = UsageRecordFactory(
        tenant=people.tenant, request_id="req_count", endpoint="count_tokens"
    )
    theirs = UsageRecordFactory(
        tenant=people.other, request_id="req_theirs", client_request_id="=client-42"
    )
    return fallback, failed, counted, theirs


def ids(page) -> list[str]:
    return [r.request_id for r in page.context["page"].object_list]


# --- Dashboard ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "req_fallback"}, ["req_fallback"]),
        ({"q": "=client-42"}, ["req_fallback"]),  # the client's id, never another tenant's
        ({"q": "up_second"}, ["req_fallback"]),  # the provider's id
        ({"q": "req_theirs"}, []),
        ({"status": "error"}, ["req_failed"]),
        ({"error_type": "rate_limit_error"}, ["req_failed"]),
        ({"model": "claude-haiku"}, ["req_failed"]),
        ({"provider": "p2"}, ["req_fallback"]),
        ({"endpoint": "count_tokens"}, ["req_count"]),
    ],
)
def test_the_log_is_searched_and_filtered_within_the_tenant(client, people, log, query, expected):
    client.force_login(people.viewer)
    assert ids(client.get("/dashboard/acme/requests/", query)) == expected


def test_the_log_filters_by_key(client, people, log):
    client.force_login(people.owner)
    page = client.get("/dashboard/acme/requests/", {"key": people.key.pk})
    assert ids(page) == ["req_fallback"]
    theirs = client.get("/dashboard/acme/requests/", {"key": people.other_key.pk})
    assert theirs.status_code == 200 and ids(theirs) != []  # not a choice: the filter is ignored
    assert "Select a valid choice" in theirs.content.decode()


def test_the_detail_shows_every_attempt_timing_cost_part_and_warning(client, people, log):
    client.force_login(people.viewer)
    page = client.get("/dashboard/acme/requests/req_fallback/").content.decode()
    for shown in (
        "up_first",
        "up_second",
        "upstream answered HTTP 500",
        "gpt-2",
        "top_k dropped: not supported by provider p2",
        "0.000750000",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "1.50 ms",  # overhead
        "300.0 ms",  # generation: latency - time to first byte
    ):
        assert shown in page, shown


def test_another_tenants_request_is_not_found(client, people, log):
    client.force_login(people.owner)
    assert client.get("/dashboard/acme/requests/req_theirs/").status_code == 404
    assert client.get("/dashboard/globex/requests/req_theirs/").status_code == 404


def test_the_export_is_the_filtered_log_in_csv_and_json_lines(client, people, log):
    client.force_login(people.viewer)
    as_csv = client.get("/dashboard/acme/requests/export.csv", {"provider": "p2"})
    as_jsonl = client.get("/dashboard/acme/requests/export.jsonl")

    rows = list(csv.DictReader(io.StringIO(b"".join(as_csv.streaming_content).decode())))
    lines = [json.loads(x) for x in b"".join(as_jsonl.streaming_content).decode().splitlines()]
    assert [r["request_id"] for r in rows] == ["req_fallback"]
    assert rows[0]["client_request_id"] == "'=client-42"  # never a formula in a spreadsheet
    assert json.loads(rows[0]["attempts"]) == ATTEMPTS
    assert {line["request_id"] for line in lines} == {"req_fallback", "req_failed", "req_count"}
    assert as_jsonl.headers["Content-Type"] == "application/x-ndjson"
    assert client.get("/dashboard/acme/requests/export.xlsx").status_code == 404


def test_an_empty_export_still_has_its_header(client, people):
    client.force_login(people.viewer)
    body = b"".join(client.get("/dashboard/acme/requests/export.csv").streaming_content)
    assert body.decode().startswith("request_id,endpoint,")


# --- REST API -----------------------------------------------------------------------------------


def test_the_rest_log_searches_and_filters(api, people, log):
    api.force_login(people.viewer)

    def found(**query) -> list[str]:
        return [r["request_id"] for r in api.get("/api/v1/requests", query).json()["results"]]

    assert found(q="=client-42") == ["req_fallback"]
    assert found(key=people.key.prefix) == ["req_fallback"]
    assert found(key=people.other_key.prefix) == []  # another tenant's key narrows to nothing
    assert found(error_type="rate_limit_error") == ["req_failed"]
    assert found(q="req_theirs") == []


def test_the_rest_detail_has_the_attempts_and_is_404_for_another_tenant(api, people, log):
    api.force_login(people.viewer)
    detail = api.get("/api/v1/requests/req_fallback").json()
    assert detail["attempts"] == ATTEMPTS
    assert detail["generation_ms"] == 300.0 and detail["key_prefix"] == people.key.prefix
    assert detail["cost_parts"] == {"input": "0.000300000", "output": "0.000750000"}
    assert api.get("/api/v1/requests/req_theirs").status_code == 404


def test_the_rest_export_streams_json_lines_whatever_the_accept_header(api, people, log):
    api.force_login(people.viewer)
    response = api.get("/api/v1/requests/export.jsonl", HTTP_ACCEPT="application/x-ndjson")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert response.status_code == 200 and len(lines) == 3
    assert api.get("/api/v1/requests/export.pdf").status_code == 404


def test_a_filter_value_out_of_bounds_is_a_400(api, people):
    api.force_login(people.viewer)
    assert api.get("/api/v1/requests", {"q": "x" * 129}).status_code == 400
    assert api.get("/api/v1/requests", {"endpoint": "embeddings"}).status_code == 400


@pytest.fixture
def captured(people, log):
    from datetime import timedelta

    from django.utils import timezone

    from gateway.models import CapturedBody

    return CapturedBody.objects.create(
        request_id="req_fallback",
        tenant=people.tenant,
        request='{"messages": "the private prompt"}',
        response='{"content": "the private answer"}',
        captured_at=timezone.now(),
        expires_at=timezone.now() + timedelta(days=7),
    )


def test_captured_bodies_are_shown_to_owners_and_admins_only(client, people, captured):
    client.force_login(people.owner)
    assert "the private prompt" in client.get("/dashboard/acme/requests/req_fallback/").text
    client.force_login(people.viewer)
    page = client.get("/dashboard/acme/requests/req_fallback/")
    assert page.status_code == 200 and "the private prompt" not in page.text


@pytest.mark.django_db(transaction=True)  # a key's lookup runs on another connection
def test_captured_bodies_in_the_rest_api_need_an_owners_session_never_a_key(api, people, captured):
    api.force_login(people.admin)
    assert (
        api.get("/api/v1/requests/req_fallback").json()["captured"]["request"].endswith('prompt"}')
    )
    api.force_login(people.viewer)
    assert "captured" not in api.get("/api/v1/requests/req_fallback").json()
    api.logout()
    by_key = api.get("/api/v1/requests/req_fallback", HTTP_X_API_KEY=people.key.secret)
    assert by_key.status_code == 200 and "captured" not in by_key.json()
