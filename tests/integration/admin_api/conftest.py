"""Standing callers of the admin REST API tests: a platform token, a tenant token for acme and
one for globex (the outsider), beside the dashboard people (tests/integration/conftest.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from accounts.models import ServiceToken
from accounts.service_tokens import service_token_create

TOKEN = re.compile(r"tgs_[A-Za-z0-9]{40}")
BASE = "/api/v1/admin"


@dataclass
class Tokens:
    platform: ServiceToken
    acme: ServiceToken
    globex: ServiceToken
    secrets: dict[str, str]  # "platform", "acme", "globex" -> secret


@pytest.fixture
def tokens(people) -> Tokens:
    made = {
        "platform": service_token_create(name="terraform"),
        "acme": service_token_create(name="acme-ci", tenant=people.tenant),
        "globex": service_token_create(name="globex-ci", tenant=people.other),
    }
    return Tokens(
        platform=made["platform"][0],
        acme=made["acme"][0],
        globex=made["globex"][0],
        secrets={name: secret for name, (_, secret) in made.items()},
    )


def bearer(secret: str, **defaults) -> APIClient:
    """A client sending this token (`defaults`: e.g. REMOTE_ADDR)."""
    api = APIClient(**defaults)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api


def session(user) -> APIClient:
    api = APIClient()
    api.force_login(user)
    return api


@pytest.fixture
def platform(tokens) -> APIClient:
    return bearer(tokens.secrets["platform"])


@pytest.fixture
def acme(tokens) -> APIClient:
    return bearer(tokens.secrets["acme"])


@pytest.fixture
def globex(tokens) -> APIClient:
    return bearer(tokens.secrets["globex"])
