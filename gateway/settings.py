"""Tollgate settings: everything comes from the environment, with quick-start defaults.

Read top to bottom: core, data stores, the gateway's own knobs, then Django plumbing.
With nothing set, Tollgate runs on SQLite with in-process state (one process only);
production sets DATABASE_URL and REDIS_URL.
"""

import base64
import hashlib
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Core -------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG and env.bool("TOLLGATE_REQUIRE_SECRET_KEY", default=False):
        raise environ.ImproperlyConfigured("SECRET_KEY must be set in production")
    # Quick start only: a fixed, public key. `make serve` refuses to start without a real one.
    SECRET_KEY = "insecure-quick-start-key-set-SECRET_KEY-in-production"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Data stores ------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

# Empty REDIS_URL = single-process quick start: shared state lives in process memory.
REDIS_URL = env.str("REDIS_URL", default="")

# Fernet keys, newest first; the first encrypts, all decrypt (rotation).
TOLLGATE_ENCRYPTION_KEYS = env.list("TOLLGATE_ENCRYPTION_KEYS", default=[])
if not TOLLGATE_ENCRYPTION_KEYS:
    # Quick start: derive one from SECRET_KEY so credentials are still never stored in clear.
    _derived = hashlib.sha256(("tollgate-fernet:" + SECRET_KEY).encode()).digest()
    TOLLGATE_ENCRYPTION_KEYS = [base64.urlsafe_b64encode(_derived).decode()]


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
    "SPOOL_DIR": Path(env.str("TOLLGATE_SPOOL_DIR", default=str(BASE_DIR / "var" / "spool"))),
    "USAGE_FLUSH_SECONDS": env.float("TOLLGATE_USAGE_FLUSH_SECONDS", default=0.2),
    "USAGE_BATCH_SIZE": env.int("TOLLGATE_USAGE_BATCH_SIZE", default=500),
    "SPOOL_RETRY_SECONDS": env.float("TOLLGATE_SPOOL_RETRY_SECONDS", default=2.0),
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
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "accounts.authentication.TenantKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
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
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    # A publish to a broker that vanished must fail (and spool), not hang.
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
}
