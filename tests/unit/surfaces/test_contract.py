"""Every client surface and its stream writer have what the consumer reads of them
(protocols/surface.py), so a missing attribute fails here, not at the end of a live stream."""

import msgspec
import pytest

from core import client_json
from protocols.anthropic.surface import SURFACE as ANTHROPIC
from protocols.openai_chat.surface import SURFACE as OPENAI_CHAT
from protocols.openai_responses.surface import SURFACE as OPENAI_RESPONSES
from protocols.surface import StreamWriter, Surface

BODIES = {
    "anthropic": {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
    "openai_chat": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    "openai_responses": {"model": "m", "input": "hi"},
}


@pytest.mark.parametrize("surface", [ANTHROPIC, OPENAI_CHAT, OPENAI_RESPONSES], ids=str)
def test_a_surface_and_its_writer_have_every_member_of_the_contract(surface):
    for name in ("name", "endpoint", *vars(Surface)):
        if not name.startswith("_"):
            assert hasattr(surface, name), name
    raw = msgspec.json.encode(BODIES[surface.name])
    decoded = surface.decode(raw, client_json.decode_object(raw), {})
    writer = surface.stream_writer(
        response_id=surface.new_id(), model="m", input_estimate=3, decoded=decoded
    )
    members = set(StreamWriter.__annotations__) | {
        n for n in vars(StreamWriter) if not n.startswith("_")
    }
    for name in members:
        assert hasattr(writer, name), name
    assert (writer.finished, writer.error_type, writer.stop_reason) == (False, None, None)
