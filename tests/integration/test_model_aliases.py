"""Aliases, patterns, long-context routes and tenant defaults: `gateway_apply` and the admin."""

import pytest
from django.urls import reverse

from accounts.models import AuditEntry, Tenant
from providers.models import Model, ModelAlias, Route
from providers.services import ConfigError, config_apply
from tests.factories import ModelFactory, TenantFactory
from tests.integration.test_config_apply import model_form

pytestmark = pytest.mark.django_db

PROVIDER = {"name": "openai-main", "kind": "openai", "api_key": "sk-openai-0001"}


def model(name: str, aliases: list[str] | None = None, **route) -> dict:
    entry = {"name": name, "routes": [{"provider": "openai-main", "upstream_model": f"up-{name}"}]}
    entry["routes"][0].update(route)
    if aliases is not None:
        entry["aliases"] = aliases
    return entry


def apply(*models: dict, tenants: list[dict] | None = None) -> dict:
    return config_apply(
        data={"providers": [PROVIDER], "models": list(models), "tenants": tenants or []}
    )


def aliases_of(name: str) -> list[str]:
    return sorted(ModelAlias.objects.filter(model__name=name).values_list("name", flat=True))


def refusal(*models: dict, tenants: list[dict] | None = None) -> str:
    with pytest.raises(ConfigError) as refused:
        apply(*models, tenants=tenants)
    return str(refused.value)


def test_apply_sets_aliases_and_patterns_and_a_listed_set_replaces_them():
    apply(
        model("opus", ["claude-opus-4-8", "claude-*-opus-*"]), model("sonnet", ["claude-sonnet-*"])
    )
    assert aliases_of("opus") == ["claude-*-opus-*", "claude-opus-4-8"]

    apply(model("opus", ["claude-opus-*"]), model("sonnet"))  # sonnet: aliases left out, kept

    assert aliases_of("opus") == ["claude-opus-*"]
    assert aliases_of("sonnet") == ["claude-sonnet-*"]
    actions = set(
        AuditEntry.objects.filter(object_type="model_alias").values_list("action", flat=True)
    )
    assert actions == {"create", "delete"}


def test_an_alias_moves_between_models_listed_in_one_document():
    apply(model("a", ["claude-x"]), model("b", []))

    apply(model("b", ["claude-x"]), model("a", []))  # b first: the alias is still a's in the db

    assert aliases_of("a") == [] and aliases_of("b") == ["claude-x"]


@pytest.mark.parametrize(
    "models, message",
    [
        (
            [model("opus", ["*"])],
            "models[0] (opus).aliases: pattern '*' would match almost every model id",
        ),
        ([model("opus", ["x" * 129])], "models[0] (opus).aliases: alias must be 1 to 128"),
        ([model("opus", ["claude-opus[1m]"])], "may not contain [ or ]"),
        ([model("opus", ["claude opus"])], "must be visible ASCII without spaces"),
        ([model("opus[1m]")], "models[0] (opus[1m]): model name 'opus[1m]' may not contain"),
        ([model("opus", ["sonnet"]), model("sonnet")], "alias 'sonnet' is already the name"),
        (
            [model("opus", ["claude-x"]), model("sonnet", ["claude-x"])],
            "models[1] (sonnet).aliases: 'claude-x' is already an alias of opus",
        ),
        (
            [model("opus", ["claude-*-opus"]), model("sonnet", ["claude-opus-*"])],
            "'claude-*-opus' (opus) and 'claude-opus-*' (sonnet) are equally specific",
        ),
        ([model("opus", [f"a-*-{i}" for i in range(101)])], "Expected `array` of length <= 100"),
        (
            [model("opus", long_context_window=10**12)],
            "models[0] (opus).routes[0].long_context_window: Expected `int` <= 100000000",
        ),
    ],
)
def test_bad_aliases_are_refused_whole_naming_the_entry(models, message):
    assert message in refusal(*models)
    assert Model.objects.count() == 0


def test_an_alias_clashing_with_one_already_stored_is_refused():
    apply(model("opus", ["claude-opus-*"]))

    message = refusal(model("sonnet", ["claude-opus-*"]))

    assert "models[0] (sonnet).aliases: 'claude-opus-*' is already an alias of opus" in message


def test_a_route_declares_its_long_context_variant():
    apply(model("opus", long_context_window=1_000_000, long_context_upstream_model="up-opus-1m"))

    route = Route.objects.get(model__name="opus")
    assert (route.long_context_window, route.long_context_upstream_model) == (
        1_000_000,
        "up-opus-1m",
    )


def test_a_tenant_default_model_is_set_checked_and_cleared():
    apply(model("opus"), model("sonnet"), tenants=[{"name": "acme", "default_model": "opus"}])
    assert Tenant.objects.get(name="acme").default_model.name == "opus"

    unknown = refusal(model("opus"), tenants=[{"name": "acme", "default_model": "nope"}])
    outside = refusal(
        model("opus"),
        model("sonnet"),
        tenants=[{"name": "acme", "models": ["sonnet"], "default_model": "opus"}],
    )
    apply(model("opus"), tenants=[{"name": "acme"}])  # left out: kept
    kept = Tenant.objects.get(name="acme").default_model.name
    apply(model("opus"), tenants=[{"name": "acme", "default_model": None}])

    assert kept == "opus"
    assert "tenants[0] (acme): unknown default_model 'nope'" in unknown
    assert "default_model 'opus' is not one of the tenant's models" in outside
    assert Tenant.objects.get(name="acme").default_model is None


# --- The admin ----------------------------------------------------------------------------------


def alias_rows(*names: str) -> dict:
    rows = {
        "aliases-TOTAL_FORMS": str(len(names)),
        "aliases-INITIAL_FORMS": "0",
    }
    for i, name in enumerate(names):
        rows[f"aliases-{i}-name"] = name
    return rows


def test_the_admin_adds_aliases_to_a_model(admin_client):
    opus = ModelFactory(name="opus")
    url = reverse("admin:providers_model_change", args=[opus.pk])

    saved = admin_client.post(
        url, model_form(opus, **alias_rows("claude-opus-*", "claude-opus-4-8"))
    )

    assert saved.status_code == 302
    assert aliases_of("opus") == ["claude-opus-*", "claude-opus-4-8"]


@pytest.mark.parametrize(
    "names, message",
    [
        (("*",), "would match almost every model id"),
        (("sonnet",), "already the name of a model"),
        (("claude-sonnet-*",), "Model alias with this Name already exists"),
        (("claude-*-sonnet",), "equally specific and can match the same id"),
    ],
)
def test_the_admin_refuses_bad_aliases_saying_why(admin_client, names, message):
    sonnet = ModelFactory(name="sonnet")
    ModelAlias.objects.create(model=sonnet, name="claude-sonnet-*")
    opus = ModelFactory(name="opus")
    url = reverse("admin:providers_model_change", args=[opus.pk])

    refused = admin_client.post(url, model_form(opus, **alias_rows(*names)))

    assert refused.status_code == 200
    formset = refused.context["inline_admin_formsets"][0].formset
    errors = str(formset.errors) + str(formset.non_form_errors())
    assert message in errors
    assert aliases_of("opus") == []


def test_the_admin_refuses_a_model_name_with_a_context_suffix(admin_client):
    opus = ModelFactory(name="opus")
    url = reverse("admin:providers_model_change", args=[opus.pk])

    refused = admin_client.post(url, model_form(opus, name="opus[1m]"))

    assert refused.status_code == 200
    assert "may not contain [ or ]" in str(refused.context["adminform"].form.errors)


def tenant_form(tenant, **changes) -> dict:
    data = {
        "display_name": tenant.display_name,
        "is_active": "on",
        "budget_period": "monthly",
        "provider_defaults": "{}",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    data.update(changes)
    return data


def test_the_admin_sets_a_tenant_default_model_within_its_models(admin_client):
    opus, sonnet = ModelFactory(name="opus"), ModelFactory(name="sonnet")
    tenant = TenantFactory(name="acme")
    url = reverse("admin:accounts_tenant_change", args=[tenant.pk])

    refused = admin_client.post(
        url, tenant_form(tenant, allowed_models=[sonnet.pk], default_model=opus.pk)
    )
    saved = admin_client.post(url, tenant_form(tenant, default_model=opus.pk))

    assert refused.status_code == 200
    assert "default_model" in refused.context["adminform"].form.errors
    assert saved.status_code == 302
    assert Tenant.objects.get(pk=tenant.pk).default_model == opus


# --- What the gateway loads -----------------------------------------------------------------------


def loaded():
    from providers import routing

    return routing._load.func(b"1")  # what each process runs when the version moves


def test_the_routing_snapshot_resolves_aliases_of_enabled_models_only():
    apply(
        model("opus", ["claude-opus-*"]),
        {**model("old", ["claude-old-*"]), "enabled": False},
        tenants=[{"name": "acme", "default_model": "opus"}],
    )

    snapshot = loaded()

    assert snapshot.aliases.candidates("claude-opus-5-5") == ("opus",)
    assert snapshot.aliases.candidates("claude-old-1") == ()
    assert snapshot.models["opus"].aliases == ("claude-opus-*",)
    assert snapshot.tenant_default == {Tenant.objects.get(name="acme").pk: "opus"}


def test_a_long_context_request_tries_the_routes_declaring_it_first_as_their_variant():
    config_apply(
        data={
            "providers": [PROVIDER, {**PROVIDER, "name": "openai-other"}],
            "models": [
                {
                    "name": "opus",
                    "routes": [
                        {"provider": "openai-main", "upstream_model": "up-short", "priority": 1},
                        {
                            "provider": "openai-other",
                            "upstream_model": "up-long",
                            "priority": 2,
                            "long_context_window": 1_000_000,
                            "long_context_upstream_model": "up-long-1m",
                        },
                    ],
                }
            ],
        }
    )
    snapshot = loaded()
    opus = snapshot.models["opus"]

    planned, short = snapshot.long_context(opus, snapshot.plan(opus), 1_000_000)
    too_long, none_able = snapshot.long_context(opus, snapshot.plan(opus), 2_000_000)

    assert [t.upstream_model for t in planned] == ["up-long-1m", "up-short"]
    assert short == {Route.objects.get(upstream_model="up-short").pk}
    assert [t.upstream_model for t in too_long] == ["up-short", "up-long"]
    assert len(none_able) == 2
