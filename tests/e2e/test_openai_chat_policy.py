"""`/v1/chat/completions` under the same tenancy and policy as `/v1/messages`: other tenants,
rate limits, budgets, fallbacks, extras, strictness, usage records and the request log, errors
in OpenAI's shape and the SDK's exception classes, and `/v1/models` in OpenAI's shape."""

from decimal import Decimal

import anthropic
import httpx
import openai
import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import Membership, Tenant
from tests.e2e.chat import (
    ASK,
    KINDS,
    MODEL,
    UPSTREAM_KINDS,
    client,
    openai_error,
    post,
    provider_for,
    route,
)
from tests.e2e.usage import drain, records_for
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker():
    connection = redis.Redis.from_url(settings.REDIS_URL)
    drain(connection)
    yield connection
    connection.close()


def two_routes(stage, first: tuple[str, str], second: tuple[str, str], **key_options) -> str:
    providers = [
        provider_for(stage, kind, f"p{n}-{kind}", timeouts={"first_byte": 1, "idle": 1})
        if kind != "demo"
        else provider_for(stage, kind, f"p{n}-{kind}")
        for n, (kind, _) in enumerate((first, second), 1)
    ]
    routes = [
        {"provider": p["name"], "upstream_model": up, "priority": n}
        for n, (p, (_, up)) in enumerate(zip(providers, (first, second), strict=True), 1)
    ]
    stage.apply(
        providers=providers, models=[stage.model(MODEL, routes)], tenants=[{"name": "acme"}]
    )
    return stage.tenant_key("acme", **key_options)


# --- Tenancy --------------------------------------------------------------------------------------
def test_another_tenants_key_gets_the_same_404_as_for_an_unknown_model(stage):
    provider = stage.provider("openai")
    stage.apply(
        providers=[provider],
        models=[
            stage.model(MODEL, [{"provider": "openai-fake", "upstream_model": "gpt-chat"}]),
            stage.model("theirs", [{"provider": "openai-fake", "upstream_model": "gpt-theirs"}]),
        ],
        tenants=[{"name": "acme", "models": [MODEL]}, {"name": "globex", "models": ["theirs"]}],
    )
    outsider = stage.tenant_key("globex")
    with pytest.raises(openai.NotFoundError) as theirs:
        client(stage, outsider).chat.completions.create(**ASK)
    with pytest.raises(openai.NotFoundError) as unknown:
        client(stage, outsider).chat.completions.create(**{**ASK, "model": "nope"})
    assert theirs.value.body == {
        "message": f"model: unknown model `{MODEL}`",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    assert unknown.value.body["message"] == "model: unknown model `nope`"
    assert theirs.value.request_id.startswith("req_")
    assert stage.upstream.requests("gpt-chat") == []
    mine = client(stage, stage.tenant_key("acme")).chat.completions.create(**ASK)
    assert mine.choices[0].message.content == "echo: hi"


# --- Limits -------------------------------------------------------------------------------------
def test_over_the_rate_limit_is_a_429_with_openais_limit_headers(stage):
    key = route(stage, "openai", "gpt-chat", rpm=2, tpm=100_000)
    chat = client(stage, key).chat.completions
    raw = chat.with_raw_response.create(**ASK)
    assert raw.headers["x-ratelimit-limit-requests"] == "2"
    assert raw.headers["x-ratelimit-remaining-requests"] == "1"
    assert raw.headers["x-ratelimit-limit-tokens"] == "100000"
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    assert not [h for h in raw.headers if h.startswith("anthropic-ratelimit")]
    streamed = post(stage, key, {**ASK, "stream": True})
    assert streamed.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as refused:
        chat.create(**ASK)
    caught = refused.value
    assert caught.status_code == 429
    assert caught.body["type"] == "requests" and caught.body["code"] == "rate_limit_exceeded"
    assert "limit is 2 requests per minute" in caught.body["message"]
    assert caught.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(caught.response.headers["retry-after"]) <= 60
    assert len(stage.upstream.requests("gpt-chat")) == 2


def test_a_spent_budget_is_429_insufficient_quota(stage):
    key = route(stage, "openai", "gpt-chat", budget_usd="0.01", budget_period="daily")
    chat = client(stage, key).chat.completions
    chat.create(**ASK, max_completion_tokens=50)
    with pytest.raises(openai.RateLimitError) as refused:
        chat.create(**ASK, max_completion_tokens=1000)  # worst case $0.015 > $0.01
    assert refused.value.body["type"] == "insufficient_quota"
    assert refused.value.body["code"] == "insufficient_quota"
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert len(stage.upstream.requests("gpt-chat")) == 1


# --- Fallbacks ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "upstream_model"), UPSTREAM_KINDS)
def test_a_failing_first_route_falls_back_to_the_second(stage, kind, upstream_model):
    key = two_routes(stage, (kind, upstream_model), ("openai", "gpt-second"))
    failure = {"status": 500, "error_body": "kaput"}
    stage.upstream.script(upstream_model, failure, failure)
    completion = client(stage, key).chat.completions.create(**ASK, extra_body={"meta": True})
    assert completion.choices[0].message.content == "echo: hi"
    meta = completion.model_extra["meta"]
    assert meta["provider"] == "p2-openai"
    assert [a["status"] for a in meta["attempts"]] == [500, 500, 200]


# --- Extras and strictness ----------------------------------------------------------------
@pytest.mark.parametrize(("kind", "upstream_model"), KINDS)
def test_usage_and_meta_extras_through_extra_body(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    completion = client(stage, key).chat.completions.create(
        **ASK, extra_body={"usage": True, "meta": True}
    )
    usage = completion.usage.model_extra
    assert Decimal(usage["cost_usd"]) > 0
    lines = usage["pricing"]["lines"]
    assert sum(Decimal(line["cost_usd"]) for line in lines) == Decimal(usage["cost_usd"])
    meta = completion.model_extra["meta"]
    assert meta["request_id"] == completion._request_id
    assert meta["upstream_model"] == upstream_model
    if kind != "demo":
        sent = stage.upstream.requests(upstream_model)[-1]["body"]
        assert "usage" not in sent and "meta" not in sent


def test_echo_and_streamed_extras_on_the_usage_chunk(stage):
    key = route(stage, "openai", "gpt-chat")
    echoed = post(stage, key, {**ASK, "echo_upstream_request": True}).json()
    assert echoed["upstream_request"] == stage.upstream.requests("gpt-chat")[-1]["body"]
    stream = client(stage, key).chat.completions.create(
        **ASK, stream=True, extra_body={"usage": True, "meta": True}
    )
    *_, last = list(stream)
    assert last.choices == [] and Decimal(last.usage.model_extra["cost_usd"]) > 0
    assert last.model_extra["meta"]["provider"] == "openai-fake"


def test_debug_needs_the_keys_flag_and_never_shows_credentials(stage):
    key = route(stage, "openai", "gpt-chat")
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client(stage, key).chat.completions.create(**ASK, extra_body={"debug": {"enabled": True}})
    assert refused.value.body["type"] == "permission_error"
    debug_key = stage.tenant_key("acme", allow_debug=True)
    debugged = {"enabled": True, "return_upstream_request": True}
    response = post(stage, debug_key, {**ASK, "debug": debugged})
    debug = response.json()["debug"]
    assert debug["upstream_request"]["url"].endswith("/v1/chat/completions")
    assert debug["upstream_request"]["headers"]["authorization"] == "<redacted>"
    assert "sk-upstream-secret" not in response.text and debug_key not in response.text


def test_strictness_header_refuses_or_reports_an_unknown_field(stage):
    key = route(stage, "openai", "gpt-chat")
    warned = post(stage, key, {**ASK, "mystery": 1})
    assert warned.status_code == 200
    assert warned.headers["tollgate-warnings"] == (
        "mystery dropped: not supported by provider openai-fake"
    )
    refused = post(stage, key, {**ASK, "mystery": 1}, **{"x-tollgate-strictness": "error"})
    assert refused.status_code == 400
    assert openai_error(refused)["param"] == "mystery"
    quiet = post(stage, key, {**ASK, "mystery": 1}, **{"x-tollgate-strictness": "off"})
    assert quiet.status_code == 200 and "tollgate-warnings" not in quiet.headers
    bad = post(stage, key, ASK, **{"x-tollgate-strictness": "loose"})
    assert bad.status_code == 400 and "must be one of" in openai_error(bad)["message"]
    assert len(stage.upstream.requests("gpt-chat")) == 2


# --- Usage records and the request log ------------------------------------------------------------
@pytest.mark.parametrize(("kind", "upstream_model"), KINDS)
def test_every_call_leaves_a_chat_completions_usage_record(stage, broker, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    if kind != "demo":
        stage.upstream.script(upstream_model, {"usage": {"input_tokens": 300, "output_tokens": 22}})
    chat = client(stage, key).chat.completions
    answered = chat.create(**ASK)
    streamed = chat.with_raw_response.create(**ASK, stream=True)
    list(streamed.parse())
    with pytest.raises(openai.BadRequestError) as refused:
        chat.create(**ASK, n=0)  # refused before any upstream call
    ids = [answered._request_id, streamed.headers["x-request-id"], refused.value.request_id]
    rows = records_for(broker, ids)
    first, second, third = (rows[i] for i in ids)
    assert {r.endpoint for r in rows.values()} == {"chat_completions"}
    provider = "demo" if kind == "demo" else f"{kind}-fake"
    assert (first.status, first.model, first.provider) == ("ok", MODEL, provider)
    assert first.upstream_model == upstream_model and first.cost_usd > 0
    assert first.input_tokens == answered.usage.prompt_tokens
    assert first.output_tokens == answered.usage.completion_tokens
    if kind != "demo":
        assert (first.input_tokens, first.output_tokens) == (300, 22)
        assert first.cost_usd == Decimal("0.001230000")  # 300 x $3 + 22 x $15 per M
    assert second.streamed and second.status == "ok" and second.output_tokens > 0
    assert (third.http_status, third.error_type) == (400, "invalid_request_error")


def test_the_request_is_in_the_tenants_request_log(stage, broker):
    key = route(stage, "openai", "gpt-chat")
    answered = client(stage, key).chat.completions.create(**ASK)
    request_id = answered._request_id
    records_for(broker, [request_id])
    viewer = UserFactory(username="vera")
    acme = Tenant.objects.get(name="acme")
    MembershipFactory(user=viewer, tenant=acme, role=Membership.Role.VIEWER)
    api = APIClient()
    api.force_login(viewer)
    found = api.get("/api/v1/requests", {"endpoint": "chat_completions"}).json()["results"]
    assert [r["request_id"] for r in found] == [request_id]
    detail = api.get(f"/api/v1/requests/{request_id}").json()
    assert (detail["endpoint"], detail["model"]) == ("chat_completions", MODEL)
    page = api.get(f"/dashboard/acme/requests/{request_id}/")
    assert page.status_code == 200 and request_id in page.text


# --- Errors ------------------------------------------------------------------------------------
def test_client_errors_are_in_openais_shape_with_the_sdks_classes(stage):
    key = route(stage, "openai", "gpt-chat")
    with pytest.raises(openai.AuthenticationError) as bad_key:
        client(stage, "tg_not-a-real-key").chat.completions.create(**ASK)
    assert bad_key.value.body["code"] == "invalid_api_key"
    assert bad_key.value.request_id.startswith("req_")
    with pytest.raises(openai.BadRequestError) as bad_body:
        client(stage, key).chat.completions.create(**ASK, temperature=7)
    assert bad_body.value.body["param"] == "temperature"
    assert bad_body.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError) as unknown:
        client(stage, key).chat.completions.create(**{**ASK, "model": "gpt-nope"})
    assert unknown.value.body["code"] == "model_not_found"
    missing = httpx.post(stage.gateway.url + "/v1/chat/completions", json=ASK, timeout=10)
    assert missing.status_code == 401 and openai_error(missing)["type"] == "invalid_request_error"
    nested = post(stage, key, {**ASK, "messages": [{"role": "user", "content": [{"type": 1}]}]})
    assert nested.status_code == 400
    assert openai_error(nested)["param"] == "messages[0].content[0].type"
    assert stage.upstream.requests("gpt-chat") == []


@pytest.mark.parametrize(
    ("upstream", "status", "error_class"),
    [
        ({"status": 500, "error_body": "kaput"}, 500, openai.InternalServerError),
        ({"status": 503}, 503, openai.InternalServerError),
        ({"status": 529}, 503, openai.InternalServerError),
        ({"delay_first_byte": 1.5}, 504, openai.InternalServerError),
        # The provider's rate limit is on the operator's account: overloaded, not the client's.
        ({"status": 429}, 503, openai.InternalServerError),
        ({"status": 400}, 400, openai.BadRequestError),
    ],
)
def test_upstream_failures_map_to_openais_statuses(stage, upstream, status, error_class):
    provider = stage.provider("openai", timeouts={"first_byte": 1, "idle": 1})
    stage.apply(
        providers=[provider],
        models=[stage.model(MODEL, [{"provider": "openai-fake", "upstream_model": "gpt-fail"}])],
        tenants=[{"name": "acme"}],
    )
    key = stage.tenant_key("acme")
    stage.upstream.script("gpt-fail", upstream, upstream)
    response = post(stage, key, ASK)
    assert response.status_code == status, response.text
    error = openai_error(response)
    assert error["type"] in ("server_error", "service_unavailable_error", "invalid_request_error")
    assert "sk-upstream-secret" not in response.text
    stage.upstream.script("gpt-fail", upstream, upstream)
    with pytest.raises(error_class):
        client(stage, key).chat.completions.create(**ASK)


# --- /v1/models -----------------------------------------------------------------------------------
def test_models_are_listed_in_openais_shape_and_anthropics_for_its_sdk(stage):
    key = route(stage, "openai", "gpt-chat")
    models = client(stage, key).models
    listed = models.list()
    assert [m.id for m in listed.data] == [MODEL]
    assert listed.data[0].object == "model" and listed.data[0].owned_by
    retrieved = models.retrieve(MODEL)
    assert retrieved.id == MODEL and retrieved.object == "model"
    with pytest.raises(openai.NotFoundError) as missing:
        models.retrieve("gpt-nope")
    assert missing.value.body["type"] == "invalid_request_error"
    theirs = anthropic.Anthropic(base_url=stage.gateway.url, api_key=key, max_retries=0)
    assert [m.id for m in theirs.models.list().data] == [MODEL]
    assert theirs.models.retrieve(MODEL).type == "model"
