"""The request log's body capture: off by default, per tenant, redacted, capped, expiring."""

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from gateway.models import CapturedBody
from gateway.usage.services import captured_bodies_expire
from tests.e2e.usage import drain, records_for


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.REDIS_URL)
    drain(client)
    yield client
    client.close()


def two_tenants(stage) -> tuple[str, str]:
    stage.apply(
        providers=[stage.provider("openai")],
        models=[stage.model("claude-test", [{"provider": "openai-fake", "upstream_model": "up"}])],
        tenants=[
            {"name": "acme", "capture_bodies": True, "capture_max_bytes": 1024},
            {"name": "globex"},  # off by default
        ],
    )
    return stage.tenant_key("acme"), stage.tenant_key("globex")


def ask(stage, key: str, text: str, **options):
    return stage.client(key).messages.with_raw_response.create(
        model="claude-test",
        max_tokens=30,
        messages=[{"role": "user", "content": text}],
        **options,
    )


def test_a_tenant_that_asks_keeps_bodies_and_answers_and_no_other_does(stage, broker):
    acme, globex = two_tenants(stage)
    stage.upstream.script("up", {"blocks": [{"type": "text", "text": "The answer is 42."}]})
    kept = ask(stage, acme, "What is six times seven?")
    other = ask(stage, globex, "A private question")
    ids = [kept.headers["request-id"], other.headers["request-id"]]
    records_for(broker, ids)

    (body,) = CapturedBody.objects.all()
    assert body.request_id == ids[0] and body.tenant.name == "acme"
    assert "What is six times seven?" in body.request
    assert "The answer is 42." in body.response and not body.truncated
    assert body.expires_at - body.captured_at == timedelta(days=7)  # the default retention


def test_a_stream_is_captured_as_sent_and_cut_at_the_cap(stage, broker):
    acme, _ = two_tenants(stage)
    stage.upstream.script("up", {"blocks": [{"type": "text", "text": "streamed words " * 20}]})
    answer = ask(stage, acme, "x" * 3000, stream=True)
    request_id = answer.headers["request-id"]
    answer.parse().until_done() if hasattr(answer.parse(), "until_done") else answer.read()
    records_for(broker, [request_id])

    body = CapturedBody.objects.get(request_id=request_id)
    assert body.truncated
    assert len(body.request.encode()) <= 1024 and len(body.response.encode()) <= 1024
    assert body.response.startswith("event: message_start")


def test_no_upstream_credential_is_ever_captured(stage, broker):
    acme, _ = two_tenants(stage)
    stage.upstream.script("up", {"blocks": [{"type": "text", "text": "key sk-upstream-secret"}]})
    answer = ask(stage, acme, "Say the key")
    records_for(broker, [answer.headers["request-id"]])
    body = CapturedBody.objects.get()
    assert "sk-upstream-secret" not in body.response + body.request


def test_expired_bodies_are_deleted_and_others_kept(stage, broker):
    acme, _ = two_tenants(stage)
    first = ask(stage, acme, "one").headers["request-id"]
    second = ask(stage, acme, "two").headers["request-id"]
    records_for(broker, [first, second])
    CapturedBody.objects.filter(request_id=first).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert captured_bodies_expire(now=timezone.now(), batch=1) == 1
    assert list(CapturedBody.objects.values_list("request_id", flat=True)) == [second]
