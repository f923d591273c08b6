"""Config as code: fields left out are kept, --prune, --dry-run, --diff, every problem at once,
and `gateway_export`, whose output applied again changes nothing."""

from decimal import Decimal
from io import StringIO

import msgspec
import pytest
import yaml
from django.core.management import call_command

from accounts import config_version
from accounts.models import ApiKey, AuditEntry, Tenant
from accounts.services import api_key_create
from providers import services
from providers.models import Model, Provider, Route
from providers.selectors import config_export
from providers.services import ConfigError, config_apply
from tests.integration.test_config_apply import config, openai_key  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

FULL = {  # every field config_apply reads, set away from its default
    "providers": [
        {
            "name": "vllm-box",
            "kind": "openai",
            "base_url": "http://10.0.0.5:8000/v1",
            "options": {"max_tokens_field": "max_tokens"},
            "api_key_env": "TG_TEST_OPENAI_KEY",
            "headers": {"x-proxy-key": "proxy-secret-0009"},
            "enabled": False,
            "timeouts": {"connect": 3.5, "first_byte": 30, "idle": 20},
        }
    ],
    "models": [
        {
            "name": "claude-full",
            "display_name": "Full",
            "enabled": False,
            "max_tokens": 8192,
            "routing": "price",
            "pricing_per_mtok": {
                "input": 1.25,
                "output": 10,
                "cache_read": 0.125,
                "cache_write": 2,
            },
            "routes": [
                {
                    "provider": "vllm-box",
                    "upstream_model": "qwen3",
                    "priority": 2,
                    "weight": 5,
                    "enabled": False,
                    "alpha": True,
                    "upstream_price_input": 0.5,
                    "upstream_price_output": 1.5,
                    "long_context_window": 1_000_000,
                    "long_context_upstream_model": "qwen3-1m",
                }
            ],
            "aliases": ["claude-full-*", "claude-full-20260101"],
        }
    ],
    "tenants": [
        {
            "name": "initech",
            "display_name": "Initech",
            "models": ["claude-full"],
            "rpm": 60,
            "tpm": 100_000,
            "budget_usd": 12.5,
            "budget_period": "daily",
            "provider": {"sort": "latency"},
            "default_model": "claude-full",
            "capture_bodies": True,
            "capture_retention_days": 3,
            "capture_max_bytes": 4096,
        }
    ],
}


# --- Fields left out keep their values ------------------------------------------------------


def test_an_entry_naming_only_a_model_keeps_its_prices_and_routes():
    config_apply(data=config())
    before = Model.objects.get(name="claude-sonnet-4-5")

    applied = config_apply(data={"models": [{"name": "claude-sonnet-4-5"}]})

    after = Model.objects.get(name="claude-sonnet-4-5")
    assert (after.price_input, after.price_output, after.price_cache_write) == (
        Decimal(3),
        Decimal(15),
        Decimal("3.75"),
    )
    assert (after.display_name, after.max_tokens) == (before.display_name, 64000)
    assert after.routes.count() == 2
    assert applied.changes == [] and applied.summary["models"]["unchanged"] == 1


def test_a_price_left_out_of_pricing_keeps_its_value():
    config_apply(data=config())
    config_apply(data={"models": [{"name": "claude-sonnet-4-5", "pricing_per_mtok": {"input": 4}}]})
    model = Model.objects.get(name="claude-sonnet-4-5")
    assert (model.price_input, model.price_output) == (Decimal(4), Decimal(15))


def test_an_entry_naming_only_a_tenant_keeps_its_limits_models_and_name():
    config_apply(data=FULL)

    config_apply(data={"tenants": [{"name": "initech"}]})

    tenant = Tenant.objects.get(name="initech")
    assert (tenant.display_name, tenant.rpm, tenant.tpm, tenant.budget_usd) == (
        "Initech",
        60,
        100_000,
        Decimal("12.50"),
    )
    assert tenant.budget_period == "daily" and tenant.provider_defaults == {"sort": "latency"}
    assert [m.name for m in tenant.allowed_models.all()] == ["claude-full"]
    assert tenant.default_model.name == "claude-full"


def test_one_limit_changes_and_the_others_stay():
    config_apply(data=FULL)
    config_apply(data={"tenants": [{"name": "initech", "rpm": 120}]})
    tenant = Tenant.objects.get(name="initech")
    assert (tenant.rpm, tenant.tpm, tenant.budget_usd) == (120, 100_000, Decimal("12.50"))


def test_an_entry_naming_only_a_provider_keeps_everything_it_had():
    config_apply(data=FULL)
    config_apply(data={"providers": [{"name": "vllm-box"}]})
    provider = Provider.objects.get(name="vllm-box")
    assert (provider.kind, provider.base_url, provider.enabled) == (
        "openai",
        "http://10.0.0.5:8000/v1",
        False,
    )
    assert (provider.connect_timeout, provider.first_byte_timeout) == (3.5, 30)
    assert provider.extra_headers == {"x-proxy-key": "proxy-secret-0009"}
    assert provider.credential == "sk-openai-from-env-0002"


def test_a_new_provider_needs_a_kind():
    with pytest.raises(ConfigError) as refused:
        config_apply(data={"providers": [{"name": "nameless"}]})
    assert refused.value.problems == [
        "providers[0] (nameless): a new provider needs a kind or a preset"
    ]


def test_null_clears_what_may_be_empty():
    config_apply(data=FULL)
    config_apply(
        data={
            "models": [{"name": "claude-full", "max_tokens": None}],
            "tenants": [{"name": "initech", "default_model": None, "budget_usd": None}],
        }
    )
    assert Model.objects.get(name="claude-full").max_tokens is None
    tenant = Tenant.objects.get(name="initech")
    assert (tenant.default_model, tenant.budget_usd, tenant.rpm) == (None, None, 60)


# --- Every problem at once ------------------------------------------------------------------


def test_every_problem_of_every_kind_is_listed_at_once():
    data = config()
    data["providers"][0]["timeouts"] = {"connect": "soon"}  # a type error in one entry
    data["providers"][1]["kind"] = "bedrock"  # a value error in another
    data["models"][1]["routes"][0]["provider"] = "nowhere"  # a reference to nothing
    data["tenants"][0]["rpm"] = 0  # a type error in a third section
    data["tenants"][1]["default_model"] = "missing"  # and a reference in it

    with pytest.raises(ConfigError) as refused:
        config_apply(data=data)

    assert refused.value.problems == [
        "providers[0] (openai-main).timeouts.connect: Expected `float`, got `str`",
        "tenants[0] (acme).rpm: Expected `int` >= 1",
        "providers[1] (anthropic-main): unknown kind 'bedrock' (expected one of: anthropic, "
        "demo, gemini, openai, openai_responses)",
        "models[1] (claude-haiku-4-5).routes[0]: unknown provider 'nowhere'",
        "tenants[1] (globex): unknown default_model 'missing'",
    ]
    assert Provider.objects.count() == 0


# --- --dry-run and --diff -------------------------------------------------------------------


def test_a_dry_run_lists_each_change_field_by_field_and_writes_nothing(monkeypatch):
    config_apply(data=config())
    told = []
    monkeypatch.setattr(config_version, "config_changed", lambda: told.append(1))
    entries = AuditEntry.objects.count()
    data = {
        "models": [
            {"name": "claude-haiku-4-5", "pricing_per_mtok": {"output": 5}},
            {"name": "claude-new", "routes": [{"provider": "openai-main", "upstream_model": "g"}]},
        ],
        "providers": [{"name": "anthropic-main", "api_key": "sk-ant-rotated-0005"}],
    }

    applied = config_apply(data=data, dry_run=True)

    assert applied.dry_run
    assert 'update model claude-haiku-4-5: price_output: "0.000000" -> "5.000000"' in (
        applied.changes
    )
    assert 'update provider anthropic-main: credential: "set" -> "replaced"' in applied.changes
    assert any(c.startswith("create model claude-new") for c in applied.changes)
    assert any(c.startswith("create route claude-new") for c in applied.changes)
    assert "sk-ant-rotated-0005" not in "\n".join(applied.changes)
    assert applied.summary["models"] == {"created": 1, "updated": 1, "unchanged": 0, "deleted": 0}
    # Nothing written, nothing announced.
    assert not Model.objects.filter(name="claude-new").exists()
    assert Model.objects.get(name="claude-haiku-4-5").price_output == 0
    assert Provider.objects.get(name="anthropic-main").credential == "sk-ant-literal-0001"
    assert AuditEntry.objects.count() == entries and told == []


def test_the_command_prints_the_diff_and_applies_it(tmp_path):
    config_apply(data=config())
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"tenants": [{"name": "acme", "rpm": 30}]}))
    dry, diff = StringIO(), StringIO()

    call_command("gateway_apply", str(path), "--dry-run", stdout=dry)
    unchanged = Tenant.objects.get(name="acme").rpm
    call_command("gateway_apply", str(path), "--diff", stdout=diff)

    assert "update tenant acme: rpm: null -> 30" in dry.getvalue()
    assert "Would apply" in dry.getvalue() and unchanged is None
    assert "update tenant acme: rpm: null -> 30" in diff.getvalue()
    assert Tenant.objects.get(name="acme").rpm == 30


# --- --prune --------------------------------------------------------------------------------


def test_prune_deletes_what_a_section_does_not_name_and_leaves_other_sections():
    config_apply(data=config())
    key, _ = api_key_create(tenant=Tenant.objects.get(name="globex"), name="k")
    data = config()
    data["models"] = [m for m in data["models"] if m["name"] == "claude-sonnet-4-5"]
    data["tenants"] = [{"name": "acme"}]
    del data["providers"]  # not a section of this file: no provider is deleted

    applied = config_apply(data=data, prune=True)

    assert list(Model.objects.values_list("name", flat=True)) == ["claude-sonnet-4-5"]
    assert list(Tenant.objects.values_list("name", flat=True)) == ["acme"]
    assert Provider.objects.count() == 2
    assert not ApiKey.objects.filter(pk=key.pk).exists()  # the tenant's keys went with it
    assert applied.summary["models"]["deleted"] == applied.summary["tenants"]["deleted"] == 1
    assert "delete model claude-haiku-4-5" in applied.changes
    assert "delete tenant globex" in applied.changes


def test_without_prune_nothing_is_deleted():
    config_apply(data=config())
    config_apply(data={"models": [], "tenants": [], "providers": []})
    assert (Provider.objects.count(), Model.objects.count(), Tenant.objects.count()) == (2, 2, 2)


def test_a_pruning_dry_run_deletes_nothing():
    config_apply(data=config())
    applied = config_apply(data={"providers": []}, prune=True, dry_run=True)
    assert applied.summary["providers"]["deleted"] == 2 and applied.summary["routes"]["deleted"]
    assert (Provider.objects.count(), Route.objects.count()) == (2, 3)


# --- gateway_export -------------------------------------------------------------------------


def test_applying_the_export_changes_nothing():
    config_apply(data=config())
    config_apply(data=FULL)
    text = yaml.safe_dump(config_export(), sort_keys=False)

    applied = config_apply(data=yaml.safe_load(text))

    assert applied.changes == []
    assert all(c["created"] == c["updated"] == c["deleted"] == 0 for c in applied.summary.values())


def test_the_export_names_credentials_by_variable_and_never_holds_a_secret():
    config_apply(data=config())
    config_apply(data=FULL)
    text = yaml.safe_dump(config_export())

    providers = {p["name"]: p for p in config_export()["providers"]}
    assert providers["openai-main"]["api_key_env"] == "TG_TEST_OPENAI_KEY"
    assert "api_key_env" not in providers["anthropic-main"]  # a literal key: left out, kept
    for secret in ("sk-openai-from-env-0002", "sk-ant-literal-0001", "proxy-secret-0009"):
        assert secret not in text


def test_a_credential_set_in_the_admin_is_no_longer_exported_as_a_variable():
    config_apply(data=config())
    provider = Provider.objects.get(name="openai-main")
    services.catalog_save(row=provider, credential="sk-set-by-hand-0006")
    (entry,) = [p for p in config_export()["providers"] if p["name"] == "openai-main"]
    assert "api_key_env" not in entry


@pytest.mark.parametrize(
    ("section", "struct", "left_out"),
    [
        ("providers", services.ProviderSpec, {"api_key", "preset", "headers"}),
        ("models", services.ModelSpec, set()),
        ("tenants", services.TenantSpec, set()),
    ],
)
def test_the_export_covers_every_field_the_file_may_set(section, struct, left_out):
    config_apply(data=FULL)
    (entry,) = config_export()[section]
    fields = {f.encode_name for f in msgspec.structs.fields(struct)}
    assert fields - left_out == set(entry), "a field gateway_apply reads is not exported"
    if section == "models":
        (route,) = entry["routes"]
        assert {f.encode_name for f in msgspec.structs.fields(services.RouteSpec)} == set(route)
        assert set(entry["pricing_per_mtok"]) == {
            f.encode_name for f in msgspec.structs.fields(services.PricingSpec)
        }


def test_the_export_command_writes_a_file_the_apply_command_reads_unchanged(tmp_path):
    config_apply(data=config())
    path, out = tmp_path / "export.yaml", StringIO()

    call_command("gateway_export", str(path))
    call_command("gateway_apply", str(path), "--dry-run", stdout=out)

    assert "  no changes" in out.getvalue()


@pytest.mark.parametrize(
    "capture",
    [
        {"capture_max_bytes": 10},  # below the 1 KiB floor
        {"capture_max_bytes": 10**9},  # above the 1 MiB cap
        {"capture_retention_days": 0},
        {"capture_retention_days": 10_000},
        {"capture_bodies": "yes"},
    ],
)
def test_body_capture_settings_out_of_bounds_are_refused_naming_the_tenant(capture):
    with pytest.raises(ConfigError) as refused:
        config_apply(data={"tenants": [{"name": "acme", **capture}]})
    (problem,) = refused.value.problems
    assert problem.startswith(f"tenants[0] (acme).{next(iter(capture))}")
    assert not Tenant.objects.exists()
