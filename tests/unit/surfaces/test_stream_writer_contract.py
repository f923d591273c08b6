"""Every surface's stream writer has what the consumer reads of it when a stream ends
(protocols/surface.py `StreamWriter`): a writer missing one crashed the end of every stream of
its surface, which then left no usage record and never settled its limits."""

from __future__ import annotations

import pytest

from core import ir
from gateway.api.routing import SURFACES
from protocols.surface import Ask, Decoded, StreamWriter, Surface

CONTRACT = [name for name in StreamWriter.__annotations__ if not name.startswith("_")]


def decoded() -> Decoded:
    request = ir.Request(
        model="m", max_tokens=10, messages=[ir.Message(role="user", content=[ir.Text("hi")])]
    )
    return Decoded(request=request, ask=Ask(model="m", stream=True))


@pytest.mark.parametrize("path", list(SURFACES))
def test_a_writer_has_every_attribute_of_the_contract_and_says_which_error_ended_it(path):
    surface = SURFACES[path]
    writer = surface.stream_writer(
        response_id=surface.new_id(), model="m", input_estimate=3, decoded=decoded()
    )
    assert [name for name in CONTRACT if not hasattr(writer, name)] == []
    assert writer.error_type is None
    writer.feed(ir.StreamStart(usage=ir.Usage(input_tokens=3)))
    writer.error("overloaded_error", "upstream overloaded")
    assert writer.finished and writer.error_type == "overloaded_error"


@pytest.mark.parametrize("path", list(SURFACES))
def test_a_surface_has_every_member_of_the_contract(path):
    surface = SURFACES[path]
    members = [*Surface.__annotations__, *(n for n in vars(Surface) if not n.startswith("_"))]
    assert [name for name in members if not hasattr(surface, name)] == []
