"""Tollgate settings: everything comes from the environment, with quick-start defaults.

Read top to bottom: core, data stores, the gateway's own knobs, then Django plumbing.
With nothing set, Tollgate runs on SQLite with in-process state (one process only);
production sets DATABASE_URL and REDIS_URL.
"""

import base64
import binascii
import hashlib
import os
import secrets
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent  # the checkout, or site-packages installed
# Where this instance keeps its files (.env, the SQLite database, var/, staticfiles): the
# checkout when run from one, otherwise TOLLGATE_HOME or the working directory (`pip install .`).
HOME_DIR = Path(
    os.environ.get("TOLLGATE_HOME")
    or (BASE_DIR if (BASE_DIR / "manage.py").exists() else Path.cwd())
).resolve()

env = environ.Env()
if (HOME_DIR / ".env").exists():
    environ.Env.read_env(HOME_DIR / ".env", overwrite=False)

# --- Core -------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
# Production is any run that is neither DEBUG nor the SQLite quick start, and the production
# server (`python -m gateway.server`) always: it refuses to start without its own secrets.
PRODUCTION = not DEBUG and (
    bool(env.str("DATABASE_URL", default="")) or env.bool("TOLLGATE_PRODUCTION", default=False)
)
QUICK_START_DIR = HOME_DIR / "var" / "quickstart"


def _required(name: str) -> None:
    raise environ.ImproperlyConfigured(
        f"{name} must be set: Tollgate refuses to run in production on development values "
        "(DEBUG is off and DATABASE_URL is set, or this is the production server). "
        "See README, Running in production."
    )


def _quick_start_secret() -> str:
    """A development SECRET_KEY generated once on this machine (never a public, shared value)."""
    path = QUICK_START_DIR / "secret_key"
    if not path.exists():
        QUICK_START_DIR.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process of this quick start wrote it first
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if PRODUCTION:
        _required("SECRET_KEY")
    SECRET_KEY = _quick_start_secret()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
# Origins (scheme://host[:port]) allowed to POST dashboard and admin forms, e.g. the public
# https:// address when Tollgate runs behind a proxy under another name.
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Served over HTTPS (directly or behind a TLS proxy): secure cookies and a redirect to https for
# the admin, dashboard and REST API. Off by default because the quick start and the tests speak
# plain HTTP on loopback; production sets it (README, Running in production).
HTTPS = env.bool("TOLLGATE_HTTPS", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# HSTS for subdomains and the browsers' preload list commit the operator's whole domain, not
# this service: set the two above when the domain qualifies, no deployment warning otherwise.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
if env.bool("TOLLGATE_TRUST_X_FORWARDED_PROTO", default=False):
    # Only behind a proxy that sets X-Forwarded-Proto itself (and strips the client's).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True

# --- Data stores ------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{HOME_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

# Empty REDIS_URL = single-process quick start: shared state lives in process memory.
REDIS_URL = env.str("REDIS_URL", default="")


def _fernet_keys(keys: list[str]) -> list[str]:
    for key in keys:
        try:
            if len(base64.urlsafe_b64decode(key.encode())) == 32:
                continue
        except (ValueError, binascii.Error):
            pass
        raise environ.ImproperlyConfigured(
            "TOLLGATE_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe "
            "base64 bytes; make one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`)"
        )
    return keys


def _derived_key(secret: str) -> str:
    digest = hashlib.sha256(("tollgate-fernet:" + secret).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


# Fernet keys, newest first; the first encrypts, all decrypt (rotation).
TOLLGATE_ENCRYPTION_KEYS = _fernet_keys(env.list("TOLLGATE_ENCRYPTION_KEYS", default=[]))
if not TOLLGATE_ENCRYPTION_KEYS:
    if PRODUCTION:
        _required("TOLLGATE_ENCRYPTION_KEYS")
    # Quick start: derived from its generated SECRET_KEY, so credentials are never stored in
    # clear; the key earlier releases derived from their public quick-start value still reads
    # what they stored.
    TOLLGATE_ENCRYPTION_KEYS = [
        _derived_key(SECRET_KEY),
        _derived_key("insecure-quick-start-key-set-SECRET_KEY-in-production"),
    ]


# --- Gateway ----------------------------------------------------------------------------------
def _at_least(name: str, default: float, minimum: float, kind: type = float) -> int | float:
    """A number from the environment; the server refuses to start on garbage or on too little."""
    raw = env.str(name, default="") or str(default)
    try:
        value = kind(raw)
    except ValueError:
        raise environ.ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if not value >= minimum or value == float("inf"):
        raise environ.ImproperlyConfigured(f"{name} must be at least {minimum}, not {raw!r}")
    return value


TOLLGATE = {
    # Largest accepted request body (Anthropic's own limit is 32 MB).
    "MAX_BODY_BYTES": env.int("TOLLGATE_MAX_BODY_BYTES", default=32 * 1024 * 1024),
    # What both servers enforce on a client connection (gateway/connection_guard.py): the
    # request head's size (431 past it) and the time it may take from the connection's opening
    # (or its first byte after a kept-alive response) (408); the longest pause inside a body,
    # after which it must also average BODY_MIN_RATE bytes a second (408); how long a client
    # may read nothing of a response before it is dropped; the idle keep-alive time; and how many
    # connections one process keeps waiting for a whole request before it drops the oldest.
    "MAX_HEADER_BYTES": _at_least("TOLLGATE_MAX_HEADER_BYTES", 64 * 1024, 4096, int),
    "HEADER_TIMEOUT_SECONDS": _at_least("TOLLGATE_HEADER_TIMEOUT_SECONDS", 10.0, 0.1),
    "BODY_TIMEOUT_SECONDS": _at_least("TOLLGATE_BODY_TIMEOUT_SECONDS", 30.0, 0.1),
    "BODY_MIN_RATE": _at_least("TOLLGATE_BODY_MIN_RATE", 4096, 1, int),
    "SEND_TIMEOUT_SECONDS": _at_least("TOLLGATE_SEND_TIMEOUT_SECONDS", 60.0, 0.1),
    "KEEPALIVE_TIMEOUT_SECONDS": _at_least("TOLLGATE_KEEPALIVE_TIMEOUT_SECONDS", 75.0, 0.1),
    "MAX_PENDING_CONNECTIONS": _at_least("TOLLGATE_MAX_PENDING_CONNECTIONS", 1000, 1, int),
    # How long a process trusts its cached view of a key; revocation is visible after this.
    "KEY_CACHE_SECONDS": env.float("TOLLGATE_KEY_CACHE_SECONDS", default=2.0),
    # Keys a process caches: at most this many known and as many unknown secret hashes.
    "KEY_CACHE_SIZE": _at_least("TOLLGATE_KEY_CACHE_SIZE", 10_000, 1, int),
    # Failed authentications one client address may make per minute before it gets 429.
    "AUTH_FAILURES_PER_MINUTE": _at_least("TOLLGATE_AUTH_FAILURES_PER_MINUTE", 30, 1, int),
    # Proxies in front of the gateway that append to X-Forwarded-For (0: trust no header).
    "TRUSTED_PROXIES": _at_least("TOLLGATE_TRUSTED_PROXIES", 0, 0, int),
    # How often a process checks whether the routing table changed.
    "ROUTES_CACHE_SECONDS": env.float("TOLLGATE_ROUTES_CACHE_SECONDS", default=1.0),
    # Keep-alive ping interval while an upstream stream is silent.
    "STREAM_PING_SECONDS": env.float("TOLLGATE_STREAM_PING_SECONDS", default=10.0),
    # Default upstream timeouts (seconds), overridable per provider.
    "CONNECT_TIMEOUT": env.float("TOLLGATE_CONNECT_TIMEOUT", default=10.0),
    "READ_TIMEOUT": env.float("TOLLGATE_READ_TIMEOUT", default=600.0),
    # Connection pool size per provider.
    "POOL_MAX_CONNECTIONS": env.int("TOLLGATE_POOL_MAX_CONNECTIONS", default=10000),
    "POOL_MAX_KEEPALIVE": env.int("TOLLGATE_POOL_MAX_KEEPALIVE", default=128),
    # Redis connections per process (requests wait for one when all are busy).
    "REDIS_MAX_CONNECTIONS": env.int("TOLLGATE_REDIS_MAX_CONNECTIONS", default=64),
    # How long a Redis connect or call may take before the gateway serves without Redis.
    "REDIS_TIMEOUT": env.float("TOLLGATE_REDIS_TIMEOUT", default=1.0),
    # Circuit breaker per route: consecutive failures that open it, and its cool-down.
    "BREAKER_FAILURES": env.int("TOLLGATE_BREAKER_FAILURES", default=5),
    "BREAKER_COOLDOWN": env.float("TOLLGATE_BREAKER_COOLDOWN", default=30.0),
    # Retries of the same route on a transient error, and the time they may spend in total
    # (backoff and honoured retry-after included) before moving on to the next route.
    "ROUTE_RETRIES": env.int("TOLLGATE_ROUTE_RETRIES", default=1),
    "RETRY_BUDGET_SECONDS": env.float("TOLLGATE_RETRY_BUDGET_SECONDS", default=8.0),
    # Usage records: buffered per process, written to the spool (fsync'd) and sent to Celery
    # every USAGE_FLUSH_SECONDS; spool files left by a failed send are retried in the background.
    # A sent file is kept until its records are in the database; those that have not landed
    # USAGE_RESEND_SECONDS after they were published, while later ones have, are sent again.
    "SPOOL_DIR": Path(env.str("TOLLGATE_SPOOL_DIR", default=str(HOME_DIR / "var" / "spool"))),
    "USAGE_FLUSH_SECONDS": env.float("TOLLGATE_USAGE_FLUSH_SECONDS", default=0.2),
    "USAGE_BATCH_SIZE": env.int("TOLLGATE_USAGE_BATCH_SIZE", default=500),
    "SPOOL_RETRY_SECONDS": env.float("TOLLGATE_SPOOL_RETRY_SECONDS", default=2.0),
    "USAGE_RESEND_SECONDS": env.float("TOLLGATE_USAGE_RESEND_SECONDS", default=60.0),
    # Raw usage records older than this many days are deleted by the beat-scheduled retention
    # task (0: kept for good); hourly roll-ups after HOURLY_USAGE_RETENTION_DAYS. Daily stay.
    "USAGE_RETENTION_DAYS": _at_least("TOLLGATE_USAGE_RETENTION_DAYS", 90, 0, int),
    "HOURLY_USAGE_RETENTION_DAYS": _at_least("TOLLGATE_HOURLY_USAGE_RETENTION_DAYS", 35, 0, int),
    # When set, /metrics answers only `Authorization: Bearer <token>` (Prometheus'
    # `authorization.credentials`); empty leaves it open for a scraper on a private network.
    "METRICS_TOKEN": env.str("TOLLGATE_METRICS_TOKEN", default=""),
}


def _billing(outcome: str, default: str) -> str:
    """What an outcome is billed: "generated" (the tokens used so far) or "none"."""
    value = env.str(f"TOLLGATE_BILLING_{outcome.upper()}", default=default)
    if value not in ("generated", "none"):
        raise environ.ImproperlyConfigured(
            f"TOLLGATE_BILLING_{outcome.upper()} must be 'generated' or 'none', not {value!r}"
        )
    return value


# The billing policy for the hard cases (README, "Billing policy"), applied the same way to
# streamed and non-streamed requests by gateway/usage/billing.py. Gateway-side rejections
# (authentication, validation, policy, limits) and count_tokens are never billed.
TOLLGATE_BILLING = {
    "client_disconnect": _billing("client_disconnect", "generated"),
    "upstream_error_after_first_byte": _billing("upstream_error_after_first_byte", "generated"),
    "upstream_error": _billing("upstream_error", "generated"),  # 5xx/timeout: usually nothing
    "upstream_client_error": _billing("upstream_client_error", "none"),  # upstream 4xx
    # Characters per output token, to estimate a reply whose usage never arrived.
    "chars_per_token": env.int("TOLLGATE_BILLING_CHARS_PER_TOKEN", default=4),
}


# Alerts (gateway/alerts/, README "Alerts"): budget thresholds, keys about to expire, a route's
# breaker opening, the usage pipeline falling behind; sent to webhooks and by email.
def _percentages(name: str, default: str) -> list[int]:
    raw = env.str(name, default=default)
    try:
        values = sorted({int(v) for v in raw.split(",") if v.strip()})
    except ValueError:
        raise environ.ImproperlyConfigured(f"{name} must be percentages like 50,80,100") from None
    if not values or not all(1 <= v <= 1000 for v in values):
        raise environ.ImproperlyConfigured(f"{name} must be percentages from 1 to 1000")
    return values


TOLLGATE_ALERTS = {
    # Tenant-configured webhooks may not call private, loopback or link-local addresses (SSRF)
    # unless this is set (a platform on a private network; the tests' local receiver).
    "ALLOW_PRIVATE_URLS": env.bool("TOLLGATE_ALERTS_ALLOW_PRIVATE_URLS", default=False),
    # Each webhook call: connect and total time allowed.
    "WEBHOOK_TIMEOUT_SECONDS": _at_least("TOLLGATE_ALERTS_WEBHOOK_TIMEOUT_SECONDS", 5.0, 0.1),
    # Attempts per delivery, the first retry's delay (doubled each time) and the longest delay
    # (kept under CELERY_VISIBILITY_TIMEOUT, or the broker would deliver a waiting retry twice).
    "MAX_ATTEMPTS": _at_least("TOLLGATE_ALERTS_MAX_ATTEMPTS", 6, 1, int),
    "RETRY_SECONDS": _at_least("TOLLGATE_ALERTS_RETRY_SECONDS", 30.0, 0.0),
    "RETRY_MAX_SECONDS": _at_least("TOLLGATE_ALERTS_RETRY_MAX_SECONDS", 300.0, 0.0),
    # Defaults a tenant's alert policy may change: budget percentages, days before a key expires.
    "BUDGET_THRESHOLDS": _percentages("TOLLGATE_ALERTS_BUDGET_THRESHOLDS", "50,80,100"),
    "KEY_EXPIRY_DAYS": _at_least("TOLLGATE_ALERTS_KEY_EXPIRY_DAYS", 7, 1, int),
    # The usage pipeline is behind when the Celery queue holds more batches than this, or the
    # oldest spool file the beat process can see is older than this many seconds.
    "BACKLOG_BATCHES": _at_least("TOLLGATE_ALERTS_BACKLOG_BATCHES", 1000, 1, int),
    "BACKLOG_SPOOL_SECONDS": _at_least("TOLLGATE_ALERTS_BACKLOG_SPOOL_SECONDS", 300.0, 1.0),
}
# Alert emails go through Django's email backend: EMAIL_URL as django-environ reads it
# (smtp+tls://user:password@host:587), the console by default (printed, not sent).
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="tollgate@localhost")

# --- Django plumbing --------------------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from the app (no CDN)
    "channels",
    "accounts",
    "providers",
    "gateway",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.audit.ActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "gateway.urls"
ASGI_APPLICATION = "gateway.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Serve admin/dashboard assets straight from the apps, so the quick start needs no collectstatic.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = env.str("STATIC_ROOT", default=str(HOME_DIR / "staticfiles"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "accounts.authentication.TenantKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only, both ways: no browsable HTML renderer. `Accept: text/html` alone is a 406 in
    # DRF's JSON shape; browsers' `*/*` gets JSON.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "gateway.rest.parsers.ClientJsonParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Services' errors (ServiceError, a model's ValidationError) answer 400, in one place.
    "EXCEPTION_HANDLER": "gateway.rest.input.exception_handler",
}
# The documentation UIs (/api/v1/docs, /api/v1/redoc) use the copies drf-spectacular-sidecar
# ships as static files: no page loads anything from a CDN.
SPECTACULAR_SETTINGS = {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge asking swagger.io's online validator about our schema.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# `json`: one JSON object per line (structlog), what log collectors read; `text`: the message
# alone. Production defaults to json, the quick start to text.
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "text")
if LOG_FORMAT not in ("json", "text"):
    raise environ.ImproperlyConfigured("LOG_FORMAT must be json or text")
# One line per finished /v1 request (tollgate.access): request id, tenant, key prefix, model,
# provider, status, timings, tokens, cost.
ACCESS_LOG = env.bool("TOLLGATE_ACCESS_LOG", default=True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(message)s"},
        "json": {"()": "gateway.logs.json_formatter"},
    },
    # Every line goes through the redaction rule: no configured credential value is ever logged.
    "filters": {"redact": {"()": "core.redaction.RedactingFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL and env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # An unacknowledged batch (its worker died) is delivered again after this many seconds.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=600),
    # Look for such batches every CELERY_UNACKED_RESTORE_INTERVAL seconds (kombu would
    # otherwise look only every tenth interval).
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": 1,
    # A publish to a broker that vanished must fail (and spool), not hang.
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
}
