"""The README's "Request fields by provider" table names every field `/v1/messages` knows, and
only those: the schema's fields, the API fields passed through untyped, the fields withheld."""

import re
from pathlib import Path

import msgspec
import pytest

from protocols.anthropic.schema import PASSTHROUGH_FIELDS, WITHHELD_FIELDS, MessagesBody
from protocols.surface import GATEWAY_FIELDS

README = Path(__file__).parents[2] / "README.md"
HEADING = "### Request fields by provider"
KINDS = ["Anthropic", "OpenAI Chat", "OpenAI Responses", "Gemini", "OpenAI-compatible", "demo"]
_FIRST_CODE = re.compile(r"`([^`]+)`")


def table() -> list[list[str]]:
    """The section's table rows (header included), as lists of cells."""
    text = README.read_text()
    assert HEADING in text, f"README has no {HEADING!r} section"
    section = text.split(HEADING, 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def named_fields() -> list[str]:
    """Each body row's field: the first code span of its first cell (`output_config.format`)."""
    names = []
    for row in table()[2:]:
        match = _FIRST_CODE.search(row[0])
        assert match, f"a row without a field name: {row[0]!r}"
        names.append(match.group(1))
    return names


def known_fields() -> set[str]:
    return (
        {field.name for field in msgspec.structs.fields(MessagesBody)}
        | PASSTHROUGH_FIELDS
        | set(WITHHELD_FIELDS)
    )


def root(name: str) -> str:
    return re.split(r"[.\[]", name, maxsplit=1)[0]


def test_the_table_has_one_column_per_provider_kind():
    header = table()[0]
    assert header == ["Field", *KINDS]
    assert all(len(row) == len(header) for row in table())


def test_every_field_the_gateway_knows_has_a_row():
    covered = {root(name) for name in named_fields()}
    missing = known_fields() - covered
    assert not missing, f"README's field table lacks: {sorted(missing)}"


def test_the_table_names_no_field_the_gateway_does_not_know():
    unknown = sorted(name for name in named_fields() if root(name) not in known_fields())
    assert not unknown, f"README's field table names unknown fields: {unknown}"


def test_no_field_has_two_rows():
    names = named_fields()
    assert len(names) == len(set(names))


@pytest.mark.parametrize("extra", sorted(GATEWAY_FIELDS))
def test_every_gateway_extra_is_in_the_table(extra: str):
    assert extra in named_fields()


def test_no_cell_is_left_empty():
    for row in table()[2:]:
        assert all(row), f"an empty cell in the row of {row[0]}"
