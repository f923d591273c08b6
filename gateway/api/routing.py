"""ASGI routing: the `/v1` API to its consumers, the rest to Django."""

from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path, re_path

from gateway.api.catalog import CountTokensConsumer, ModelsConsumer, OpenAPIConsumer
from gateway.api.health import HealthConsumer, ReadyConsumer
from gateway.api.http import NotFoundConsumer
from gateway.api.messages import MessagesConsumer
from gateway.api.metrics_endpoint import MetricsConsumer
from gateway.asgi import django_application

application = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                path("v1/messages", MessagesConsumer.as_asgi()),
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
