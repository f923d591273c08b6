"""The admin shows each route's shared health: breaker state, error rate, latency."""

import time

import pytest
from asgiref.sync import async_to_sync

from providers import breaker
from tests.factories import RouteFactory

pytestmark = pytest.mark.django_db


def test_route_list_shows_breaker_state_error_rate_and_latency(admin_client, settings, monkeypatch):
    monkeypatch.setattr(breaker, "VIEW_SECONDS", 0.0)  # fold local figures in at once
    route = RouteFactory()
    record = async_to_sync(breaker.record)
    for _ in range(settings.TOLLGATE["BREAKER_FAILURES"]):
        record(route.pk, ok=False, latency_ms=40.0)
    async_to_sync(breaker.allow)(route.pk)

    page = admin_client.get("/admin/providers/route/").content.decode()

    assert "open, " in page
    assert "errors, 40 ms" in page


def test_route_without_traffic_is_closed(admin_client):
    route = RouteFactory()
    page = admin_client.get(f"/admin/providers/route/{route.pk}/change/").content.decode()
    assert "closed, 0% errors, no traffic yet" in page


def test_breaker_lets_one_probe_through_after_the_cool_down(settings):
    settings.TOLLGATE = {**settings.TOLLGATE, "BREAKER_COOLDOWN": 0.3}
    route = RouteFactory()
    for _ in range(settings.TOLLGATE["BREAKER_FAILURES"]):
        async_to_sync(breaker.record)(route.pk, ok=False, latency_ms=1.0)
    allow = async_to_sync(breaker.allow)
    assert allow(route.pk) is False  # open
    time.sleep(0.35)
    assert allow(route.pk) is True  # the probe
    assert allow(route.pk) is False  # everyone else waits for its outcome
    async_to_sync(breaker.record)(route.pk, ok=True, latency_ms=1.0)
    assert allow(route.pk) is True and allow(route.pk) is True


def test_a_probe_that_proved_nothing_gives_the_probe_back(settings):
    settings.TOLLGATE = {**settings.TOLLGATE, "BREAKER_COOLDOWN": 0.3}
    route = RouteFactory()
    for _ in range(settings.TOLLGATE["BREAKER_FAILURES"]):
        async_to_sync(breaker.record)(route.pk, ok=False, latency_ms=1.0)
    allow = async_to_sync(breaker.allow)
    time.sleep(0.35)
    assert allow(route.pk) is True  # a hostile request takes the probe, is refused locally
    assert allow(route.pk) is False

    async_to_sync(breaker.release)(route.pk)

    assert allow(route.pk) is True  # the next tenant probes at once, not a cool-down later
    assert breaker.health(route.pk).state == "half-open"


def test_admin_edits_routing_rule_alpha_and_upstream_prices(admin_client):
    route = RouteFactory()
    model_page = admin_client.get(f"/admin/providers/model/{route.model.pk}/change/")
    page = model_page.content.decode()
    assert 'name="routing"' in page
    assert 'name="routes-0-alpha"' in page and 'name="routes-0-upstream_price_input"' in page
    provider_page = admin_client.get(f"/admin/providers/provider/{route.provider.pk}/change/")
    assert 'name="options"' in provider_page.content.decode()
