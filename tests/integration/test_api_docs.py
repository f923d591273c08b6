"""The API documentation UIs load everything from this server: no CDN, no font service."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


@pytest.mark.parametrize("page", ["/api/v1/docs", "/api/v1/redoc"])
def test_the_docs_page_loads_and_references_only_local_files(page):
    client = Client()

    response = client.get(page)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Tollgate REST API" in html
    assets = ASSET.findall(html)
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        assert client.get(asset).status_code == 200, asset  # served by the app (whitenoise)
    assert "https://" not in html and "http://" not in html.replace("http://testserver", "")


def test_the_swagger_page_points_at_our_schema():
    html = Client().get("/api/v1/docs").content.decode()

    assert '"/api/v1/schema"' in html
    assert '"validatorUrl": null' in html


def test_the_schema_documents_the_admin_api_and_its_service_tokens():
    document = Client().get("/api/v1/schema", {"format": "json"}).json()

    assert {
        "/api/v1/admin/tenants",
        "/api/v1/admin/tenants/{tenant}/members",
        "/api/v1/admin/tenants/{tenant}/keys/{key_id}/rotate",
        "/api/v1/admin/providers/{ref}",
        "/api/v1/admin/models/{ref}",
        "/api/v1/admin/routes",
        "/api/v1/admin/aliases",
    } <= set(document["paths"])
    token = document["components"]["securitySchemes"]["serviceToken"]
    assert (token["type"], token["scheme"]) == ("http", "bearer")
    provider = document["components"]["schemas"]["AdminProvider"]["properties"]
    assert "credential" not in provider and "extra_headers" not in provider
    assert provider["credential_set"]["type"] == "boolean"
