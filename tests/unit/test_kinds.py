"""The provider kinds table (providers/kinds.py) is what every reader of a kind goes by."""

import re
from pathlib import Path

import pytest

from providers import kinds
from providers.kinds import KINDS
from providers.models import Provider
from providers.registry import adapter_for

README = Path(__file__).parents[2] / "README.md"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_s_adapter_and_protocol_come_from_the_table(kind):
    adapter = adapter_for(kind)
    assert adapter.kind == kind
    assert adapter.protocol == KINDS[kind].protocol


def test_the_kind_field_takes_its_choices_from_the_table_so_a_new_kind_needs_no_migration():
    field = Provider._meta.get_field("kind")
    assert field.deconstruct()[3]["choices"] is kinds.choices  # migrations name the callable
    assert [value for value, _ in field.choices] == list(KINDS)


def test_an_unknown_kind_is_refused_by_the_model():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="kind"):
        Provider(name="x", kind="carrier-pigeon").clean_fields()


def test_only_anthropic_is_passed_through_to_anthropic_clients():
    assert [k for k in KINDS if adapter_for(k).protocol == "anthropic"] == ["anthropic"]


def test_the_readme_names_every_provider_kind_and_no_other():
    sentence = re.search(r"^Provider kinds: (.*?)\.\n", README.read_text(), re.S | re.M)[1]
    named = re.findall(r"`([a-z_]+)`", sentence)
    assert sorted(named) == sorted(KINDS)
