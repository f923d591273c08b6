"""Providers (where requests go), public models (what clients ask for), routes and prices."""

import json
from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models

from providers import crypto, kinds

MTOK = Decimal(1_000_000)


class Provider(models.Model):
    name = models.SlugField(max_length=64, unique=True)
    # The kinds table (providers/kinds.py), read at validation: a new kind needs no migration.
    kind = models.CharField(max_length=32, choices=kinds.choices)
    base_url = models.URLField(max_length=500, blank=True)
    credential_encrypted = models.TextField(blank=True, editable=False)
    # The environment variable gateway_apply read the credential from (`api_key_env`), so that
    # gateway_export can name it instead of the value; empty when it was set another way.
    credential_env = models.CharField(max_length=200, blank=True, editable=False)
    # Headers sent with every upstream request (a proxy's key, a project id): often credentials
    # themselves, so kept encrypted like the API key (a JSON object, see `extra_headers`).
    extra_headers_encrypted = models.TextField(blank=True, editable=False)
    # Quirks of an OpenAI-compatible server or of Azure (see providers/presets.py).
    options = models.JSONField(default=dict, blank=True)
    # Which `anthropic-beta` names an Anthropic-kind provider gets (protocols/anthropic/betas.py):
    # Anthropic-compatible servers reject betas they do not know.
    betas_mode = models.CharField(
        max_length=16,
        choices=[
            ("forward", "Forward every beta"),
            ("allow", "Forward only the betas listed"),
            ("deny", "Forward every beta except those listed"),
        ],
        default="forward",
    )
    betas = models.JSONField(
        default=list,
        blank=True,
        help_text='Beta names for the mode above; a trailing * matches any suffix: "context-1m-*".',
    )
    connect_timeout = models.FloatField(default=10.0, validators=[MinValueValidator(0.1)])
    first_byte_timeout = models.FloatField(default=120.0, validators=[MinValueValidator(0.1)])
    idle_timeout = models.FloatField(default=120.0, validators=[MinValueValidator(0.1)])
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def credential(self) -> str:
        return crypto.decrypt(self.credential_encrypted)

    def set_credential(self, value: str) -> None:
        self.credential_encrypted = crypto.encrypt(value)

    @property
    def has_credential(self) -> bool:
        return bool(self.credential_encrypted)

    @property
    def extra_headers(self) -> dict[str, str]:
        if not self.extra_headers_encrypted:
            return {}
        return json.loads(crypto.decrypt(self.extra_headers_encrypted))

    @extra_headers.setter
    def extra_headers(self, headers: dict[str, str] | None) -> None:
        self.extra_headers_encrypted = crypto.encrypt(json.dumps(headers)) if headers else ""


class Model(models.Model):
    """A public model name clients send, with its prices in USD per million tokens."""

    class Routing(models.TextChoices):
        WEIGHTED = "weighted", "Weighted random"
        LATENCY = "latency", "Lowest observed latency (EWMA)"
        PRICE = "price", "Lowest upstream price"

    name = models.CharField(max_length=128, unique=True)
    display_name = models.CharField(max_length=200, blank=True)
    price_input = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    price_output = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    price_cache_read = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    price_cache_write = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    price_web_search = models.DecimalField(
        "price per 1,000 web searches",
        max_digits=12,
        decimal_places=6,
        default=Decimal(0),
        help_text="USD per 1,000 searches the provider ran for an answer (web_search tool), "
        "billed as usage.server_tool_use.web_search_requests (Anthropic: 10).",
    )
    # A 1-hour cache write (`cache_control.ttl: "1h"`); None: twice the input price, as
    # Anthropic bills it (a 5-minute write is 1.25x, `price_cache_write`).
    price_cache_write_1h = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True
    )
    max_tokens = models.PositiveIntegerField(
        "output limit (max_tokens)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="The largest max_tokens a request may ask for: more is a 400 before any "
        "upstream call. Empty: no limit. Shown as max_tokens in /v1/models.",
    )
    routing = models.CharField(
        max_length=16,
        choices=Routing.choices,
        default=Routing.WEIGHTED,
        help_text="How routes of the same priority are ordered.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ModelAlias(models.Model):
    """Another id clients may send for a model: an exact alias (`claude-sonnet-4-5-20250929`)
    or a pattern where `*` matches any run of characters (`claude-sonnet-*`).

    Resolution order and the checks: providers/aliases.py."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(
        max_length=128,
        unique=True,
        help_text="An id clients send, or a pattern with * (e.g. claude-*-opus-*).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "model aliases"

    def __str__(self) -> str:
        return f"{self.name} -> {self.model.name}"


class Route(models.Model):
    """One way to serve a model: a provider and the id the provider knows the model by."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="routes")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="routes")
    upstream_model = models.CharField(max_length=200)
    priority = models.IntegerField(default=1, help_text="Lower is tried first.")
    weight = models.PositiveIntegerField(default=1, help_text="Share within one priority.")
    alpha = models.BooleanField(
        default=False, help_text="Tried only when the request sets provider.include_alpha."
    )
    # What the provider charges us, per million tokens: used by `sort: price` routing.
    upstream_price_input = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True
    )
    upstream_price_output = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True
    )
    # The long-context variant: what serves an id with a `[1m]`-style suffix on this route.
    long_context_window = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Tokens of context this route serves for an id with a [1m]-style suffix "
        "(1000000 for [1m]). Empty: it serves no long-context request.",
    )
    long_context_upstream_model = models.CharField(
        max_length=200,
        blank=True,
        help_text="The upstream model for those requests; empty: the route's upstream model.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model__name", "priority", "-weight"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "provider", "upstream_model"], name="unique_route"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model.name} -> {self.provider.name}:{self.upstream_model}"
