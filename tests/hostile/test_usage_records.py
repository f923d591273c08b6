"""Usage records against a hostile tenant, on both servers: a model name with a NUL in it
(`"oa-echo\\u0000"`), which PostgreSQL refuses in a text field, used to take every other
tenant's records of the same batch down with it. Now it is cleaned when the record is built;
every record of the other tenant lands, and so does the hostile one, without the NUL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from django.conf import settings

from gateway.models import UsageDeadLetter
from tests.e2e.usage import records_for
from tests.hostile.conftest import assert_healthy

HOSTILE_BODY = (
    b'{"model":"oa-echo\\u0000","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}'
)
ASK = {"model": "claude-test", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def broker():
    """The gateways queue records on the suite's Redis; `records_for` runs them as the worker."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def post(stage, key: str, *, content: bytes | None = None, json: dict | None = None):
    return httpx.post(
        stage.gateway.url + "/v1/messages",
        content=content,
        json=json,
        headers={"x-api-key": key, "content-type": "application/json"},
        timeout=10,
    )


def test_a_nul_in_a_model_name_costs_no_other_tenant_a_usage_record(hostile, broker):
    tenant_key = hostile.one_route("openai", "gpt-usage-hostile")  # acme's
    mallory = hostile.tenant_key("mallory")

    def one(n: int) -> tuple[str, httpx.Response]:
        if n % 10 == 0:  # the hostile requests, among the others, in the same flushes
            return "hostile", post(hostile, mallory, content=HOSTILE_BODY)
        return "tenant", post(hostile, tenant_key, json=ASK)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(45)))  # 40 of acme, 5 hostile

    hostile_answers = [a for who, a in answers if who == "hostile"]
    tenant_answers = [a for who, a in answers if who == "tenant"]
    assert len(tenant_answers) == 40 and all(a.status_code == 200 for a in tenant_answers)
    for answer in hostile_answers:
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.json()["type"] == "error"
    tenant_ids = [a.headers["request-id"] for a in tenant_answers]
    hostile_ids = [a.headers["request-id"] for a in hostile_answers]

    rows = records_for(broker, tenant_ids + hostile_ids)

    assert {rows[i].tenant.name for i in tenant_ids} == {"acme"}
    assert all(rows[i].status == "ok" and rows[i].billed for i in tenant_ids)
    assert {(rows[i].tenant.name, rows[i].model) for i in hostile_ids} == {("mallory", "oa-echo")}
    assert not UsageDeadLetter.objects.exists()
    assert_healthy(hostile)
