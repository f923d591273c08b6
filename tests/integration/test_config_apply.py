"""`config_apply` and `manage.py gateway_apply`: declarative upsert, checked whole first."""

import copy
import os
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from accounts.models import Tenant
from core import state
from providers import services
from providers.models import Model, Provider, Route
from providers.services import ConfigError, config_apply
from tests.factories import ModelFactory, ProviderFactory, TenantFactory

pytestmark = pytest.mark.django_db

PROJECT_DIR = Path(__file__).resolve().parents[2]

CONFIG = {
    "providers": [
        {
            "name": "openai-main",
            "kind": "openai",
            "base_url": "https://api.openai.com/v1",
            "api_key_env": "TG_TEST_OPENAI_KEY",
        },
        {
            "name": "anthropic-main",
            "kind": "anthropic",
            "base_url": "https://api.anthropic.com",
            "api_key": "sk-ant-literal-0001",
            "headers": {"anthropic-beta": "x"},
            "timeouts": {"connect": 5, "first_byte": 60, "idle": 30},
        },
    ],
    "models": [
        {
            "name": "claude-sonnet-4-5",
            "display_name": "Claude Sonnet 4.5",
            "max_tokens": 64000,
            "pricing_per_mtok": {
                "input": 3.0,
                "output": 15.0,
                "cache_read": 0.3,
                "cache_write": 3.75,
            },
            "routes": [
                {
                    "provider": "anthropic-main",
                    "upstream_model": "claude-sonnet-4-5",
                    "priority": 1,
                },
                {"provider": "openai-main", "upstream_model": "gpt-5", "priority": 2, "weight": 3},
            ],
        },
        {
            "name": "claude-haiku-4-5",
            "routes": [{"provider": "anthropic-main", "upstream_model": "claude-haiku-4-5"}],
        },
    ],
    "tenants": [
        {"name": "acme", "models": ["claude-sonnet-4-5"]},
        {"name": "globex", "display_name": "Globex Corp"},
    ],
}


@pytest.fixture(autouse=True)
def openai_key(monkeypatch):
    monkeypatch.setenv("TG_TEST_OPENAI_KEY", "sk-openai-from-env-0002")


def config(**changes) -> dict:
    data = copy.deepcopy(CONFIG)
    data.update(changes)
    return data


def row_counts() -> tuple[int, int, int, int]:
    return (
        Provider.objects.count(),
        Model.objects.count(),
        Route.objects.count(),
        Tenant.objects.count(),
    )


def test_apply_creates_providers_models_routes_and_tenants():
    summary = config_apply(data=config()).summary

    assert summary["providers"]["created"] == 2
    assert summary["models"]["created"] == 2
    assert summary["routes"]["created"] == 3
    assert summary["tenants"]["created"] == 2
    anthropic = Provider.objects.get(name="anthropic-main")
    assert anthropic.kind == "anthropic"
    assert anthropic.extra_headers == {"anthropic-beta": "x"}
    assert (anthropic.connect_timeout, anthropic.first_byte_timeout, anthropic.idle_timeout) == (
        5,
        60,
        30,
    )
    sonnet = Model.objects.get(name="claude-sonnet-4-5")
    assert sonnet.price_cache_write == Decimal("3.75")
    assert sonnet.max_tokens == 64000
    routes = list(
        sonnet.routes.values_list("provider__name", "upstream_model", "priority", "weight")
    )
    assert routes == [("anthropic-main", "claude-sonnet-4-5", 1, 1), ("openai-main", "gpt-5", 2, 3)]
    acme = Tenant.objects.get(name="acme")
    assert list(acme.allowed_models.values_list("name", flat=True)) == ["claude-sonnet-4-5"]
    # No models listed: every enabled model, stored as an empty list.
    assert not Tenant.objects.get(name="globex").allowed_models.exists()


def test_applying_twice_changes_nothing_the_second_time():
    config_apply(data=config())
    before = row_counts()

    summary = config_apply(data=config()).summary

    assert row_counts() == before == (2, 2, 3, 2)
    for section, counts in summary.items():
        assert counts["created"] == counts["updated"] == 0, section
    assert summary["routes"]["deleted"] == 0
    assert summary["providers"]["unchanged"] == 2


def test_a_changed_field_is_counted_as_updated():
    config_apply(data=config())
    data = config()
    data["models"][1]["pricing_per_mtok"] = {"input": 1, "output": 5}

    summary = config_apply(data=data).summary

    assert summary["models"] == {"created": 0, "updated": 1, "unchanged": 1, "deleted": 0}
    assert Model.objects.get(name="claude-haiku-4-5").price_output == Decimal(5)


def test_listed_routes_replace_the_models_routes():
    config_apply(data=config())
    data = config()
    data["models"][0]["routes"] = [
        {"provider": "openai-main", "upstream_model": "gpt-5", "priority": 1},
        {"provider": "openai-main", "upstream_model": "gpt-5-mini", "priority": 5},
    ]

    summary = config_apply(data=data).summary

    routes = Route.objects.filter(model__name="claude-sonnet-4-5")
    assert sorted(routes.values_list("upstream_model", "priority")) == [
        ("gpt-5", 1),
        ("gpt-5-mini", 5),
    ]
    assert summary["routes"] == {"created": 1, "updated": 1, "unchanged": 1, "deleted": 1}
    # The other model's route was not listed under this model, so it stays.
    assert Route.objects.filter(model__name="claude-haiku-4-5").count() == 1


def test_a_model_without_routes_key_keeps_its_routes():
    config_apply(data=config())
    data = config()
    del data["models"][0]["routes"]

    config_apply(data=data)

    assert Route.objects.filter(model__name="claude-sonnet-4-5").count() == 2


def test_routes_may_name_a_provider_already_in_the_database():
    ProviderFactory(name="legacy", kind="anthropic")

    config_apply(
        data={"models": [{"name": "m", "routes": [{"provider": "legacy", "upstream_model": "x"}]}]}
    )

    assert Route.objects.get(model__name="m").provider.name == "legacy"


def test_api_key_env_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("TG_TEST_OPENAI_KEY", "sk-rotated-0003")

    config_apply(data=config())

    assert Provider.objects.get(name="openai-main").credential == "sk-rotated-0003"


def test_credential_is_stored_encrypted():
    config_apply(data=config())

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credential_encrypted FROM providers_provider WHERE name = %s",
            ["anthropic-main"],
        )
        (stored,) = cursor.fetchone()
    assert stored
    assert "sk-ant-literal-0001" not in stored
    assert Provider.objects.get(name="anthropic-main").credential == "sk-ant-literal-0001"


def test_a_provider_without_credential_keeps_the_stored_one():
    config_apply(data=config())
    data = config()
    del data["providers"][1]["api_key"]

    summary = config_apply(data=data).summary

    assert Provider.objects.get(name="anthropic-main").credential == "sk-ant-literal-0001"
    assert summary["providers"]["unchanged"] == 2


def test_changed_credential_is_replaced_and_counted():
    config_apply(data=config())
    data = config()
    data["providers"][1]["api_key"] = "sk-ant-new-0004"

    summary = config_apply(data=data).summary

    assert Provider.objects.get(name="anthropic-main").credential == "sk-ant-new-0004"
    assert summary["providers"] == {"created": 0, "updated": 1, "unchanged": 1, "deleted": 0}


def _broken(path: str, value) -> dict:
    """CONFIG with the entry at a dotted path (`models.0.routes.0.provider`) set to value."""
    data = config()
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _broken("models.1.routes.0.provider", "nope"),
            "models[1] (claude-haiku-4-5).routes[0]: unknown provider 'nope'",
        ),
        (
            _broken("providers.0.api_key_env", "TG_TEST_UNSET_VARIABLE"),
            "providers[0] (openai-main): environment variable TG_TEST_UNSET_VARIABLE is not set",
        ),
        (
            _broken("providers.1.kind", "bedrock"),
            "providers[1] (anthropic-main): unknown kind 'bedrock'",
        ),
        (
            _broken("providers.1.name", "openai-main"),
            "providers[1] (openai-main): duplicate name (see providers[0])",
        ),
        (
            _broken("providers.0.base_url", "not a url"),
            "providers[0] (openai-main): base_url 'not a url' is not a valid http(s) URL",
        ),
        (_broken("providers.0.base_url", "ftp://example.com"), "not a valid http(s) URL"),
        (
            _broken("models.0.colour", "blue"),
            "models[0] (claude-sonnet-4-5): Object contains unknown field `colour`",
        ),
        (
            _broken("models.0.pricing_per_mtok.input", -1),
            "models[0] (claude-sonnet-4-5).pricing_per_mtok.input: Expected `float` >= 0.0",
        ),
        (
            _broken("models.0.routes.1.weight", "heavy"),
            "models[0] (claude-sonnet-4-5).routes[1].weight: Expected `int`, got `str`",
        ),
        (
            _broken("tenants.0.models", ["claude-x"]),
            "tenants[0] (acme): unknown model(s): claude-x",
        ),
        (_broken("tenants.1.name", "Not A Slug"), "tenants[1] (Not A Slug): name must be a slug"),
        (
            _broken("providers.1.api_key_env", "TG_TEST_OPENAI_KEY"),
            "providers[1] (anthropic-main): give api_key or api_key_env, not both",
        ),
        (
            _broken(
                "models.0.routes.1",
                {"provider": "anthropic-main", "upstream_model": "claude-sonnet-4-5"},
            ),
            "models[0] (claude-sonnet-4-5).routes[1]: duplicate route to anthropic-main",
        ),
        (_broken("routing", []), "routing: unknown section"),
        (["not", "a", "mapping"], "config: expected an object with providers, models and tenants"),
    ],
)
def test_invalid_document_is_refused_whole_naming_the_entry(data, message):
    with pytest.raises(ConfigError) as refused:
        config_apply(data=data)

    assert message in str(refused.value)
    assert row_counts() == (0, 0, 0, 0)


def test_every_problem_is_listed_at_once():
    data = _broken("providers.1.kind", "bedrock")
    data["providers"][0]["api_key_env"] = "TG_TEST_UNSET_VARIABLE"

    with pytest.raises(ConfigError) as refused:
        config_apply(data=data)

    assert len(refused.value.problems) == 2


def test_invalid_document_leaves_existing_rows_untouched():
    config_apply(data=config())
    data = _broken("models.1.routes.0.provider", "nope")
    data["models"][0]["display_name"] = "Renamed"

    with pytest.raises(ConfigError):
        config_apply(data=data)

    assert Model.objects.get(name="claude-sonnet-4-5").display_name == "Claude Sonnet 4.5"


def test_a_failure_while_writing_rolls_everything_back(monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "_apply_tenant", explode)

    with pytest.raises(RuntimeError):
        config_apply(data=config())

    assert row_counts() == (0, 0, 0, 0)


def test_tenant_models_are_kept_when_left_out_and_an_empty_list_allows_all():
    ModelFactory(name="claude-opus-4-1")
    TenantFactory(name="acme").allowed_models.set(Model.objects.filter(name="claude-opus-4-1"))
    data = config()
    data["tenants"] = [{"name": "acme"}]

    kept = config_apply(data=data).summary
    allowed = list(Tenant.objects.get(name="acme").allowed_models.values_list("name", flat=True))
    data["tenants"] = [{"name": "acme", "models": []}]
    emptied = config_apply(data=data).summary

    assert allowed == ["claude-opus-4-1"]
    assert kept["tenants"]["unchanged"] == 1
    assert not Tenant.objects.get(name="acme").allowed_models.exists()
    assert emptied["tenants"] == {"created": 0, "updated": 1, "unchanged": 0, "deleted": 0}


def test_gateways_are_told_after_commit(django_capture_on_commit_callbacks):
    redis = state.sync_redis()
    before = int(redis.get(state.CONFIG_VERSION_KEY) or 0)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        config_apply(data=config())

    assert len(callbacks) == 1
    assert int(redis.get(state.CONFIG_VERSION_KEY)) == before + 1


# --- manage.py gateway_apply ------------------------------------------------------------------


def write_yaml(tmp_path: Path, data) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_command_prints_the_summary(tmp_path):
    out = StringIO()

    call_command("gateway_apply", str(write_yaml(tmp_path, config())), stdout=out)

    assert "providers: 2 created, 0 updated, 0 unchanged" in out.getvalue()
    assert "routes: 3 created, 0 updated, 0 unchanged, 0 deleted" in out.getvalue()
    assert Route.objects.count() == 3


def test_command_refuses_an_invalid_file_and_applies_nothing(tmp_path):
    path = write_yaml(tmp_path, _broken("models.1.routes.0.provider", "nope"))

    with pytest.raises(CommandError, match=r"routes\[0\]: unknown provider 'nope'"):
        call_command("gateway_apply", str(path))

    assert row_counts() == (0, 0, 0, 0)


def test_command_refuses_a_file_that_is_not_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("providers: [unclosed\n")

    with pytest.raises(CommandError, match="not valid YAML"):
        call_command("gateway_apply", str(path))


def test_command_refuses_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("gateway_apply", str(tmp_path / "absent.yaml"))


def test_command_exits_non_zero_on_an_invalid_file(tmp_path):
    path = write_yaml(tmp_path, _broken("providers.1.kind", "bedrock"))
    database = connection.settings_dict  # the test database: references are checked there

    result = subprocess.run(
        [sys.executable, "manage.py", "gateway_apply", str(path)],
        cwd=PROJECT_DIR,
        env={
            **os.environ,
            "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:"
            f"{database['PORT']}/{database['NAME']}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "providers[1] (anthropic-main): unknown kind 'bedrock'" in result.stderr
    assert "nothing applied" in result.stderr


def test_preset_fills_kind_base_url_and_server_options():
    config_apply(
        data={
            "providers": [
                {"name": "local-vllm", "preset": "vllm"},
                {
                    "name": "azure-east",
                    "preset": "azure",
                    "base_url": "https://east.openai.azure.com",
                    "api_key": "az-key",
                    "options": {"azure_api_version": "2025-01-01"},
                },
            ]
        }
    )
    vllm = Provider.objects.get(name="local-vllm")
    assert (vllm.kind, vllm.base_url) == ("openai", "http://localhost:8000/v1")
    assert vllm.options == {"top_k": True, "max_tokens_field": "max_tokens", "service_tier": False}
    azure = Provider.objects.get(name="azure-east")
    assert azure.options["auth"] == "api-key"
    assert azure.options["azure_api_version"] == "2025-01-01"  # the entry wins over the preset


def test_unknown_preset_is_refused_by_name():
    with pytest.raises(ConfigError) as caught:
        config_apply(data={"providers": [{"name": "x", "preset": "nope"}]})
    assert "providers[0] (x): unknown preset 'nope'" in str(caught.value)


def test_tenant_provider_defaults_are_checked_like_the_request_field():
    with pytest.raises(ConfigError) as caught:
        config_apply(data={"tenants": [{"name": "acme", "provider": {"sort": "cheapest"}}]})
    assert "tenants[0] (acme).provider: provider defaults:" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        config_apply(data={"tenants": [{"name": "acme", "provider": {"prefer": ["x"]}}]})
    assert "unknown field 'prefer'" in str(caught.value)
    config_apply(data={"tenants": [{"name": "acme", "provider": {"only": ["a"], "sort": None}}]})
    assert Tenant.objects.get(name="acme").provider_defaults == {"only": ["a"]}


# --- A model's output limit ---------------------------------------------------------------------


def model_form(model, **changes) -> dict:
    data = {
        "name": model.name,
        "display_name": model.display_name,
        "enabled": "on",
        "max_tokens": "",
        "routing": model.routing,
        "price_input": "0",
        "price_output": "0",
        "price_cache_read": "0",
        "price_cache_write": "0",
        "price_web_search": "0",
        "routes-TOTAL_FORMS": "0",
        "routes-INITIAL_FORMS": "0",
        "routes-MIN_NUM_FORMS": "0",
        "routes-MAX_NUM_FORMS": "1000",
        "aliases-TOTAL_FORMS": "0",
        "aliases-INITIAL_FORMS": "0",
        "aliases-MIN_NUM_FORMS": "0",
        "aliases-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


def test_the_admin_sets_a_models_output_limit_and_refuses_zero(admin_client):
    model = ModelFactory(name="claude-x")
    url = reverse("admin:providers_model_change", args=[model.pk])

    refused = admin_client.post(url, model_form(model, max_tokens="0"))
    saved = admin_client.post(url, model_form(model, max_tokens="8192"))

    assert refused.status_code == 200
    assert "max_tokens" in refused.context["adminform"].form.errors
    assert saved.status_code == 302
    assert Model.objects.get(pk=model.pk).max_tokens == 8192


def test_a_models_per_search_price_is_applied_and_reaches_the_routing_snapshot():
    data = config()
    data["models"][0]["pricing_per_mtok"] = {"input": 3, "output": 15, "web_search_per_1k": 10}
    config_apply(data=data)

    model = Model.objects.get(name=data["models"][0]["name"])
    assert model.price_web_search == Decimal(10)
    from providers.routing import _load

    assert _load.func(None).models[model.name].prices.web_search == Decimal(10)


@pytest.mark.parametrize("price", [-1, "ten", 1_000_000])
def test_a_bad_per_search_price_is_refused_and_nothing_is_applied(price):
    data = config()
    data["models"][0]["pricing_per_mtok"] = {"web_search_per_1k": price}
    with pytest.raises(ConfigError):
        config_apply(data=data)
    assert Model.objects.count() == 0
