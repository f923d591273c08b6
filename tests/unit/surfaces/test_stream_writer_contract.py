"""Every client surface's stream writer keeps the contract the one consumer reads after each
stream (protocols/surface.py's `StreamWriter`): a missing attribute raised in
gateway/api/surface.py's `account`, so the request left no usage record and the connection
was reset."""

import json
from typing import get_type_hints

import pytest

from protocols.anthropic.surface import SURFACE as ANTHROPIC
from protocols.openai_chat.surface import SURFACE as CHAT
from protocols.openai_responses.surface import SURFACE as RESPONSES
from protocols.surface import StreamWriter

BODIES = {
    ANTHROPIC: {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
    CHAT: {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    RESPONSES: {"model": "m", "stream": True, "input": "hi"},
}


def writer(surface) -> StreamWriter:
    wire = BODIES[surface]
    decoded = surface.decode(json.dumps(wire).encode(), wire, {})
    return surface.stream_writer(response_id="r", model="m", input_estimate=3, decoded=decoded)


@pytest.mark.parametrize("surface", BODIES, ids=lambda s: s.name)
def test_stream_writer_has_every_attribute_of_the_contract(surface):
    w = writer(surface)
    missing = [name for name in get_type_hints(StreamWriter) if not hasattr(w, name)]
    assert missing == []
    assert w.error_type is None and not w.finished


@pytest.mark.parametrize("surface", BODIES, ids=lambda s: s.name)
def test_stream_writer_error_names_its_type_for_the_usage_record(surface):
    w = writer(surface)
    assert w.error("overloaded_error", "upstream overloaded")
    assert w.finished and w.error_type == "overloaded_error"
