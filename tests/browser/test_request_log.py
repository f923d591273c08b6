"""The request log in a real browser: find a request by the client's id, open its detail."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import log_in
from tests.factories import UsageRecordFactory


def test_a_viewer_finds_a_request_by_its_x_request_id_and_reads_its_attempts(page: Page, acme):
    UsageRecordFactory(tenant=acme["tenant"], request_id="req_other")
    UsageRecordFactory(
        tenant=acme["tenant"],
        api_key=acme["key"],
        request_id="req_wanted",
        client_request_id="order-1234",
        upstream_request_id="up_abc",
        attempts=[
            {
                "provider": "openai-main",
                "upstream_model": "gpt-5",
                "status": 529,
                "latency_ms": 20.0,
                "error_type": "overloaded_error",
                "error_message": "upstream overloaded",
                "upstream_request_id": "up_first",
            },
            {
                "provider": "anthropic-main",
                "upstream_model": "claude-x",
                "status": 200,
                "latency_ms": 90.0,
                "error_type": None,
                "error_message": "",
                "upstream_request_id": "up_abc",
            },
        ],
        warnings=["top_k dropped: not supported by provider openai-main"],
    )
    UsageRecordFactory(
        tenant=acme["other"], request_id="req_globex", client_request_id="order-1234"
    )
    log_in(page, "victor")

    page.goto("/dashboard/acme/requests/")
    page.get_by_label("Request id").fill("order-1234")
    page.get_by_role("button", name="Search").click()

    rows = page.locator("table.records tbody tr")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link", name="req_wanted").click()
    expect(page).to_have_url(re.compile(r"/dashboard/acme/requests/req_wanted/$"))
    attempts = page.get_by_role("region", name="Attempts")
    expect(attempts.locator("tbody tr")).to_have_count(2)
    expect(attempts).to_contain_text("overloaded_error upstream overloaded")
    expect(attempts).to_contain_text("up_abc")
    expect(page.get_by_role("region", name="Warnings")).to_contain_text("top_k dropped")


def test_another_tenants_request_is_not_found_in_the_browser(page: Page, acme):
    UsageRecordFactory(tenant=acme["other"], request_id="req_globex")
    log_in(page, "alice")
    response = page.goto("/dashboard/acme/requests/req_globex/")
    assert response is not None and response.status == 404
