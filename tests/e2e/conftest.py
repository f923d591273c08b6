"""End-to-end fixtures: the real gateway process, the fake upstream, the official SDK.

Tests here use `transactional_db`: the gateway runs in another process and only sees
committed rows.
"""

from __future__ import annotations

import anthropic
import pytest

from accounts.services import api_key_create, tenant_create
from providers.services import config_apply
from tests.e2e.live import LiveGateway, gateway_env
from tests.fake_upstream.server import FakeUpstream


@pytest.fixture(scope="session")
def fake_upstream():
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="session")
def live_gateway(django_db_setup, django_db_blocker, tmp_path_factory):
    env = gateway_env(
        TOLLGATE_STREAM_PING_SECONDS="0.5",
        TOLLGATE_MAX_BODY_BYTES=str(4 * 1024 * 1024),
        TOLLGATE_ROUTES_CACHE_SECONDS="0",
        TOLLGATE_BREAKER_FAILURES="3",
        TOLLGATE_BREAKER_COOLDOWN="1.5",
        TOLLGATE_SPOOL_DIR=str(tmp_path_factory.mktemp("usage-spool")),
    )
    server = LiveGateway(env=env).start()
    yield server
    server.stop()


class Stage:
    """Configures providers, models and tenants through the automation interface."""

    def __init__(self, gateway: LiveGateway, upstream: FakeUpstream):
        self.gateway = gateway
        self.upstream = upstream
        self.counter = 0

    def provider(self, kind: str, name: str | None = None, **extra) -> dict:
        base = {
            "anthropic": self.upstream.url,
            "openai": self.upstream.url + "/v1",
            "openai_responses": self.upstream.url + "/v1",
            "gemini": self.upstream.url + "/v1beta",
        }
        return {
            "name": name or f"{kind}-fake",
            "kind": kind,
            "base_url": base.get(kind, ""),
            "api_key": "sk-upstream-secret",
            **extra,
        }

    def apply(self, *, providers: list[dict], models: list[dict], tenants: list[dict]) -> None:
        config_apply(data={"providers": providers, "models": models, "tenants": tenants})

    def model(self, name: str, routes: list[dict], **extra) -> dict:
        prices = {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75}
        return {"name": name, "pricing_per_mtok": prices, "routes": routes, **extra}

    def tenant_key(self, tenant_name: str = "acme", **options) -> str:
        from accounts.models import Tenant

        tenant = Tenant.objects.filter(name=tenant_name).first() or tenant_create(name=tenant_name)
        _, secret = api_key_create(tenant=tenant, **options)
        return secret

    def client(self, key: str, **options) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.gateway.url, api_key=key, max_retries=0, **options)

    def async_client(self, key: str, **options) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            base_url=self.gateway.url, api_key=key, max_retries=0, **options
        )

    def one_route(self, kind: str, upstream_model: str, public: str = "claude-test") -> str:
        """A model served by one fake-upstream route of `kind`; returns a key for it."""
        self.apply(
            providers=[self.provider(kind)],
            models=[
                self.model(public, [{"provider": f"{kind}-fake", "upstream_model": upstream_model}])
            ],
            tenants=[{"name": "acme"}],
        )
        return self.tenant_key("acme")


@pytest.fixture
def stage(live_gateway, fake_upstream, transactional_db):
    fake_upstream.reset()
    return Stage(live_gateway, fake_upstream)
