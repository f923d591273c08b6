"""ASGI entry point: `/v1/*` goes to the gateway's async consumers, everything else to Django."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

from django.core.asgi import get_asgi_application

django_application = get_asgi_application()

from gateway.api import routing  # noqa: E402
from gateway.warmup import warm_up  # noqa: E402

application = routing.application(django_application)
warm_up()

__all__ = ["application", "django_application"]
