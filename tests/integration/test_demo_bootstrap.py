"""`demo_bootstrap`: the quick start's provider, models, tenant and first key, safe to rerun."""

import sys
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from accounts import keys
from accounts.models import ApiKey, Tenant
from accounts.services import api_key_revoke
from providers.models import Model, Provider, Route
from providers.services import demo_bootstrap
from tests.factories import ModelFactory, ProviderFactory, RouteFactory

pytestmark = pytest.mark.django_db


def rows() -> tuple[int, int, int, int, int]:
    return (
        Provider.objects.count(),
        Model.objects.count(),
        Route.objects.count(),
        Tenant.objects.count(),
        ApiKey.objects.count(),
    )


def test_first_run_creates_the_demo_setup_and_a_quickstart_key():
    tenant, secret = demo_bootstrap()

    assert tenant.name == "demo"
    assert Provider.objects.get(name="demo").kind == "demo"
    demo = Model.objects.get(name="claude-demo")
    assert (
        demo.price_input,
        demo.price_output,
        demo.price_cache_read,
        demo.price_cache_write,
    ) == tuple(map(Decimal, ("3", "15", "0.3", "3.75")))
    for name in ("claude-demo", "claude-sonnet-4-5", "claude-haiku-4-5"):
        route = Route.objects.get(model__name=name)
        assert (route.provider.name, route.upstream_model) == ("demo", "demo-1")
    key = ApiKey.objects.get(tenant=tenant)
    assert key.name == "quickstart"
    assert key.secret_hash == keys.hash_secret(secret)


def test_second_run_changes_nothing_and_shows_the_same_key():
    _, first = demo_bootstrap()
    before = rows()

    tenant, second = demo_bootstrap()

    assert second == first
    assert rows() == before and before[:4] == (1, 3, 3, 1)
    active = tenant.api_keys.filter(revoked_at__isnull=True)
    assert [k.secret_hash for k in active] == [keys.hash_secret(first)]


def test_rotating_revokes_the_key_and_the_next_run_keeps_the_new_one():
    _, first = demo_bootstrap()

    tenant, second = demo_bootstrap(rotate=True)
    _, third = demo_bootstrap()

    assert second != first and third == second
    active = tenant.api_keys.filter(revoked_at__isnull=True)
    assert [k.secret_hash for k in active] == [keys.hash_secret(second)]
    assert tenant.api_keys.get(secret_hash=keys.hash_secret(first)).revoked_at is not None


def test_the_key_depends_on_this_installations_secret_key(settings):
    _, first = demo_bootstrap()
    settings.SECRET_KEY = "another-installation-" + "x" * 40

    tenant, second = demo_bootstrap()  # the old key cannot be derived again: a new one

    assert second != first
    assert tenant.api_keys.filter(revoked_at__isnull=True).count() == 1


def test_existing_model_names_are_not_rerouted_to_demo():
    real = RouteFactory(
        model=ModelFactory(name="claude-sonnet-4-5"),
        provider=ProviderFactory(name="anthropic-main", kind="anthropic"),
        upstream_model="claude-sonnet-4-5",
    )

    demo_bootstrap()

    assert list(Route.objects.filter(model__name="claude-sonnet-4-5")) == [real]
    assert Route.objects.get(model__name="claude-haiku-4-5").provider.name == "demo"


def test_a_new_key_is_created_once_the_old_one_is_revoked():
    tenant, _ = demo_bootstrap()
    api_key_revoke(key=tenant.api_keys.get())

    _, secret = demo_bootstrap()

    assert secret is not None
    assert tenant.api_keys.filter(revoked_at__isnull=True).count() == 1


def test_command_prints_examples_and_the_key_alone_on_the_last_line():
    out = StringIO()

    call_command("demo_bootstrap", "--port", "8123", stdout=out)

    secret = out.getvalue().rstrip("\n").splitlines()[-1]
    assert ApiKey.objects.get().secret_hash == keys.hash_secret(secret)
    assert "http://127.0.0.1:8123/v1/messages" in out.getvalue()
    assert f"export TOLLGATE_KEY={secret}" in out.getvalue()
    assert f"{sys.executable} - <<'PY'" in out.getvalue()  # the project's own interpreter


def resolved(tenant, name: str) -> str:
    from accounts.keys import KeyInfo
    from gateway.pipeline.admission import resolve_model
    from providers import routing

    snapshot = routing._load.func(b"1")  # what each process runs when the version moves
    key = KeyInfo(
        key_id=1,
        tenant_id=tenant.pk,
        tenant_name=tenant.name,
        prefix="tg_x",
        allowed_models=None,
        allow_debug=False,
        expires_at=None,
        revoked=False,
        tenant_active=True,
    )
    return resolve_model(snapshot, key, name).name


@pytest.mark.parametrize(
    "asked, model",
    [
        ("claude-opus-5-5", "claude-demo"),  # Claude Code 2.1.332's default
        ("claude-haiku-5-5", "claude-demo"),  # and its small model
        ("claude-opus-4-8", "claude-demo"),  # 2.1.197's, sent without its [1m]
        ("claude-opus-4-8[1m]", "claude-demo"),
        ("claude-sonnet-4-5-20250929", "claude-demo"),
        ("claude-sonnet-4-5", "claude-sonnet-4-5"),  # a model of its own wins
    ],
)
def test_the_demo_tenant_answers_claude_codes_own_ids(asked, model):
    tenant, _ = demo_bootstrap()

    assert tenant.default_model.name == "claude-demo"
    assert resolved(tenant, asked) == model


def test_a_default_model_the_operator_chose_is_kept():
    tenant, _ = demo_bootstrap()
    other = ModelFactory(name="claude-other")
    tenant.default_model = other
    tenant.save()

    tenant, _ = demo_bootstrap()

    assert tenant.default_model == other
