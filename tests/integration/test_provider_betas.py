"""A provider's `anthropic-beta` policy: set by presets, `gateway_apply` and the admin."""

import pytest
from django.urls import reverse

from providers.models import Provider
from providers.services import ConfigError, config_apply
from tests.factories import ProviderFactory

pytestmark = pytest.mark.django_db


def apply(**provider) -> Provider:
    entry = {"name": "compat", "kind": "anthropic", "base_url": "https://compat.test", **provider}
    config_apply(data={"providers": [entry]})
    return Provider.objects.get(name="compat")


def test_a_provider_forwards_every_beta_unless_told_otherwise():
    provider = apply()
    assert (provider.betas_mode, provider.betas) == ("forward", [])


def test_an_anthropic_compatible_preset_allows_only_harmless_betas():
    provider = apply(kind="", preset="anthropic-compatible")
    assert provider.kind == "anthropic"
    assert provider.betas_mode == "allow"
    assert provider.betas == ["interleaved-thinking-*", "fine-grained-tool-streaming-*"]


def test_the_entry_wins_over_its_preset():
    provider = apply(preset="deepseek-anthropic", betas={"mode": "deny", "names": ["files-api-*"]})
    assert provider.base_url == "https://compat.test"
    assert (provider.betas_mode, provider.betas) == ("deny", ["files-api-*"])


@pytest.mark.parametrize(
    "betas",
    [{"mode": "sometimes"}, {"names": ["has space"]}, {"names": "context-1m-*"}, {"extra": 1}],
)
def test_a_bad_policy_refuses_the_document(betas):
    with pytest.raises(ConfigError) as refused:
        apply(betas=betas)
    assert "betas" in str(refused.value.problems)
    assert not Provider.objects.filter(name="compat").exists()


def provider_form(provider: Provider, **changes) -> dict:
    data = {
        "name": provider.name,
        "kind": provider.kind,
        "base_url": "",
        "enabled": "on",
        "connect_timeout": "10",
        "first_byte_timeout": "120",
        "idle_timeout": "120",
    }
    data.update(changes)
    return data


def test_the_admin_edits_the_policy_and_refuses_a_bad_name(admin_client):
    provider = ProviderFactory(name="compat-admin", kind="anthropic")
    url = reverse("admin:providers_provider_change", args=[provider.pk])

    refused = admin_client.post(url, provider_form(provider, betas='["bad name"]'))
    saved = admin_client.post(
        url, provider_form(provider, betas_mode="allow", betas='["context-1m-*"]')
    )

    assert refused.status_code == 200
    assert "betas" in refused.context["adminform"].form.errors
    assert saved.status_code == 302
    provider.refresh_from_db()
    assert (provider.betas_mode, provider.betas) == ("allow", ["context-1m-*"])
