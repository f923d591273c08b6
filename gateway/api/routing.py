"""ASGI routing: the `/v1` API to its consumers, the rest to Django's application."""

from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path, re_path

from gateway.api.catalog import CountTokensConsumer, ModelsConsumer, OpenAPIConsumer
from gateway.api.health import HealthConsumer, ReadyConsumer
from gateway.api.http import NotFoundConsumer
from gateway.api.metrics_endpoint import MetricsConsumer
from gateway.api.surface import SurfaceConsumer
from protocols.anthropic.surface import SURFACE as ANTHROPIC
from protocols.openai_chat.surface import SURFACE as OPENAI_CHAT
from protocols.openai_responses.surface import SURFACE as OPENAI_RESPONSES

# Client surfaces: path -> the protocol its clients speak (protocols/<name>/surface.py).
SURFACES = {
    "v1/messages": ANTHROPIC,
    "v1/chat/completions": OPENAI_CHAT,
    "v1/responses": OPENAI_RESPONSES,
}


def application(django_application) -> ProtocolTypeRouter:
    """The ASGI application: `django_application` serves what no `/v1` consumer does."""
    return ProtocolTypeRouter(
        {
            "http": URLRouter(
                [
                    *(
                        path(route, SurfaceConsumer.for_surface(surface).as_asgi())
                        for route, surface in SURFACES.items()
                    ),
                    path("v1/messages/count_tokens", CountTokensConsumer.as_asgi()),
                    path("v1/models", ModelsConsumer.as_asgi()),
                    path("v1/openapi.json", OpenAPIConsumer.as_asgi()),
                    path("v1/models/<str:model_id>", ModelsConsumer.as_asgi()),
                    re_path(r"^v1/", NotFoundConsumer.as_asgi()),
                    path("healthz", HealthConsumer.as_asgi()),
                    path("readyz", ReadyConsumer.as_asgi()),
                    path("metrics", MetricsConsumer.as_asgi()),
                    re_path(r"", django_application),
                ]
            ),
        }
    )
