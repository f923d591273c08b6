"""Writes for providers, models and routes: the declarative config file and the demo setup.

`config_apply` upserts what a document declares, by name:

- providers, models and tenants not in the document are left alone (nothing is deleted),
  unless `prune` is asked: then each section the document has deletes what it does not name;
- for an entry that is listed, a field left out keeps its stored value (a new row takes the
  field's default); `null` clears a field that may be empty (a limit, a model's max_tokens, a
  tenant's default model). A provider's credential is kept likewise when neither `api_key`
  nor `api_key_env` is given, so secrets can be kept out of the file and set in the admin;
  a provider's `headers` are stored encrypted, like its credential;
- a model's `routes:` list REPLACES its routes: routes not listed are deleted. Leave `routes:`
  out entirely to keep a model's routes as they are;
- a model's `aliases:` list (exact ids and `*` patterns) REPLACES its aliases; leave it out
  to keep them. Aliases are checked as a whole with the database's (providers/aliases.py): an
  alias equal to a model's name, an alias of two models, or two equally specific patterns that
  can match one id are refused;
- a tenant whose `models:` is empty (or null) may use every enabled model; its
  `default_model` answers an unmatched `claude-*` id.

The document is checked whole before anything is written (`ConfigError` lists every problem of
every entry at once); then everything is written in one transaction, and the audit entries it
wrote are read back as the list of changes (a dry run then rolls the transaction back).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_slug
from django.db import models as db
from django.db import transaction

from accounts import audit, config_version, keys
from accounts.models import (
    MAX_CAPTURE_BYTES,
    MAX_CAPTURE_DAYS,
    MIN_CAPTURE_BYTES,
    AuditEntry,
    Tenant,
)
from accounts.selectors import api_keys_active
from accounts.services import (
    ServiceError,
    api_key_create,
    api_key_revoke,
    limits_check,
    provider_defaults_check,
    tenant_delete,
    tenant_set_capture,
    tenant_set_default_model,
    tenant_set_limits,
    tenant_set_provider_defaults,
)
from protocols.anthropic import betas
from providers import aliases, presets
from providers.kinds import DEMO, KINDS
from providers.models import Model, ModelAlias, Provider, Route


class ConfigError(ServiceError):
    """A config document refused whole; `problems` names each bad entry."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid config, nothing applied:\n{lines}")


# --- Schema ----------------------------------------------------------------------------------

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType
Seconds = Annotated[float, msgspec.Meta(ge=0.1)]
Price = Annotated[float, msgspec.Meta(ge=0, lt=1_000_000)]  # USD per million tokens
LongContext = Annotated[int, msgspec.Meta(ge=1, le=aliases.MAX_MILLIONS * aliases.MILLION)]
MAX_ALIASES = 100  # per model: keeps the config-time overlap check small
SECTIONS = ("providers", "models", "tenants")


def given(**values: Any) -> dict[str, Any]:
    """The values an entry states: a field it leaves out (UNSET) keeps the stored value."""
    return {name: value for name, value in values.items() if value is not UNSET}


class TimeoutsSpec(msgspec.Struct, forbid_unknown_fields=True):
    connect: Seconds | Unset = UNSET
    first_byte: Seconds | Unset = UNSET
    idle: Seconds | Unset = UNSET


class BetasSpec(msgspec.Struct, forbid_unknown_fields=True):
    """Which `anthropic-beta` names the provider gets (protocols/anthropic/betas.py)."""

    mode: Literal["forward", "allow", "deny"] = "forward"
    names: list[str] = []


class ProviderSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    kind: str | Unset = UNSET  # required for a new provider, unless its preset gives it
    preset: str | None = None  # providers/presets.py: vllm, ollama, azure, ...
    options: dict[str, Any] | Unset = UNSET
    base_url: str | Unset = UNSET
    api_key: str | None = None
    api_key_env: str | None = None
    headers: dict[str, str] | Unset = UNSET
    enabled: bool | Unset = UNSET
    timeouts: TimeoutsSpec = msgspec.field(default_factory=TimeoutsSpec)
    # Left out: the preset's policy, else the provider's own (a new one forwards every beta).
    betas: BetasSpec | Unset = UNSET


class PricingSpec(msgspec.Struct, forbid_unknown_fields=True):
    input: Price | Unset = UNSET
    output: Price | Unset = UNSET
    cache_read: Price | Unset = UNSET
    cache_write: Price | Unset = UNSET  # a 5-minute cache write
    cache_write_1h: Price | Unset | None = UNSET  # None: twice the input price
    web_search_per_1k: Price | Unset = UNSET  # USD per 1,000 web searches, not per million tokens


class RouteSpec(msgspec.Struct, forbid_unknown_fields=True):
    provider: str
    upstream_model: str
    priority: int | Unset = UNSET
    weight: Annotated[int, msgspec.Meta(ge=1)] | Unset = UNSET
    enabled: bool | Unset = UNSET
    alpha: bool | Unset = UNSET
    upstream_price_input: Price | Unset | None = UNSET  # what the provider charges: sort: price
    upstream_price_output: Price | Unset | None = UNSET
    # The long-context variant (`[1m]`-style ids): tokens of context, and its upstream model.
    long_context_window: LongContext | Unset | None = UNSET
    long_context_upstream_model: str | Unset = UNSET


class ModelSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    display_name: str | Unset = UNSET
    enabled: bool | Unset = UNSET
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | Unset | None = UNSET  # None: no limit
    routing: Literal["weighted", "latency", "price"] | Unset = UNSET
    pricing_per_mtok: PricingSpec = msgspec.field(default_factory=PricingSpec)
    routes: list[RouteSpec] | Unset | None = UNSET  # left out (or null): keep the routes
    # Exact ids and `*` patterns; left out (or null): keep the model's aliases.
    aliases: Annotated[list[str], msgspec.Meta(max_length=MAX_ALIASES)] | Unset | None = UNSET


class TenantSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    display_name: str | Unset = UNSET
    models: list[str] | Unset | None = UNSET  # null or []: every enabled model
    rpm: Annotated[int, msgspec.Meta(ge=1)] | Unset | None = UNSET  # null: no limit
    tpm: Annotated[int, msgspec.Meta(ge=1)] | Unset | None = UNSET
    budget_usd: Annotated[float, msgspec.Meta(ge=0, le=1000000)] | Unset | None = UNSET
    budget_period: Literal["daily", "monthly"] | Unset = UNSET
    provider: dict[str, Any] | Unset | None = UNSET  # defaults for the request's `provider`
    default_model: str | Unset | None = UNSET  # what an unmatched `claude-*` id means here
    # The request log's body capture (off by default): on/off, days kept, bytes kept per body.
    capture_bodies: bool | Unset = UNSET
    capture_retention_days: Annotated[int, msgspec.Meta(ge=1, le=MAX_CAPTURE_DAYS)] | Unset = UNSET
    capture_max_bytes: (
        Annotated[int, msgspec.Meta(ge=MIN_CAPTURE_BYTES, le=MAX_CAPTURE_BYTES)] | Unset
    ) = UNSET


ENTRY_SPECS = {"providers": ProviderSpec, "models": ModelSpec, "tenants": TenantSpec}


@dataclass
class ConfigSpec:
    providers: list[ProviderSpec] = dataclass_field(default_factory=list)
    models: list[ModelSpec] = dataclass_field(default_factory=list)
    tenants: list[TenantSpec] = dataclass_field(default_factory=list)
    # Sections the document has (even empty): what --prune may delete from.
    sections: frozenset[str] = frozenset()
    # Names of entries refused while parsing: other entries may still refer to them.
    refused: dict[str, set[str]] = dataclass_field(default_factory=dict)
    # Each parsed entry's index in the document (refused entries leave gaps).
    positions: dict[str, list[int]] = dataclass_field(default_factory=dict)

    def numbered(self, section: str) -> list[tuple[int, Any]]:
        """(index in the document, entry) for the entries of one section that parsed."""
        return list(zip(self.positions.get(section, []), getattr(self, section), strict=True))


# --- Check -----------------------------------------------------------------------------------

_MSGSPEC_PATH = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>.*)`)?$", re.DOTALL)
_PATH_PART = re.compile(r"\.(\w+)|\[(\d+|\.\.\.)\]")
_url = URLValidator(schemes=["http", "https"])


def _where(path: str, raw: Any) -> str:
    """`.models[1].routes[0]` -> `models[1] (claude-x).routes[0]`: entries named by name."""
    out, node = "", raw
    for part in _PATH_PART.finditer(path):
        key, index = part.groups()
        if key is not None:
            out += f".{key}" if out else key
            node = node.get(key) if isinstance(node, dict) else None
            continue
        out += f"[{index}]"
        if index.isdigit() and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                out += f" ({node['name']})"
        else:
            node = None
    return out or "config"


def _parse(data: Any) -> tuple[ConfigSpec, list[str]]:
    """Each entry parsed on its own, so that every bad entry is reported, not only the first."""
    if not isinstance(data, dict):
        return ConfigSpec(), ["config: expected an object with providers, models and tenants"]
    problems = [f"{name}: unknown section" for name in data if name not in ENTRY_SPECS]
    spec = ConfigSpec(sections=frozenset(n for n in ENTRY_SPECS if n in data))
    refused: dict[str, set[str]] = {section: set() for section in ENTRY_SPECS}
    for section, struct in ENTRY_SPECS.items():
        entries = data.get(section) or []
        if not isinstance(entries, list):
            problems.append(f"{section}: expected a list of entries")
            continue
        parsed, positions = getattr(spec, section), spec.positions.setdefault(section, [])
        for i, entry in enumerate(entries):
            try:
                parsed.append(msgspec.convert(entry, struct))
                positions.append(i)
            except msgspec.ValidationError as exc:
                match = _MSGSPEC_PATH.match(str(exc))
                assert match is not None  # the pattern matches any string
                path = f".{section}[{i}]{match['path'] or ''}"
                problems.append(f"{_where(path, data)}: {match['what']}")
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    refused[section].add(entry["name"])
    spec.refused = refused
    return spec, problems


def _check_slug(name: str, max_length: int) -> str | None:
    try:
        validate_slug(name)
    except ValidationError:
        return "name must be a slug (letters, digits, '-' and '_')"
    return f"name is longer than {max_length} characters" if len(name) > max_length else None


def _check_duplicates(spec: ConfigSpec, section: str, problems: list[str]) -> None:
    first: dict[str, int] = {}
    for i, name in ((i, entry.name) for i, entry in spec.numbered(section)):
        if name in first:
            problems.append(
                f"{section}[{i}] ({name}): duplicate name (see {section}[{first[name]}])"
            )
        first.setdefault(name, i)


# An HTTP token (RFC 9110) for names; values on one line, without control characters.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]{0,8192}")
MAX_EXTRA_HEADERS = 50


def headers_problem(headers: Any) -> str | None:
    """What is wrong with a provider's extra headers (None: nothing), for admin and config."""
    if not isinstance(headers, dict):
        return "headers must be an object of header names and values"
    if len(headers) > MAX_EXTRA_HEADERS:
        return f"at most {MAX_EXTRA_HEADERS} extra headers"
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            return f"header name {name!r} is not a valid HTTP header name"
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            return f"header {name}: the value must be text on one line (latin-1, no controls)"
    return None


def _check_provider(where: str, p: ProviderSpec, problems: list[str]) -> str | None:
    """Check one provider; returns its credential (None: keep the stored one)."""
    if p.preset is not None:
        if p.preset not in presets.PRESETS:
            names = ", ".join(sorted(presets.PRESETS))
            problems.append(f"{where}: unknown preset {p.preset!r} (expected one of: {names})")
        else:  # what the entry leaves out comes from its preset
            p.kind, p.base_url, p.options = presets.resolve(
                p.preset,
                kind=p.kind or None,
                base_url=p.base_url or "",
                options=p.options or {},
            )
    if (error := _check_slug(p.name, 64)) is not None:
        problems.append(f"{where}: {error}")
    if p.kind is not UNSET and p.kind not in KINDS:
        names = ", ".join(sorted(KINDS))
        problems.append(f"{where}: unknown kind {p.kind!r} (expected one of: {names})")
    if p.base_url:
        try:
            _url(p.base_url)
        except ValidationError:
            problems.append(f"{where}: base_url {p.base_url!r} is not a valid http(s) URL")
    if p.headers is not UNSET and (error := headers_problem(p.headers)) is not None:
        problems.append(f"{where}: {error}")
    if p.betas is UNSET and p.preset in presets.PRESETS:
        p.betas = msgspec.convert(presets.betas(p.preset), BetasSpec)
    if p.betas and (error := betas.names_problem(p.betas.names)) is not None:
        problems.append(f"{where}.betas: {error}")
    if p.api_key is not None and p.api_key_env is not None:
        problems.append(f"{where}: give api_key or api_key_env, not both")
    if p.api_key_env is not None:
        value = os.environ.get(p.api_key_env, "")
        if not value:
            problems.append(f"{where}: environment variable {p.api_key_env} is not set")
        return value
    return p.api_key


def _check_document(spec: ConfigSpec) -> tuple[list[str], dict[str, str | None]]:
    """Problems found without the database, and each provider's credential."""
    problems: list[str] = []
    credentials: dict[str, str | None] = {}
    _check_duplicates(spec, "providers", problems)
    for i, p in spec.numbered("providers"):
        credentials[p.name] = _check_provider(f"providers[{i}] ({p.name})", p, problems)
    _check_duplicates(spec, "models", problems)
    for i, m in spec.numbered("models"):
        where = f"models[{i}] ({m.name})"
        if not m.name.strip() or len(m.name) > 128:
            problems.append(f"{where}: name must be 1 to 128 characters")
        if (error := aliases.model_name_problem(m.name)) is not None:
            problems.append(f"{where}: {error}")
        for alias in m.aliases or []:
            if (error := aliases.name_problem(alias)) is not None:
                problems.append(f"{where}.aliases: {error}")
        seen: set[tuple[str, str]] = set()
        for j, r in enumerate(m.routes or []):
            if not r.upstream_model.strip() or len(r.upstream_model) > 200:
                problems.append(f"{where}.routes[{j}]: upstream_model must be 1 to 200 characters")
            if len(r.long_context_upstream_model or "") > 200:
                problems.append(
                    f"{where}.routes[{j}]: long_context_upstream_model is longer than 200 "
                    "characters"
                )
            if (r.provider, r.upstream_model) in seen:
                problems.append(f"{where}.routes[{j}]: duplicate route to {r.provider}")
            seen.add((r.provider, r.upstream_model))
    _check_duplicates(spec, "tenants", problems)
    for i, t in spec.numbered("tenants"):
        if (error := _check_slug(t.name, 64)) is not None:
            problems.append(f"tenants[{i}] ({t.name}): {error}")
        if t.provider is not UNSET:
            try:
                provider_defaults_check(t.provider)
            except ServiceError as err:
                problems.append(f"tenants[{i}] ({t.name}).provider: {err}")
        try:
            limits_check(**given(rpm=t.rpm, tpm=t.tpm, budget_usd=t.budget_usd))
        except ServiceError as err:
            problems.append(f"tenants[{i}] ({t.name}): {err}")
    return problems, credentials


def _check_references(spec: ConfigSpec) -> list[str]:
    """Routes and tenants may name providers and models from the file or the database; a new
    provider needs a kind; a tenant's default model must be one of its models."""
    providers = {p.name for p in spec.providers} | spec.refused.get("providers", set())
    models = {m.name for m in spec.models} | spec.refused.get("models", set())
    wanted_providers = {r.provider for m in spec.models for r in m.routes or []} - providers
    wanted_models = {n for t in spec.tenants for n in t.models or []} - models
    wanted_models |= {
        t.default_model for t in spec.tenants if isinstance(t.default_model, str)
    } - models
    if wanted_providers:
        providers |= set(
            Provider.objects.filter(name__in=wanted_providers).values_list("name", flat=True)
        )
    if wanted_models:
        models |= set(Model.objects.filter(name__in=wanted_models).values_list("name", flat=True))
    problems = []
    stored = set(
        Provider.objects.filter(name__in=[p.name for p in spec.providers]).values_list(
            "name", flat=True
        )
    )
    for i, p in spec.numbered("providers"):
        if p.kind is UNSET and p.name not in stored:
            problems.append(f"providers[{i}] ({p.name}): a new provider needs a kind or a preset")
    for i, m in spec.numbered("models"):
        for j, r in enumerate(m.routes or []):
            if r.provider not in providers:
                problems.append(
                    f"models[{i}] ({m.name}).routes[{j}]: unknown provider {r.provider!r}"
                )
    tenants = {t.name: t for t in Tenant.objects.filter(name__in=[t.name for t in spec.tenants])}
    for i, t in spec.numbered("tenants"):
        unknown = [n for n in t.models or [] if n not in models]
        if unknown:
            problems.append(f"tenants[{i}] ({t.name}): unknown model(s): {', '.join(unknown)}")
        if isinstance(t.default_model, str) and t.default_model not in models:
            problems.append(f"tenants[{i}] ({t.name}): unknown default_model {t.default_model!r}")
            continue
        stored_tenant = tenants.get(t.name)
        allowed = t.models
        if allowed is UNSET:  # kept: the tenant's list as stored
            allowed = _names(stored_tenant.allowed_models) if stored_tenant else []
        default = t.default_model
        if default is UNSET and stored_tenant is not None and stored_tenant.default_model_id:
            default = stored_tenant.default_model.name
        if allowed and isinstance(default, str) and default not in allowed:
            problems.append(
                f"tenants[{i}] ({t.name}): default_model {default!r} is not one of the "
                "tenant's models"
            )
    return problems + _check_aliases(spec)


def _names(related) -> list[str]:
    return sorted(related.values_list("name", flat=True))


def _check_aliases(spec: ConfigSpec) -> list[str]:
    """The aliases as they would be after applying the document, checked as a whole."""
    listed = {m.name for m in spec.models if isinstance(m.aliases, list)}
    final = dict(
        ModelAlias.objects.exclude(model__name__in=listed).values_list("name", "model__name")
    )
    where: dict[str, str] = {}
    problems: list[str] = []
    for i, m in spec.numbered("models"):
        for alias in m.aliases or []:
            if alias in final and final[alias] != m.name:
                problems.append(
                    f"models[{i}] ({m.name}).aliases: {alias!r} is already an alias of "
                    f"{final[alias]}"
                )
            final[alias], where[alias] = m.name, f"models[{i}] ({m.name}).aliases"
    names = set(Model.objects.values_list("name", flat=True)) | {m.name for m in spec.models}
    for concerned, problem in aliases.problems(final, names):
        entry = next((where[a] for a in concerned if a in where), "aliases")
        problems.append(f"{entry}: {problem}")
    return problems


# --- Apply -----------------------------------------------------------------------------------


@dataclass
class Applied:
    """What applying a document did (or, in a dry run, would do)."""

    summary: dict[str, dict[str, int]]
    # One line per change, field by field, secrets redacted (from the audit entries written).
    changes: list[str] = dataclass_field(default_factory=list)
    dry_run: bool = False


class _DryRun(Exception):
    """Raised to roll a dry run back once its changes are read."""


def _counts(*extra: str) -> dict[str, int]:
    return dict.fromkeys(("created", "updated", "unchanged", *extra), 0)


def _upsert(cls: type[db.Model], lookup: dict, values: dict) -> tuple[Any, str, dict | None]:
    """Create or update one row; returns it, "created", "updated" or "unchanged", and its
    audit snapshot from before (None: created)."""
    obj = cls.objects.filter(**lookup).first()
    if obj is None:
        return cls.objects.create(**lookup, **values), "created", None
    before = audit.snapshot(obj)
    changed = {f: v for f, v in values.items() if getattr(obj, f) != v}
    if not changed:
        return obj, "unchanged", before
    for field, value in changed.items():
        setattr(obj, field, value)
    obj.save()
    return obj, "updated", before


def _record(
    obj: db.Model,
    before: dict | None,
    credential_replaced: bool = False,
    headers_replaced: frozenset[str] = frozenset(),
) -> None:
    """The audit entry of an upserted row: created, or the fields that changed (if any)."""
    after = audit.snapshot(obj)
    if credential_replaced and before and before.get("credential") == "set":
        after["credential"] = "replaced"  # both "set": say that the secret changed, not what
    if headers_replaced and before:  # values are redacted: say which ones changed
        after["extra_headers"] = {
            name: audit.REPLACED if name in headers_replaced else value
            for name, value in after["extra_headers"].items()
        }
    audit.record(audit.UPDATE if before else audit.CREATE, obj, before, after)


def _stored_headers(provider: Provider | None) -> dict[str, str]:
    try:
        return provider.extra_headers if provider is not None else {}
    except ValueError:  # encrypted with a key no longer configured: every value is replaced
        return {}


def _replaced(old: dict[str, str], new: dict[str, str]) -> frozenset[str]:
    """Headers kept by name whose value changed."""
    return frozenset(name for name, value in new.items() if name in old and old[name] != value)


def _price(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.000001"))  # the column's precision


def _optional_price(value: float | Unset | None) -> Decimal | Unset | None:
    return value if value is None or value is UNSET else _price(value)


def _apply_provider(p: ProviderSpec, credential: str | None, counts: dict) -> Provider:
    t = p.timeouts
    values = given(
        kind=p.kind,
        base_url=p.base_url,
        extra_headers=p.headers,
        options=p.options,
        betas_mode=p.betas.mode if p.betas else UNSET,
        betas=p.betas.names if p.betas else UNSET,
        enabled=p.enabled,
        connect_timeout=t.connect,
        first_byte_timeout=t.first_byte,
        idle_timeout=t.idle,
    )
    if credential is not None:  # where the credential comes from, for gateway_export
        values["credential_env"] = p.api_key_env or ""
    old_headers = _stored_headers(Provider.objects.filter(name=p.name).first())
    provider, status, before = _upsert(Provider, {"name": p.name}, values)
    try:
        # Compared in clear: Fernet gives a new ciphertext for the same secret every time.
        same = credential is None or provider.credential == credential
    except ValueError:  # encrypted with a key no longer configured: replace it
        same = False
    if not same:
        provider.set_credential(credential)
        provider.save(update_fields=["credential_encrypted", "updated_at"])
        status = "updated" if status == "unchanged" else status
    _record(
        provider,
        before,
        credential_replaced=not same and bool(credential),
        headers_replaced=_replaced(old_headers, p.headers or {}),
    )
    counts[status] += 1
    return provider


def _apply_model(m: ModelSpec, providers: dict[str, Provider], summary: dict) -> None:
    price = m.pricing_per_mtok
    values = given(
        display_name=m.display_name,
        enabled=m.enabled,
        max_tokens=m.max_tokens,
        routing=m.routing,
        price_input=_optional_price(price.input),
        price_output=_optional_price(price.output),
        price_cache_read=_optional_price(price.cache_read),
        price_cache_write=_optional_price(price.cache_write),
        price_web_search=_optional_price(price.web_search_per_1k),
        price_cache_write_1h=_optional_price(price.cache_write_1h),
    )
    model, status, before = _upsert(Model, {"name": m.name}, values)
    _record(model, before)
    summary["models"][status] += 1
    if m.aliases is not None and m.aliases is not UNSET:
        _apply_aliases(model, m.aliases)
    if m.routes is None or m.routes is UNSET:
        return
    kept = []
    for r in m.routes:
        lookup = {
            "model": model,
            "provider": providers[r.provider],
            "upstream_model": r.upstream_model,
        }
        values = given(
            priority=r.priority,
            weight=r.weight,
            enabled=r.enabled,
            alpha=r.alpha,
            upstream_price_input=_optional_price(r.upstream_price_input),
            upstream_price_output=_optional_price(r.upstream_price_output),
            long_context_window=r.long_context_window,
            long_context_upstream_model=r.long_context_upstream_model,
        )
        route, status, before = _upsert(Route, lookup, values)
        _record(route, before)
        summary["routes"][status] += 1
        kept.append(route.pk)
    for route in model.routes.exclude(pk__in=kept).select_related("model", "provider"):
        audit.record(audit.DELETE, route)
    deleted, _ = model.routes.exclude(pk__in=kept).delete()
    summary["routes"]["deleted"] += deleted


def _apply_aliases(model: Model, names: list[str]) -> None:
    """Make the model's aliases exactly `names`. One of them still held by another model is
    moving here (the check allowed it only because that model's list drops it)."""
    dropped = model.aliases.exclude(name__in=names)
    moving = ModelAlias.objects.filter(name__in=names).exclude(model=model)
    for alias in (dropped | moving).select_related("model"):
        audit.record(audit.DELETE, alias)
        alias.delete()
    have = set(model.aliases.values_list("name", flat=True))
    for name in dict.fromkeys(names):
        if name not in have:
            audit.record(audit.CREATE, ModelAlias.objects.create(model=model, name=name))


def _apply_tenant(t: TenantSpec, counts: dict) -> None:
    values = given(display_name=t.display_name)
    if t.default_model is not UNSET:
        values["default_model"] = (
            None if t.default_model is None else Model.objects.get(name=t.default_model)
        )
    tenant, status, before = _upsert(Tenant, {"name": t.name}, values)
    if t.models is not UNSET:
        wanted = set(Model.objects.filter(name__in=t.models or []).values_list("pk", flat=True))
        if set(tenant.allowed_models.values_list("pk", flat=True)) != wanted:
            tenant.allowed_models.set(wanted)
            status = "updated" if status == "unchanged" else status
    _record(tenant, before)  # limits and provider defaults: recorded by their services
    stated = given(rpm=t.rpm, tpm=t.tpm, budget_usd=t.budget_usd, budget_period=t.budget_period)
    if stated:
        limits = {f: getattr(tenant, f) for f in ("rpm", "tpm", "budget_usd", "budget_period")}
        if tenant_set_limits(tenant=tenant, **{**limits, **stated}):
            status = "updated" if status == "unchanged" else status
    if t.provider is not UNSET and tenant_set_provider_defaults(tenant=tenant, defaults=t.provider):
        status = "updated" if status == "unchanged" else status
    capture = given(
        enabled=t.capture_bodies,
        retention_days=t.capture_retention_days,
        max_bytes=t.capture_max_bytes,
    )
    if capture and tenant_set_capture(
        tenant=tenant, **{"enabled": tenant.capture_bodies, **capture}
    ):
        status = "updated" if status == "unchanged" else status
    counts[status] += 1


def _prune(spec: ConfigSpec, summary: dict) -> None:
    """Delete what a section of the document does not name (sections it leaves out are kept).
    Tenants go with their keys and memberships; providers and models with their routes."""
    if "tenants" in spec.sections:
        named = {t.name for t in spec.tenants}
        for tenant in Tenant.objects.exclude(name__in=named):
            tenant_delete(tenant=tenant)
            summary["tenants"]["deleted"] += 1
    for section, cls in (("models", Model), ("providers", Provider)):
        if section not in spec.sections:
            continue
        named = {entry.name for entry in getattr(spec, section)}
        for row in cls.objects.exclude(name__in=named):
            routes = row.routes.count()
            catalog_delete(row=row)
            summary[section]["deleted"] += 1
            summary["routes"]["deleted"] += routes


def config_apply(*, data: Any, prune: bool = False, dry_run: bool = False) -> Applied:
    """Check a config document whole, then upsert it; returns counts per section and each
    change field by field. `prune` deletes what the document's sections do not name;
    `dry_run` does everything in a transaction it rolls back, and tells no gateway.

    Raises ConfigError (nothing applied) naming every problem of the document.
    """
    spec, problems = _parse(data)
    document, credentials = _check_document(spec)
    problems += document
    problems += _check_references(spec)
    if problems:
        raise ConfigError(problems)
    summary = {
        "providers": _counts("deleted"),
        "models": _counts("deleted"),
        "routes": _counts("deleted"),
        "tenants": _counts("deleted"),
    }
    applied = Applied(summary=summary, dry_run=dry_run)
    try:
        with transaction.atomic():
            first = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            providers = {
                p.name: _apply_provider(p, credentials[p.name], summary["providers"])
                for p in spec.providers
            }
            # Routes may also point at providers already in the database.
            elsewhere = {r.provider for m in spec.models for r in m.routes or []} - set(providers)
            providers |= {p.name: p for p in Provider.objects.filter(name__in=elsewhere)}
            for m in spec.models:
                _apply_model(m, providers, summary)
            for t in spec.tenants:
                _apply_tenant(t, summary["tenants"])
            if prune:
                _prune(spec, summary)
            entries = AuditEntry.objects.filter(pk__gt=first).order_by("pk")
            applied.changes = [audit.describe(entry) for entry in entries]
            if dry_run:
                raise _DryRun
            transaction.on_commit(config_version.config_changed)
    except _DryRun:
        pass
    return applied


# --- Demo ------------------------------------------------------------------------------------

DEMO_MODEL = "claude-demo"
# Public names the official SDKs' examples use, served by the demo provider when free.
DEMO_ALIASES = ("claude-sonnet-4-5", "claude-haiku-4-5")
DEMO_PRICES = {
    "price_input": Decimal("3"),
    "price_output": Decimal("15"),
    "price_cache_read": Decimal("0.3"),
    "price_cache_write": Decimal("3.75"),
}


def _ensure(cls: type[db.Model], **lookup) -> Any:
    """get_or_create, with an audit entry when the row is new."""
    row, created = cls.objects.get_or_create(**lookup)
    if created:
        audit.record(audit.CREATE, row)
    return row


def demo_bootstrap(*, rotate: bool = False) -> tuple[Tenant, str]:
    """Ensure the demo provider, models and tenant, and the tenant's `quickstart` key.

    The demo tenant's default model is `claude-demo` (when it has none), so every `claude-*`
    id, Claude Code's own included, reaches the demo provider.

    Only hashes of keys are stored, so the key is derived from SECRET_KEY and its generation
    (the count of quickstart keys made so far): every run shows the same working key, without
    storing it, until `rotate` revokes it for the next generation (or SECRET_KEY changes).
    Other rows are never changed, so this is safe to run on every start.
    """
    with transaction.atomic():
        provider = _ensure(Provider, name="demo", defaults={"kind": DEMO})
        model = _ensure(
            Model, name=DEMO_MODEL, defaults={"display_name": "Claude (demo)", **DEMO_PRICES}
        )
        _ensure(Route, model=model, provider=provider, upstream_model="demo-1")
        for name in DEMO_ALIASES:
            alias, created = Model.objects.get_or_create(name=name, defaults=DEMO_PRICES)
            if created:
                audit.record(audit.CREATE, alias)
                _ensure(Route, model=alias, provider=provider, upstream_model="demo-1")
        tenant = _ensure(Tenant, name="demo", defaults={"display_name": "Demo"})
        if tenant.default_model is None:  # Claude Code's own ids, with no ANTHROPIC_MODEL
            # Unless an operator limited the demo tenant to other models.
            with contextlib.suppress(ServiceError):
                tenant_set_default_model(tenant=tenant, model=model)
        made = tenant.api_keys.filter(name="quickstart").count()
        if made and not rotate:
            secret, _, secret_hash = keys.derived_secret(f"quickstart:{tenant.pk}:{made}")
            if api_keys_active(tenant=tenant).filter(secret_hash=secret_hash).exists():
                transaction.on_commit(config_version.config_changed)
                return tenant, secret
        for old in api_keys_active(tenant=tenant).filter(name="quickstart"):
            api_key_revoke(key=old)
        _, secret = api_key_create(
            tenant=tenant, name="quickstart", derived_from=f"quickstart:{tenant.pk}:{made + 1}"
        )
        transaction.on_commit(config_version.config_changed)
    return tenant, secret


# --- Admin edits -----------------------------------------------------------------------------


def catalog_save(
    *,
    row: Provider | Model | Route | ModelAlias,
    credential: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> None:
    """Save a provider, model or route edited in the admin (its form has set the values),
    record the change and announce it to every replica after commit.

    `credential`: a provider's new upstream key ("" clears it; None keeps the stored one).
    `extra_headers`: a provider's new extra headers, all of them ({} clears; None keeps).
    """
    with transaction.atomic():
        before = audit.stored(row)
        replaced: frozenset[str] = frozenset()
        if credential is not None:
            row.set_credential(credential)
            row.credential_env = ""  # no longer the value of an environment variable
        if extra_headers is not None and isinstance(row, Provider):
            stored = Provider.objects.filter(pk=row.pk).first() if row.pk else None
            replaced = _replaced(_stored_headers(stored), extra_headers)
            row.extra_headers = extra_headers
        row.save()
        _record(row, before, credential_replaced=bool(credential), headers_replaced=replaced)
        transaction.on_commit(config_version.config_changed)


def catalog_delete(*, row: Provider | Model | Route | ModelAlias) -> None:
    """Delete a provider, model, route or alias; a provider's or model's routes (and a model's
    aliases) go with it."""
    with transaction.atomic():
        cascaded: list[db.Model] = []
        if isinstance(row, Provider | Model):
            cascaded += row.routes.select_related("model", "provider")
        if isinstance(row, Model):
            cascaded += row.aliases.select_related("model")
        for route in cascaded:
            audit.record(audit.DELETE, route)
        audit.record(audit.DELETE, row)
        row.delete()
        transaction.on_commit(config_version.config_changed)


# --- Catalog checks (admin and REST API) -----------------------------------------------------


def model_name_check(*, name: str) -> None:
    """ServiceError when `name` cannot name a model: what resolution reads itself, or an alias."""
    problem = aliases.model_name_problem(name)
    if problem is None and ModelAlias.objects.filter(name=name).exists():
        problem = f"{name!r} is already an alias of a model"
    if problem is not None:
        raise ServiceError(problem)


def alias_problems(*, model: Model, names: list[str]) -> list[str]:
    """What is wrong with `names` becoming exactly the aliases of `model`, checked with every
    other model's aliases and names (providers/aliases.py): the rules of `gateway_apply`."""
    mine = dict.fromkeys(names, model.name)
    others = ModelAlias.objects.exclude(model=model.pk).exclude(name__in=mine)
    taken = ModelAlias.objects.filter(name__in=mine).exclude(model=model.pk).select_related("model")
    found = [f"{a.name!r} is already an alias of {a.model.name}" for a in taken]
    everything = {**dict(others.values_list("name", "model__name")), **mine}
    model_names = {*Model.objects.exclude(pk=model.pk).values_list("name", flat=True), model.name}
    return found + [problem for _, problem in aliases.problems(everything, model_names)]


def alias_create(*, model: Model, name: str) -> ModelAlias:
    """Give `model` one more alias or pattern, checked with all the others; announced to every
    replica once committed."""
    current = list(model.aliases.values_list("name", flat=True))
    if name in current:
        raise ServiceError(f"{name!r} is already an alias of {model.name}")
    if len(current) >= MAX_ALIASES:
        raise ServiceError(f"a model has at most {MAX_ALIASES} aliases")
    if problems := alias_problems(model=model, names=[*current, name]):
        raise ConfigError(problems)
    alias = ModelAlias(model=model, name=name)
    catalog_save(row=alias)
    return alias
