"""Bad input through the real servers: a 4xx in the surface's own error shape, never a 500.

`/v1` answers Anthropic's error shape; the REST API DRF's JSON (`{"detail": ...}` or field
errors); the dashboard a page with the form's error. Content the upstream would refuse is
refused before any upstream call, and a model another tenant uses is not found, word for word
like a model that does not exist.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import msgspec
import pytest

from tests.factories import MembershipFactory, UserFactory
from tests.hostile.conftest import assert_error_shape, assert_healthy

HELLO = b'"messages":[{"role":"user","content":"hi"}]'
ENDPOINTS = ["/v1/messages", "/v1/messages/count_tokens"]


def post(stage, path: str, body: bytes | dict, key: str, **headers) -> httpx.Response:
    content = body if isinstance(body, bytes) else msgspec.json.encode(body)
    return httpx.post(
        stage.gateway.url + path,
        content=content,
        headers={"x-api-key": key, "content-type": "application/json", **headers},
        timeout=10,
    )


def body_with(extra: bytes) -> bytes:
    return b'{"model":"claude-test","max_tokens":5,' + HELLO + b"," + extra + b"}"


@pytest.fixture(params=["anthropic", "openai"])
def route_key(request, hostile) -> str:
    """A key for `claude-test`, served by a pass-through (anthropic) or a translated route."""
    return hostile.one_route(request.param, "up-model")


# --- Malformed JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("where", ["content", "unknown"])
def test_json_nested_1000_deep_is_a_400(hostile, route_key, path, where):
    deep = b"[" * 1000 + b"]" * 1000
    if where == "content":
        body = (
            b'{"model":"claude-test","max_tokens":5,"messages":[{"role":"user","content":'
            b'[{"type":"text","text":"hi","x":' + deep + b"}]}]}"
        )
    else:
        body = body_with(b'"zz":' + deep)

    answer = post(hostile, path, body, route_key)

    error = assert_error_shape(answer, 400, "invalid_request_error")
    assert "deeper than 128 levels" in error["message"]
    assert hostile.upstream.requests() == []
    assert_healthy(hostile)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_json_nested_just_past_the_limit_is_a_400_and_just_within_is_served(hostile, path):
    key = hostile.one_route("anthropic", "claude-up")
    # In an unknown top-level field: the `1` sits inside the body's object and 127 arrays.
    within = b"[" * 127 + b"1" + b"]" * 127

    served = post(hostile, path, body_with(b'"zz":' + within), key)
    refused = post(hostile, path, body_with(b'"zz":[' + within + b"]"), key)

    assert served.status_code == 200, served.text
    assert_error_shape(refused, 400, "invalid_request_error")


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "field, body",
    [
        ("system", body_with(b'"system":"caf\xe9"')),
        ("zz", body_with(b'"zz":"caf\xe9"')),
        (
            "messages.0.content",
            b'{"model":"claude-test","max_tokens":5,"messages":[{"role":"user",'
            b'"content":"caf\xe9"}]}',
        ),
    ],
)
def test_invalid_utf8_in_a_string_is_a_400_naming_the_field(hostile, route_key, path, field, body):
    answer = post(hostile, path, body, route_key)

    error = assert_error_shape(answer, 400, "invalid_request_error")
    assert error["message"] == f"{field}: invalid UTF-8 in a string"
    assert hostile.upstream.requests() == []
    assert_healthy(hostile)


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"[0, 1E+999]"])
def test_a_number_out_of_range_in_an_unknown_field_is_a_400(hostile, route_key, path, number):
    answer = post(hostile, path, body_with(b'"zz":' + number), route_key)

    error = assert_error_shape(answer, 400, "invalid_request_error")
    assert error["message"].startswith("zz")
    assert hostile.upstream.requests() == []


# --- Headers and query strings ----------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("value", ["caf\xe9".encode("latin-1"), "café".encode(), b"a b", b"a;b"])
def test_an_anthropic_beta_that_is_not_ascii_tokens_is_a_400(hostile, route_key, path, value):
    answer = post(hostile, path, body_with(b'"zz":1'), route_key, **{"anthropic-beta": value})

    error = assert_error_shape(answer, 400, "invalid_request_error")
    assert error["message"].startswith("anthropic-beta:")
    assert hostile.upstream.requests() == []


def test_a_control_character_in_anthropic_beta_is_a_400(hostile):
    key = hostile.one_route("anthropic", "claude-up")

    answer = post(
        hostile, "/v1/messages", body_with(b'"zz":1'), key, **{"anthropic-beta": b"x\x01"}
    )

    # The production server's HTTP parser refuses it before the gateway sees it; daphne passes
    # it on and the gateway refuses it in Anthropic's shape. A 400 both ways, nothing upstream.
    assert answer.status_code == 400, answer.text
    assert hostile.upstream.requests() == []


def test_a_valid_anthropic_beta_reaches_an_anthropic_upstream(hostile):
    key = hostile.one_route("anthropic", "claude-up")

    answer = post(
        hostile, "/v1/messages", body_with(b'"zz":1'), key, **{"anthropic-beta": "a-1, b"}
    )

    assert answer.status_code == 200, answer.text
    assert hostile.upstream.requests("claude-up")[-1]["headers"]["anthropic-beta"] == "a-1,b"


@pytest.mark.parametrize(
    "header, value, status",
    [
        ("x-api-key", "caf\xe9".encode("latin-1"), 401),
        ("authorization", b"Bearer \xff\xfe", 401),
        ("x-tollgate-strictness", "caf\xe9".encode("latin-1"), 400),
        ("content-length-ish", b"\xff", 200),
    ],
)
def test_other_headers_with_non_ascii_values_are_answered_in_the_error_shape(
    hostile, header, value, status
):
    key = hostile.one_route("openai", "up-model")
    headers = {"x-api-key": key, "content-type": "application/json", header: value}
    if header == "authorization":
        del headers["x-api-key"]

    answer = httpx.post(
        hostile.gateway.url + "/v1/messages", content=body_with(b'"zz":1'), headers=headers
    )

    assert answer.status_code == status, answer.text
    assert answer.json()["type"] == ("message" if status == 200 else "error")


@pytest.mark.parametrize(
    "query",
    ["limit=%FF", "limit=1e400", "limit=" + "9" * 5000, "after_id=%00", "before_id=%FF%FE", "x=%"],
)
def test_the_models_query_string_never_makes_a_500(hostile, query):
    key = hostile.one_route("openai", "up-model")

    answer = httpx.get(
        f"{hostile.gateway.url}/v1/models?{query}", headers={"x-api-key": key}, timeout=10
    )

    assert answer.status_code in (200, 400), answer.text
    assert answer.headers["content-type"] == "application/json"


# --- Strict content, before any upstream call -------------------------------------------------


def image(media_type: str = "image/png", data: str = "iVBORw0KGgo=") -> dict:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


REFUSED_CONTENT = {
    "invalid base64": (
        [image(data="not base64!")],
        "messages.0.content.0.image.source.base64: invalid base64 data",
    ),
    "undocumented media type": (
        [image(media_type="image/svg+xml")],
        "messages.0.content.0.image.source.base64.media_type: "
        "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
    ),
    "pdf media type": (
        [
            {
                "type": "document",
                "source": {"type": "base64", "media_type": "text/html", "data": "PGI+"},
            }
        ],
        "messages.0.content.0.document.source.base64.media_type: Input should be 'application/pdf'",
    ),
    "tool_result without tool_use": (
        [{"type": "tool_result", "tool_use_id": "toolu_other", "content": "42"}],
        "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: "
        "toolu_other. Each `tool_result` block must have a corresponding `tool_use` block in the "
        "previous message.",
    ),
}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("case", sorted(REFUSED_CONTENT))
def test_content_the_upstream_would_refuse_is_a_400_before_any_upstream_call(
    hostile, route_key, path, case
):
    content, message = REFUSED_CONTENT[case]
    body = {
        "model": "claude-test",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": content}],
    }

    answer = post(hostile, path, body, route_key)

    assert assert_error_shape(answer, 400, "invalid_request_error")["message"] == message
    assert hostile.upstream.requests() == []


@pytest.mark.parametrize("max_tokens", [0, -5])
def test_max_tokens_below_one_is_a_400(hostile, route_key, max_tokens):
    body = {
        "model": "claude-test",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "x"}],
    }

    answer = post(hostile, "/v1/messages", body, route_key)

    error = assert_error_shape(answer, 400, "invalid_request_error")
    assert error["message"] == "max_tokens: Input should be greater than or equal to 1"
    assert hostile.upstream.requests() == []


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_max_tokens_above_the_models_output_limit_is_a_400(hostile, kind):
    hostile.apply(
        providers=[hostile.provider(kind)],
        models=[
            hostile.model(
                "claude-capped",
                [{"provider": f"{kind}-fake", "upstream_model": "up-capped"}],
                max_tokens=1000,
            )
        ],
        tenants=[{"name": "acme"}],
    )
    key = hostile.tenant_key("acme")
    ask = {"model": "claude-capped", "messages": [{"role": "user", "content": "x"}]}

    at_limit = post(hostile, "/v1/messages", {**ask, "max_tokens": 1000}, key)
    above = post(hostile, "/v1/messages", {**ask, "max_tokens": 1001}, key)
    huge = post(hostile, "/v1/messages", {**ask, "max_tokens": 10**30}, key)

    assert at_limit.status_code == 200, at_limit.text
    assert assert_error_shape(above, 400, "invalid_request_error")["message"] == (
        "max_tokens: 1001 > 1000, which is the maximum allowed number of output tokens for "
        "claude-capped"
    )
    assert_error_shape(huge, 400, "invalid_request_error")
    assert len(hostile.upstream.requests("up-capped")) == 1


@pytest.mark.parametrize("max_tokens", [2**31, 2**63, 10**30])
def test_a_huge_max_tokens_on_a_model_without_a_limit_is_a_400_under_a_budget(
    hostile, route_key, max_tokens
):
    from accounts.models import Tenant
    from accounts.services import tenant_set_limits

    tenant_set_limits(
        tenant=Tenant.objects.get(name="acme"),
        rpm=None,
        tpm=100_000,
        budget_usd=5,
        budget_period="daily",
    )
    ask = {
        "model": "claude-test",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "x"}],
    }

    answer = post(hostile, "/v1/messages", ask, route_key)

    assert assert_error_shape(answer, 400, "invalid_request_error")["message"].startswith(
        "max_tokens: "
    )
    assert hostile.upstream.requests() == []
    assert_healthy(hostile)


# --- Another tenant's model names -------------------------------------------------------------


def test_another_tenants_model_is_answered_exactly_like_a_model_that_does_not_exist(hostile):
    hostile.apply(
        providers=[hostile.provider("openai")],
        models=[
            hostile.model(name, [{"provider": "openai-fake", "upstream_model": f"up-{name}"}])
            for name in ("claude-ours", "claude-secret")
        ],
        tenants=[{"name": "acme", "models": ["claude-ours"]}, {"name": "globex"}],
    )
    acme = hostile.tenant_key("acme")
    limited = hostile.tenant_key("globex", models=["claude-ours"])

    def answers(key: str, model: str) -> list[tuple[int, dict]]:
        ask = {"model": model, "messages": [{"role": "user", "content": "x"}]}
        replies = [
            post(hostile, "/v1/messages", {**ask, "max_tokens": 5}, key),
            post(hostile, "/v1/messages/count_tokens", ask, key),
            httpx.get(
                f"{hostile.gateway.url}/v1/models/{model}",
                headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
            ),
        ]
        return [(r.status_code, r.json()["error"]) for r in replies]

    def openai_answers(key: str, model: str) -> list[tuple[int, dict]]:
        """The same questions from an OpenAI client: its shape, the same sameness."""
        ask = {"model": model, "messages": [{"role": "user", "content": "x"}]}
        replies = [
            post(hostile, "/v1/chat/completions", ask, key),
            post(hostile, "/v1/responses", {"model": model, "input": "x"}, key),
            httpx.get(f"{hostile.gateway.url}/v1/models/{model}", headers={"x-api-key": key}),
        ]
        return [(r.status_code, r.json()["error"]) for r in replies]

    for key in (acme, limited):
        secret = answers(key, "claude-secret")
        missing = answers(key, "claude-missing")
        assert [status for status, _ in secret] == [404, 404, 404]
        assert [e["message"].replace("secret", "missing") for _, e in secret] == [
            e["message"] for _, e in missing
        ]
        assert {e["type"] for _, e in secret} == {"not_found_error"}
        secret, missing = (
            openai_answers(key, "claude-secret"),
            openai_answers(key, "claude-missing"),
        )
        assert [status for status, _ in secret] == [404, 404, 404]
        assert [e["message"].replace("secret", "missing") for _, e in secret] == [
            e["message"] for _, e in missing
        ]
        assert {(e["type"], e["code"]) for _, e in secret} == {
            ("invalid_request_error", "model_not_found")
        }
    assert hostile.upstream.requests("up-claude-secret") == []


# --- The REST API and the dashboard -----------------------------------------------------------


EDGE_DATES = [
    {"end": "9999-12-31"},
    {"start": "0001-01-01", "end": "0001-01-01"},
    {"end": "0001-01-05"},
    {"start": "9999-12-31"},
]


@pytest.mark.parametrize("path", ["/api/v1/usage", "/api/v1/requests"])
@pytest.mark.parametrize("query", EDGE_DATES)
def test_dates_at_the_calendars_edge_on_the_rest_api_are_a_400_in_json(hostile, path, query):
    key = hostile.one_route("openai", "up-model")

    answer = httpx.get(
        hostile.gateway.url + path, params=query, headers={"x-api-key": key}, timeout=10
    )

    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert "dates must lie between" in answer.text


@pytest.mark.parametrize("path", ["/api/v1/usage", "/api/v1/requests", "/api/v1/keys"])
def test_the_rest_api_answers_accept_text_html_with_a_406_in_json(hostile, path):
    key = hostile.one_route("openai", "up-model")

    html = httpx.get(
        hostile.gateway.url + path, headers={"x-api-key": key, "accept": "text/html"}, timeout=10
    )
    browser = httpx.get(
        hostile.gateway.url + path,
        headers={"x-api-key": key, "accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
        timeout=10,
    )

    assert html.status_code == 406, html.text
    assert html.headers["content-type"] == "application/json"
    assert html.json() == {"detail": "Could not satisfy the request Accept header."}
    assert browser.status_code == 200, browser.text
    assert browser.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "query", ["tenant=%00", "tenant=%FF", "tenant=" + "a" * 5000, "page=%00", "page_size=-1"]
)
def test_other_rest_api_parameters_never_make_a_500(hostile, query):
    key = hostile.one_route("openai", "up-model")

    answer = httpx.get(
        f"{hostile.gateway.url}/api/v1/keys?{query}", headers={"x-api-key": key}, timeout=10
    )

    assert answer.status_code in (200, 400, 404), answer.text
    assert answer.headers["content-type"] == "application/json"


@contextlib.contextmanager
def signed_in(stage, username: str = "edge") -> Iterator[httpx.Client]:
    """A browser session of an owner of acme (the tenant `one_route` made). The session is
    made the way a sign-in makes it (`force_login`), without hashing a password twice: the
    server checks the session, not a password, on every page after the sign-in."""
    from django.test import Client

    from accounts.models import Membership, Tenant

    user = UserFactory(username=username, password=None)
    MembershipFactory(user=user, tenant=Tenant.objects.get(name="acme"), role=Membership.Role.OWNER)
    session = Client()
    session.force_login(user)
    # Any 32 letters and digits are a well-formed CSRF cookie; the form sends the same.
    cookies = {"sessionid": session.cookies["sessionid"].value, "csrftoken": "c" * 32}
    with httpx.Client(base_url=stage.gateway.url, timeout=10, cookies=cookies) as browser:
        yield browser


@pytest.mark.parametrize(
    "body",
    [
        b'{"name":' + b"[" * 1000 + b"]" * 1000 + b"}",
        b'{"name":"ops","expires_in_days":1e400}',
        b'{"name":"caf\xe9"}',
    ],
)
def test_a_hostile_json_body_on_the_rest_api_is_a_400_in_json(hostile, body):
    hostile.one_route("openai", "up-model")
    with signed_in(hostile) as browser:
        answer = browser.post(
            "/api/v1/keys?tenant=acme",
            content=body,
            headers={
                "content-type": "application/json",
                "x-csrftoken": browser.cookies["csrftoken"],
                "referer": hostile.gateway.url + "/dashboard/",
            },
        )

    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"].startswith("JSON parse error - ")


@pytest.mark.parametrize("query", [{"end": "9999-12-31"}, {"end": "0001-01-05"}])
@pytest.mark.parametrize("page", ["", "requests/", "keys/"])
def test_dates_at_the_calendars_edge_on_the_dashboard_are_a_form_error(hostile, query, page):
    hostile.one_route("openai", "up-model")
    with signed_in(hostile) as browser:
        answer = browser.get(f"/dashboard/acme/{page}", params=query)

    assert answer.status_code == 200, answer.text[:500]
    assert "dates must lie between" in answer.text
    assert "Showing the last 30 days instead." in answer.text


@pytest.mark.parametrize("query", [{"end": "9999-12-31"}, {"end": "0001-01-05"}])
def test_dates_at_the_calendars_edge_on_the_export_are_a_400(hostile, query):
    hostile.one_route("openai", "up-model")
    with signed_in(hostile) as browser:
        answer = browser.get("/dashboard/acme/export.csv", params=query)

    assert answer.status_code == 400, answer.text[:500]
    assert "dates must lie between" in answer.text


@pytest.mark.parametrize("name", ["%00", "%FF", "a" * 5000])
def test_the_dashboard_tenant_picker_refuses_a_name_no_tenant_has_with_a_404(hostile, name):
    hostile.one_route("openai", "up-model")
    with signed_in(hostile) as browser:
        answer = browser.get(f"/dashboard/?tenant={name}")

    assert answer.status_code == 404, answer.text[:500]


SEARCH = {"type": "web_search_20250305", "name": "web_search"}
FETCH = {"type": "web_fetch_20250910", "name": "web_fetch"}
REFUSED_SERVER_TOOLS = {
    "both domain lists": (
        {**SEARCH, "allowed_domains": ["a.test"], "blocked_domains": ["b.test"]},
        "tools.0: use either allowed_domains or blocked_domains, not both in the same request",
    ),
    "renamed": (
        {**SEARCH, "name": "search"},
        "tools.0.name: a `web_search_20250305` tool must be named `web_search`",
    ),
    "max_uses zero": ({**SEARCH, "max_uses": 0}, "tools.0.max_uses: Input should be greater"),
    "location not approximate": (
        {**SEARCH, "user_location": {"type": "exact", "city": "Paris"}},
        "tools.0.user_location.type: Input should be 'approximate'",
    ),
    "location of the wrong type": (
        {**SEARCH, "user_location": {"type": "approximate", "city": 7}},
        "tools.0.user_location.city: Input should be a valid string",
    ),
    "a domain with spaces": (
        {**SEARCH, "allowed_domains": ["a.test", "evil test"]},
        "tools.0.allowed_domains.1: not a domain name",
    ),
    "a thousand domains": (
        {**SEARCH, "blocked_domains": [f"d{n}.test" for n in range(1000)]},
        "tools.0.blocked_domains: at most 100 domains",
    ),
    "fetch with both domain lists": (
        {**FETCH, "allowed_domains": ["a.test"], "blocked_domains": ["b.test"]},
        "tools.0: use either allowed_domains or blocked_domains, not both in the same request",
    ),
    "fetch citations not a boolean": (
        {**FETCH, "citations": {"enabled": "yes"}},
        "tools.0.citations.enabled: Input should be a valid boolean",
    ),
    "fetch max_content_tokens zero": (
        {**FETCH, "max_content_tokens": 0},
        "tools.0.max_content_tokens: Input should be greater",
    ),
    "fetch renamed": (
        {**FETCH, "name": "fetch"},
        "tools.0.name: a `web_fetch_20250910` tool must be named `web_fetch`",
    ),
}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("case", sorted(REFUSED_SERVER_TOOLS))
def test_a_bad_web_search_tool_is_a_400_before_any_upstream_call(hostile, route_key, path, case):
    tool, message = REFUSED_SERVER_TOOLS[case]
    body = {
        "model": "claude-test",
        "max_tokens": 5,
        "tools": [tool],
        "messages": [{"role": "user", "content": "search"}],
    }

    answer = post(hostile, path, body, route_key)

    assert assert_error_shape(answer, 400, "invalid_request_error")["message"].startswith(message)
    assert hostile.upstream.requests() == []


def test_a_hostile_context_management_is_a_400_before_any_upstream_call(hostile, route_key):
    edits = [
        {"type": "clear_tool_uses_20250919", "trigger": {"type": "input_tokens", "value": 1e9}}
    ]
    body = {
        "model": "claude-test",
        "max_tokens": 5,
        "context_management": {"edits": edits},
        "messages": [{"role": "user", "content": "hi"}],
    }

    answer = post(hostile, "/v1/messages", body, route_key)

    error = assert_error_shape(answer, 400, "invalid_request_error")
    assert error["message"] == (
        "context_management.edits.0.trigger.value: Input should be a non-negative integer"
    )
    assert hostile.upstream.requests() == []
