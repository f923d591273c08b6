"""Admin REST API: providers (credentials write-only), models and their prices, routes and
aliases; platform operators only; every write reaches the routing snapshot."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from accounts.models import AuditEntry
from core import state
from providers.models import Model, ModelAlias, Provider, Route
from tests.factories import ModelFactory, ProviderFactory, RouteFactory
from tests.integration.admin_api.conftest import BASE, session

pytestmark = pytest.mark.django_db
CREDENTIAL = "sk-upstream-Very-Secret-0123456789"
HEADER_VALUE = "Bearer cf-Gateway-Secret-987654"


def version() -> bytes | None:
    return state.sync_redis().get(state.CONFIG_VERSION_KEY)


# --- Providers ---------------------------------------------------------------------------------


def test_a_provider_credential_is_write_only(platform, caplog, django_capture_on_commit_callbacks):
    caplog.set_level(logging.DEBUG)
    before = version()

    with django_capture_on_commit_callbacks(execute=True):
        created = platform.post(
            f"{BASE}/providers",
            {
                "name": "openai-main",
                "kind": "openai",
                "base_url": "https://api.openai.com/v1",
                "credential": CREDENTIAL,
                "extra_headers": {"cf-aig-authorization": HEADER_VALUE},
            },
            format="json",
        )
    shown = platform.get(f"{BASE}/providers/openai-main")
    listed = platform.get(f"{BASE}/providers")

    assert created.status_code == 201, created.content
    assert created.json()["credential_set"] is True
    assert created.json()["header_names"] == ["cf-aig-authorization"]
    provider = Provider.objects.get(name="openai-main")
    assert provider.credential == CREDENTIAL
    assert provider.extra_headers == {"cf-aig-authorization": HEADER_VALUE}
    for response in (created, shown, listed):
        text = response.content.decode()
        assert CREDENTIAL not in text and HEADER_VALUE not in text
    assert CREDENTIAL not in caplog.text and HEADER_VALUE not in caplog.text
    audit = AuditEntry.objects.filter(object_type="provider").latest("id")
    assert CREDENTIAL not in str(audit.after) and HEADER_VALUE not in str(audit.after)
    assert version() != before


def test_a_provider_patch_keeps_the_credential_unless_given(platform):
    provider = ProviderFactory(name="up", kind="openai", base_url="https://example.com/v1")
    provider.set_credential(CREDENTIAL)
    provider.save()

    kept = platform.patch(f"{BASE}/providers/up", {"idle_timeout": 30}, format="json")
    provider.refresh_from_db()
    credential_after_patch = provider.credential
    cleared = platform.patch(f"{BASE}/providers/up", {"credential": ""}, format="json")
    provider.refresh_from_db()

    assert kept.status_code == 200 and kept.json()["idle_timeout"] == 30
    assert credential_after_patch == CREDENTIAL
    assert cleared.status_code == 200 and cleared.json()["credential_set"] is False
    assert not provider.has_credential


@pytest.mark.parametrize(
    "body",
    [
        {"name": "p", "kind": "carrier-pigeon"},
        {"name": "not a slug", "kind": "openai"},
        {"name": "p", "kind": "openai", "base_url": "file:///etc/passwd"},
        {"name": "p", "kind": "openai", "base_url": "ftp://example.com/v1"},
        {"name": "p", "kind": "openai", "connect_timeout": 0},
        {"name": "p", "kind": "openai", "idle_timeout": 10**12},
        {"name": "p", "kind": "openai", "extra_headers": {"bad name": "x"}},
        {"name": "p", "kind": "openai", "extra_headers": {"x-a": "line\nbreak"}},
        {"name": "p", "kind": "openai", "api_key": CREDENTIAL},
        {"name": "p", "kind": "openai", "credential_encrypted": "x"},
    ],
)
def test_bad_provider_input_is_400(platform, caplog, body):
    response = platform.post(f"{BASE}/providers", body, format="json")

    assert response.status_code == 400, response.content
    assert not Provider.objects.filter(name="p").exists()
    assert CREDENTIAL not in response.content.decode() and CREDENTIAL not in caplog.text


def test_a_duplicate_provider_name_is_400(platform):
    ProviderFactory(name="dup")

    response = platform.post(f"{BASE}/providers", {"name": "dup", "kind": "demo"}, format="json")

    assert response.status_code == 400 and "name" in response.json()


# --- Models and prices -------------------------------------------------------------------------


def test_a_model_is_created_priced_and_repriced(platform, django_capture_on_commit_callbacks):
    created = platform.post(
        f"{BASE}/models",
        {"name": "claude-x", "price_input": "3", "price_output": "15", "max_tokens": 8192},
        format="json",
    )
    before = version()
    with django_capture_on_commit_callbacks(execute=True):
        repriced = platform.patch(
            f"{BASE}/models/claude-x", {"price_output": "12.5"}, format="json"
        )

    assert created.status_code == 201, created.content
    assert repriced.status_code == 200
    model = Model.objects.get(name="claude-x")
    assert (model.price_input, model.price_output, model.max_tokens) == (
        Decimal("3"),
        Decimal("12.5"),
        8192,
    )
    assert version() != before


@pytest.mark.parametrize(
    "body",
    [
        {"name": "claude-*"},
        {"name": "claude-x[1m]"},
        {"name": "x" * 129},
        {"name": "m", "price_input": "-1"},
        {"name": "m", "price_input": "1e400"},
        {"name": "m", "price_input": "12345678"},
        {"name": "m", "max_tokens": 0},
        {"name": "m", "routing": "random"},
        {"name": "m", "pricing_per_mtok": {"input": 1}},
    ],
)
def test_bad_model_input_is_400(platform, body):
    response = platform.post(f"{BASE}/models", body, format="json")

    assert response.status_code == 400, response.content
    assert not Model.objects.filter(name=body["name"]).exists()


def test_a_model_name_already_an_alias_is_400(platform):
    ModelAlias.objects.create(model=ModelFactory(name="claude-real"), name="claude-nick")

    response = platform.post(f"{BASE}/models", {"name": "claude-nick"}, format="json")

    assert response.status_code == 400 and "already an alias" in str(response.json())


def test_deleting_a_model_takes_its_routes_and_aliases(platform):
    route = RouteFactory(model=ModelFactory(name="old"))
    ModelAlias.objects.create(model=route.model, name="old-nick")

    response = platform.delete(f"{BASE}/models/old")

    assert response.status_code == 204
    assert not Route.objects.filter(pk=route.pk).exists()
    assert not ModelAlias.objects.filter(name="old-nick").exists()


# --- Routes ------------------------------------------------------------------------------------


def test_a_route_is_created_changed_and_deleted(platform, django_capture_on_commit_callbacks):
    ModelFactory(name="claude-x")
    ProviderFactory(name="up")

    with django_capture_on_commit_callbacks(execute=True):
        created = platform.post(
            f"{BASE}/routes",
            {"model": "claude-x", "provider": "up", "upstream_model": "gpt-x", "weight": 3},
            format="json",
        )
    route_id = created.json()["id"]
    changed = platform.patch(f"{BASE}/routes/{route_id}", {"priority": 2}, format="json")
    listed = platform.get(f"{BASE}/routes", {"model": "claude-x"})
    deleted = platform.delete(f"{BASE}/routes/{route_id}")

    assert created.status_code == 201, created.content
    assert created.json()["provider"] == "up" and created.json()["weight"] == 3
    assert changed.status_code == 200 and changed.json()["priority"] == 2
    assert [r["id"] for r in listed.json()["results"]] == [route_id]
    assert deleted.status_code == 204 and not Route.objects.filter(pk=route_id).exists()


@pytest.mark.parametrize(
    "body",
    [
        {"model": "ghost", "provider": "up", "upstream_model": "u"},
        {"model": "claude-x", "provider": "ghost", "upstream_model": "u"},
        {"model": "claude-x", "provider": "up", "upstream_model": "u", "weight": 0},
        {"model": "claude-x", "provider": "up", "upstream_model": "u", "priority": 10**9},
        {"model": "claude-x", "provider": "up", "upstream_model": "dup"},
        {"model": "claude-x", "provider": "up", "upstream_model": "u", "tenant": "acme"},
    ],
)
def test_bad_route_input_is_400(platform, body):
    model, provider = ModelFactory(name="claude-x"), ProviderFactory(name="up")
    RouteFactory(model=model, provider=provider, upstream_model="dup")

    response = platform.post(f"{BASE}/routes", body, format="json")

    assert response.status_code == 400, response.content
    assert Route.objects.count() == 1


# --- Aliases -----------------------------------------------------------------------------------


def test_an_alias_is_created_and_deleted(platform):
    ModelFactory(name="claude-sonnet-4-5")

    created = platform.post(
        f"{BASE}/aliases", {"name": "claude-sonnet-*", "model": "claude-sonnet-4-5"}, format="json"
    )
    shown = platform.get(f"{BASE}/models/claude-sonnet-4-5")
    deleted = platform.delete(f"{BASE}/aliases/claude-sonnet-*")

    assert created.status_code == 201, created.content
    assert shown.json()["aliases"] == ["claude-sonnet-*"]
    assert deleted.status_code == 204 and not ModelAlias.objects.exists()


@pytest.mark.parametrize(
    "name", ["claude-sonnet-4-5", "*", "has space", "taken", "claude-*-x[1m]", "claude-so*"]
)
def test_a_bad_alias_is_400(platform, name):
    model = ModelFactory(name="claude-sonnet-4-5")
    other = ModelFactory(name="claude-opus-4")
    ModelAlias.objects.create(model=other, name="taken")
    ModelAlias.objects.create(model=other, name="claude-*-5")

    response = platform.post(f"{BASE}/aliases", {"name": name, "model": model.name}, format="json")

    assert response.status_code == 400, response.content
    assert not model.aliases.exists()


def test_aliases_cannot_be_patched(platform):
    ModelAlias.objects.create(model=ModelFactory(name="m"), name="m-nick")

    response = platform.patch(f"{BASE}/aliases/m-nick", {"model": "m"}, format="json")

    assert response.status_code == 405


# --- Who may ----------------------------------------------------------------------------------


CATALOG = ["providers", "models", "routes", "aliases"]


@pytest.mark.parametrize("resource", CATALOG)
def test_tenant_tokens_and_members_are_refused_the_catalog(acme, people, resource):
    ModelFactory(name="m")
    owner = session(people.owner)

    for api in (acme, owner):
        assert api.get(f"{BASE}/{resource}").status_code == 403
        assert api.post(f"{BASE}/{resource}", {}, format="json").status_code == 403
    assert Model.objects.count() == 1


def test_the_catalog_follows_the_staff_permissions(people):
    ModelFactory(name="m")
    people.staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="providers", codename="view_model")
    )
    api = session(people.staff)

    assert api.get(f"{BASE}/models").status_code == 200
    assert api.patch(f"{BASE}/models/m", {"price_input": "1"}, format="json").status_code == 403
    assert api.get(f"{BASE}/providers").status_code == 403
    assert Model.objects.get(name="m").price_input == Decimal("3")


def test_unknown_catalog_rows_are_404(platform):
    assert platform.get(f"{BASE}/models/ghost").status_code == 404
    assert platform.patch(f"{BASE}/routes/999999", {"weight": 2}, format="json").status_code == 404
    assert platform.delete(f"{BASE}/providers/ghost").status_code == 404
    assert platform.get(f"{BASE}/aliases/" + "x" * 500).status_code == 404
