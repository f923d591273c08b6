"""Reads for providers, models and routes: the configuration as a document.

`config_export` writes what `config_apply` reads (providers/services.py), so that applying the
export changes nothing. Credentials never appear: a provider's is named by the environment
variable it was read from (`api_key_env`), or left out, which keeps the stored one when the
document is applied. A provider's extra headers are left out for the same reason (they often
carry a key): applying keeps them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from accounts.models import Tenant
from providers.models import Model, Provider


def _number(value: Decimal | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _provider(p: Provider) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": p.name, "kind": p.kind}
    if p.base_url:
        entry["base_url"] = p.base_url
    if p.options:
        entry["options"] = p.options
    if p.credential_env:
        entry["api_key_env"] = p.credential_env
    entry["enabled"] = p.enabled
    entry["betas"] = {"mode": p.betas_mode, "names": list(p.betas or [])}
    entry["timeouts"] = {
        "connect": p.connect_timeout,
        "first_byte": p.first_byte_timeout,
        "idle": p.idle_timeout,
    }
    return entry


def _model(m: Model) -> dict[str, Any]:
    return {
        "name": m.name,
        "display_name": m.display_name,
        "enabled": m.enabled,
        "max_tokens": m.max_tokens,
        "routing": m.routing,
        "pricing_per_mtok": {
            "input": _number(m.price_input),
            "output": _number(m.price_output),
            "cache_read": _number(m.price_cache_read),
            "cache_write": _number(m.price_cache_write),
            "web_search_per_1k": _number(m.price_web_search),
            "cache_write_1h": _number(m.price_cache_write_1h),
        },
        "routes": [
            {
                "provider": r.provider.name,
                "upstream_model": r.upstream_model,
                "priority": r.priority,
                "weight": r.weight,
                "enabled": r.enabled,
                "alpha": r.alpha,
                "upstream_price_input": _number(r.upstream_price_input),
                "upstream_price_output": _number(r.upstream_price_output),
                "long_context_window": r.long_context_window,
                "long_context_upstream_model": r.long_context_upstream_model,
            }
            for r in m.routes.all()
        ],
        "aliases": [a.name for a in m.aliases.all()],
    }


def _tenant(t: Tenant) -> dict[str, Any]:
    return {
        "name": t.name,
        "display_name": t.display_name,
        "models": [m.name for m in t.allowed_models.all()],
        "rpm": t.rpm,
        "tpm": t.tpm,
        "budget_usd": _number(t.budget_usd),
        "budget_period": t.budget_period or Tenant.BudgetPeriod.MONTHLY,
        "provider": t.provider_defaults,
        "default_model": t.default_model.name if t.default_model_id else None,
        "capture_bodies": t.capture_bodies,
        "capture_retention_days": t.capture_retention_days,
        "capture_max_bytes": t.capture_max_bytes,
    }


def config_export() -> dict[str, list[dict[str, Any]]]:
    """Every provider, model (with routes and aliases) and tenant, as a config document."""
    models = Model.objects.prefetch_related("aliases", "routes__provider").order_by("name")
    tenants = Tenant.objects.select_related("default_model").prefetch_related("allowed_models")
    return {
        "providers": [_provider(p) for p in Provider.objects.order_by("name")],
        "models": [_model(m) for m in models],
        "tenants": [_tenant(t) for t in tenants.order_by("name")],
    }
