"""Exact stop sequences on translated routes (reference 5.9.3).

Native stops cannot say which sequence matched, and the Responses API has none, so for routes
that do not speak the client's surface the gateway matches them itself: the sequences are not
sent upstream; the generated text (outside thinking and tool input) is scanned for the earliest
occurrence; the text is cut before it, `stop_reason` becomes `stop_sequence` with the matched
string, and a stream stops reading from the upstream at once. While streaming, the last
`len(longest) - 1` characters of text are held back until more arrive, so a sequence split
across deltas is still caught.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from core import ir
from core.tokens import estimate_output_tokens


def earliest(text: str, sequences: list[str]) -> tuple[int, str] | None:
    """Position and value of the first stop sequence in `text` (longest wins a tie)."""
    best: tuple[int, str] | None = None
    for sequence in sequences:
        at = text.find(sequence)
        if at >= 0 and (
            best is None or at < best[0] or (at == best[0] and len(sequence) > len(best[1]))
        ):
            best = (at, sequence)
    return best


def cut_response(response: ir.Response, sequences: list[str]) -> ir.Response:
    """Non-streaming: cut the content at the first stop sequence found in its text."""
    for i, part in enumerate(response.content):
        if not isinstance(part, ir.Text):
            continue
        found = earliest(part.text, sequences)
        if found is None:
            continue
        at, sequence = found
        kept = response.content[:i] + ([ir.Text(part.text[:at])] if at else [])
        response.content = kept
        response.stop_reason = "stop_sequence"
        response.stop_sequence = sequence
        response.stop_details = None  # a refusal's details no longer apply
        return response
    return response


async def cut_stream(
    events: AsyncGenerator[ir.StreamEvent, None], sequences: list[str], input_estimate: int
) -> AsyncIterator[ir.StreamEvent]:
    """Streaming: text deltas pass through minus a held-back tail; a match ends the stream."""
    try:
        async for event in _cut(events, sequences, input_estimate):
            yield event
    finally:
        await events.aclose()  # on a match this is what cancels the upstream request


async def _cut(
    events: AsyncIterator[ir.StreamEvent], sequences: list[str], input_estimate: int
) -> AsyncIterator[ir.StreamEvent]:
    hold = max(len(s) for s in sequences) - 1
    pending = ""  # text of the open text block not yet sent
    sent_chars = 0
    async for event in events:
        if isinstance(event, ir.TextDelta):
            pending += event.text
            found = earliest(pending, sequences)
            if found is not None:
                at, sequence = found
                if at:
                    yield ir.TextDelta(pending[:at])
                sent_chars += at
                usage = ir.Usage(
                    input_tokens=input_estimate,
                    output_tokens=estimate_output_tokens(sent_chars),
                    estimated=True,
                )
                yield ir.StreamEnd("stop_sequence", usage, stop_sequence=sequence)
                return
            if len(pending) > hold:
                cut = len(pending) - hold
                yield ir.TextDelta(pending[:cut])
                sent_chars += cut
                pending = pending[cut:]
            continue
        if pending and not isinstance(event, ir.TextDelta):
            yield ir.TextDelta(pending)  # the text block ends: nothing more can complete a match
            sent_chars += len(pending)
            pending = ""
        yield event
