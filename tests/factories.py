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
    kind = Provider.Kind.DEMO
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
