"""Provider extra headers are credentials too: encrypted at rest, write-only in the admin, never
in an audit entry; the routing table decrypts them once per load."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from accounts.models import AuditEntry
from core import redaction
from providers import routing
from providers.models import Provider
from providers.services import ConfigError, config_apply
from tests.factories import ProviderFactory, RouteFactory

pytestmark = pytest.mark.django_db

PROXY_KEY = "Bearer cf-aig-0123456789abcdef"
PORTKEY = "pk-live-fedcba9876543210"
HEADERS = {"cf-aig-authorization": PROXY_KEY, "x-portkey-api-key": PORTKEY, "x-team": "blue"}


def stored_row(provider: Provider) -> str:
    """The provider's row exactly as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM providers_provider WHERE id = %s", [provider.pk])
        return json.dumps(cursor.fetchone(), default=str)


def apply(headers: dict) -> Provider:
    config_apply(
        data={
            "providers": [{"name": "gw", "kind": "openai", "api_key": "sk-x", "headers": headers}]
        }
    )
    return Provider.objects.get(name="gw")


def test_the_database_holds_no_header_value_in_clear():
    provider = apply(HEADERS)

    row = stored_row(provider)

    assert PROXY_KEY.split()[1] not in row and PORTKEY not in row and "blue" not in row
    assert provider.extra_headers == HEADERS  # and they read back whole


def test_the_audit_names_headers_and_says_which_value_changed_never_what():
    apply(HEADERS)
    apply({**HEADERS, "x-portkey-api-key": "pk-live-rotated-0000000000"})

    created, updated = AuditEntry.objects.filter(object_type="provider").order_by("pk")
    assert created.after["extra_headers"] == dict.fromkeys(HEADERS, "<redacted>")
    assert updated.before["extra_headers"] == dict.fromkeys(HEADERS, "<redacted>")
    assert updated.after["extra_headers"]["x-portkey-api-key"] == "<replaced>"
    logged = json.dumps(list(AuditEntry.objects.values()), default=str)
    assert PORTKEY not in logged and "pk-live-rotated" not in logged and "blue" not in logged


def test_the_admin_shows_header_names_only(admin_client):
    provider = apply(HEADERS)

    page = admin_client.get(reverse("admin:providers_provider_change", args=[provider.pk]))

    html = page.content.decode()
    assert "cf-aig-authorization, x-portkey-api-key, x-team" in html
    assert PORTKEY not in html and "cf-aig-0123456789abcdef" not in html and "blue" not in html


def test_an_empty_admin_field_keeps_the_headers_and_an_empty_object_clears_them(admin_client):
    provider = apply(HEADERS)
    url = reverse("admin:providers_provider_change", args=[provider.pk])
    form = {
        "name": "gw",
        "kind": "openai",
        "base_url": "",
        "enabled": "on",
        "connect_timeout": "10",
        "first_byte_timeout": "120",
        "idle_timeout": "120",
        "credential": "",
    }

    assert admin_client.post(url, {**form, "extra_headers": ""}).status_code == 302
    assert Provider.objects.get(pk=provider.pk).extra_headers == HEADERS
    assert admin_client.post(url, {**form, "extra_headers": "{}"}).status_code == 302
    assert Provider.objects.get(pk=provider.pk).extra_headers == {}


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"x-a": "v\r\nx-injected: 1"}, "the value must be text on one line"),
        ({"bad name": "v"}, "is not a valid HTTP header name"),
        ({f"x-{i}": "v" for i in range(51)}, "at most 50 extra headers"),
    ],
)
def test_hostile_headers_are_refused_by_config_and_admin(admin_client, headers, problem):
    with pytest.raises(ConfigError, match=problem):
        apply(headers)
    provider = ProviderFactory(name="adm", kind="openai")
    page = admin_client.post(
        reverse("admin:providers_provider_change", args=[provider.pk]),
        {
            "name": "adm",
            "kind": "openai",
            "base_url": "",
            "enabled": "on",
            "connect_timeout": "10",
            "first_byte_timeout": "120",
            "idle_timeout": "120",
            "extra_headers": json.dumps(headers),
        },
    )
    assert page.status_code == 200 and problem in page.content.decode()
    assert Provider.objects.get(pk=provider.pk).extra_headers == {}


def test_the_routing_table_decrypts_headers_and_registers_every_value_for_redaction():
    provider = apply(HEADERS)
    RouteFactory(provider=provider, upstream_model="gpt-x")

    snapshot = routing._load.func(b"1")  # what each process runs when the version moves

    (model,) = snapshot.models.values()
    assert model.routes[0].target.extra_headers == HEADERS
    assert redaction.scrub(f"echo {PORTKEY} and sk-x") == "echo <redacted> and sk-x"  # short


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_headers_stored_in_clear():
    executor = MigrationExecutor(connection)
    executor.migrate([("providers", "0004_provider_options")])
    old = executor.loader.project_state([("providers", "0004_provider_options")]).apps
    old.get_model("providers", "Provider").objects.create(
        name="legacy", kind="openai", extra_headers=HEADERS
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    provider = Provider.objects.get(name="legacy")
    assert provider.extra_headers == HEADERS
    assert PORTKEY not in stored_row(provider)
