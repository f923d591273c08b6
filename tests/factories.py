"""factory-boy factories for the models; API keys go through the service so a secret exists."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from accounts.models import ApiKey, Membership, Tenant
from accounts.services import api_key_create
from providers.models import Model, Provider, Route


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tenant-{n}")
    display_name = factory.LazyAttribute(lambda t: t.name.title())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Membership.Role.VIEWER


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Provider
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"provider-{n}")
    kind = "demo"
    base_url = ""


class ModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Model
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"model-{n}")
    price_input = Decimal("3")
    price_output = Decimal("15")


class RouteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Route

    model = factory.SubFactory(ModelFactory)
    provider = factory.SubFactory(ProviderFactory)
    upstream_model = factory.Sequence(lambda n: f"upstream-{n}")


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """Made by `api_key_create`; the secret is left on the instance as `key.secret`."""

    class Meta:
        model = ApiKey

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"key-{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        key, secret = api_key_create(**kwargs)
        key.secret = secret
        return key


def make_key(tenant: Tenant | None = None, **kwargs) -> tuple[ApiKey, str]:
    """A key and its secret; kwargs go to `api_key_create` (name, models, expires_in_days...)."""
    key = ApiKeyFactory(tenant=tenant or TenantFactory(), **kwargs)
    return key, key.secret


# --- Usage (appended for the dashboards, the REST API and the metrics tests) -----------------

from datetime import UTC, datetime, time, timedelta  # noqa: E402  (appended section's imports)

from django.utils import timezone  # noqa: E402


class UsageRecordFactory(factory.django.DjangoModelFactory):
    """One finished request; `started_at` defaults to now, `finished_at` follows `latency_ms`."""

    class Meta:
        model = "gateway.UsageRecord"

    request_id = factory.Sequence(lambda n: f"req_{n:020d}")
    tenant = factory.SubFactory(TenantFactory)
    api_key = None
    model = "claude-sonnet-4-5"
    provider = "anthropic-main"
    upstream_model = factory.LazyAttribute(lambda r: f"{r.model}-upstream")
    input_tokens = 100
    output_tokens = 50
    cost_usd = Decimal("0.001050000")
    latency_ms = 250.0
    status = "ok"
    http_status = 200
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyAttribute(
        lambda r: r.started_at + timedelta(milliseconds=r.latency_ms)
    )


class DailyUsageFactory(factory.django.DjangoModelFactory):
    """One roll-up line; pass `api_key=` to fill the key's id and prefix."""

    class Meta:
        model = "gateway.DailyUsage"
        exclude = ("api_key",)

    api_key = None
    day = factory.LazyFunction(lambda: timezone.now().date())
    tenant = factory.SubFactory(TenantFactory)
    api_key_id = factory.LazyAttribute(lambda d: d.api_key.pk if d.api_key else 0)
    api_key_prefix = factory.LazyAttribute(lambda d: d.api_key.prefix if d.api_key else "")
    model = "claude-sonnet-4-5"
    provider = "anthropic-main"
    requests = 10
    errors = 1
    input_tokens = 1000
    output_tokens = 500
    cost_usd = Decimal("0.010500000")
    latency_ms_total = 2500.0


def seed_usage(
    tenant: Tenant,
    *,
    key: ApiKey | None = None,
    models: tuple[str, ...] = ("claude-sonnet-4-5", "claude-haiku-4-5"),
    provider: str = "anthropic-main",
    days: int = 14,
) -> None:
    """Plausible usage for charts: a roll-up per model and day, and three requests behind each.

    Model i on the day d days ago: 20 * (i + 1) + 3 * d requests, d % 4 errors, and requests
    taking 200, 400 and 1200 ms times (i + 1).
    """
    today = timezone.now().date()
    for index, model in enumerate(models):
        for ago in range(days):
            day = today - timedelta(days=ago)
            requests = 20 * (index + 1) + 3 * ago
            DailyUsageFactory(
                tenant=tenant,
                api_key=key,
                day=day,
                model=model,
                provider=provider,
                requests=requests,
                errors=ago % 4,
                input_tokens=900 * requests,
                output_tokens=300 * requests,
                cost_usd=Decimal("0.0072") * requests * (index + 1),
                latency_ms_total=450.0 * requests * (index + 1),
            )
            noon = datetime.combine(day, time(12), tzinfo=UTC)
            for latency in (200.0, 400.0, 1200.0):
                UsageRecordFactory(
                    tenant=tenant,
                    api_key=key,
                    model=model,
                    provider=provider,
                    latency_ms=latency * (index + 1),
                    started_at=noon,
                )
