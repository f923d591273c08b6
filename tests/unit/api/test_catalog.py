"""`/v1/models` pagination and model objects, without a server."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.errors import InvalidRequest
from gateway.api.catalog import model_json, page
from providers.routing import ModelEntry, Prices

ZERO = Decimal(0)


def entry(name: str, aliases: tuple[str, ...] = ()) -> ModelEntry:
    return ModelEntry(
        id=1,
        name=name,
        display_name=name,
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        max_tokens=None,
        prices=Prices(ZERO, ZERO, ZERO, ZERO),
        routes=(),
        aliases=aliases,
    )


MODELS = [entry(n) for n in ("a", "b", "c", "d", "e")]


def listed(**query) -> tuple[list[str], bool]:
    answer = page(MODELS, {k: [str(v)] for k, v in query.items()})
    ids = [m["id"] for m in answer["data"]]
    assert (answer["first_id"], answer["last_id"]) == ((ids[0], ids[-1]) if ids else (None, None))
    return ids, answer["has_more"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"limit": 2}, (["a", "b"], True)),
        ({"limit": 5}, (["a", "b", "c", "d", "e"], False)),
        ({"limit": 1000}, (["a", "b", "c", "d", "e"], False)),
        ({"after_id": "b", "limit": 2}, (["c", "d"], True)),
        ({"after_id": "c", "limit": 2}, (["d", "e"], False)),
        ({"after_id": "e"}, ([], False)),
        ({"after_id": "nowhere"}, ([], False)),
        ({"before_id": "e", "limit": 2}, (["c", "d"], True)),  # earlier models remain: a, b
        ({"before_id": "c", "limit": 2}, (["a", "b"], False)),
        ({"before_id": "c", "limit": 5}, (["a", "b"], False)),
        ({"before_id": "b", "limit": 1}, (["a"], False)),
        ({"before_id": "a"}, ([], False)),
        ({"before_id": "nowhere"}, ([], False)),
    ],
)
def test_has_more_is_reported_in_the_direction_asked(query, expected):
    assert listed(**query) == expected


def test_walking_backwards_with_before_id_visits_every_model_once():
    seen, cursor = [], "e"
    while True:
        ids, more = listed(before_id=cursor, limit=2)
        seen = ids + seen
        if not more:
            break
        cursor = ids[0]
    assert seen == ["a", "b", "c", "d"]


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "x", "1.5"])
def test_a_limit_outside_1_to_1000_is_a_400(limit):
    with pytest.raises(InvalidRequest):
        page(MODELS, {"limit": [limit]})


def test_a_models_aliases_are_listed_in_an_extra_field_only_when_it_has_some():
    assert "aliases" not in model_json(entry("a"))
    shown = model_json(entry("opus", ("claude-opus-*", "claude-opus-4-8")))
    assert shown["id"] == "opus" and shown["aliases"] == ["claude-opus-*", "claude-opus-4-8"]
