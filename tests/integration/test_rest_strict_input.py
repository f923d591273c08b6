"""Every REST write accepts only the fields it declares: unknown ones are a 400, never ignored."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_api(people) -> APIClient:
    api = APIClient()
    api.force_login(people.owner)
    return api


def test_an_unknown_field_on_key_creation_is_400_and_creates_nothing(owner_api, people):
    before = ApiKey.objects.count()

    response = owner_api.post("/api/v1/keys", {"name": "ci", "rpn": 10}, format="json")

    assert response.status_code == 400
    assert response.json() == {"rpn": ["Unknown field."]}
    assert ApiKey.objects.count() == before


def test_key_creation_honours_its_limits(owner_api, people):
    response = owner_api.post(
        "/api/v1/keys",
        {"name": "ci", "rpm": 10, "tpm": 5000, "budget_usd": "12.50", "budget_period": "daily"},
        format="json",
    )

    assert response.status_code == 201
    key = ApiKey.objects.get(pk=response.json()["id"])
    assert (key.rpm, key.tpm, key.budget_usd, key.budget_period) == (
        10,
        5000,
        Decimal("12.50"),
        "daily",
    )
    assert response.json()["rpm"] == 10


@pytest.mark.parametrize(
    "body",
    [
        {"rpm": 0},
        {"rpm": 10**30},
        {"budget_usd": "1e400"},
        {"budget_usd": "99999999999999"},
        {"budget_period": "weekly"},
        {"models": "claude-x"},
        {"name": "x" * 101},
        {"expires_in_days": 0},
    ],
)
def test_bad_key_values_are_400(owner_api, people, body):
    before = ApiKey.objects.count()

    response = owner_api.post("/api/v1/keys", body, format="json")

    assert response.status_code == 400, response.content
    assert set(response.json()) == set(body)
    assert ApiKey.objects.count() == before


def test_a_json_array_body_is_400(owner_api):
    response = owner_api.post("/api/v1/keys", [1, 2], format="json")

    assert response.status_code == 400


def test_the_debug_flag_is_not_a_tenant_setting(owner_api):
    response = owner_api.post("/api/v1/keys", {"allow_debug": True}, format="json")

    assert response.status_code == 400 and "allow_debug" in response.json()
    assert not ApiKey.objects.filter(allow_debug=True).exists()


def test_revoke_with_a_body_is_400_and_leaves_the_key_alone(owner_api, people):
    response = owner_api.post(f"/api/v1/keys/{people.key.pk}/revoke", {"grace": 10}, format="json")

    assert response.status_code == 400
    assert "grace" in response.json()
    people.key.refresh_from_db()
    assert people.key.revoked_at is None
