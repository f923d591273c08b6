"""Gateway-side stop sequences: which one matched, and nothing after it."""

from core import ir
from gateway.stops import cut_response, cut_stream, earliest


def test_earliest_match_wins_and_longest_breaks_a_tie():
    assert earliest("a END b STOP", ["STOP", "END"]) == (2, "END")
    assert earliest("xx ENDING", ["END", "ENDING"]) == (3, "ENDING")
    assert earliest("nothing here", ["END"]) is None


def test_response_is_cut_before_the_sequence_and_later_blocks_dropped():
    response = ir.Response(
        content=[ir.Text("The answer is 42.\nEND and more"), ir.ToolUse("t1", "f", {})],
        stop_reason="tool_use",
        usage=ir.Usage(output_tokens=9),
    )
    cut_response(response, ["END"])
    assert response.content == [ir.Text("The answer is 42.\n")]
    assert (response.stop_reason, response.stop_sequence) == ("stop_sequence", "END")


def test_a_refusal_cut_at_a_stop_sequence_loses_its_stop_details():
    response = ir.Response(
        content=[ir.Text("I won't END that")],
        stop_reason="refusal",
        usage=ir.Usage(),
        stop_details=ir.StopDetails(explanation="I won't END that"),
    )
    cut_response(response, ["END"])
    assert (response.stop_reason, response.stop_details) == ("stop_sequence", None)


def test_response_without_a_match_is_unchanged():
    response = ir.Response(content=[ir.Text("fine")], stop_reason="end_turn", usage=ir.Usage())
    cut_response(response, ["END"])
    assert response.stop_reason == "end_turn" and response.stop_sequence is None


async def _events(items, closed: list):
    try:
        for item in items:
            yield item
    finally:
        closed.append(True)


async def test_stream_catches_a_sequence_split_across_deltas_and_closes_upstream():
    closed: list = []
    deltas = [
        ir.StreamStart(),
        ir.TextDelta("The answer is 42. E"),
        ir.TextDelta("N"),
        ir.TextDelta("D and then more"),
        ir.TextDelta(" never sent"),
        ir.StreamEnd("end_turn", ir.Usage()),
    ]
    out = [e async for e in cut_stream(_events(deltas, closed), ["END"], input_estimate=7)]
    text = "".join(e.text for e in out if isinstance(e, ir.TextDelta))
    assert text == "The answer is 42. "
    end = out[-1]
    assert isinstance(end, ir.StreamEnd) and end.stop_reason == "stop_sequence"
    assert end.stop_sequence == "END" and end.usage.input_tokens == 7 and end.usage.estimated
    assert closed == [True]


async def test_stream_without_a_match_sends_every_character():
    closed: list = []
    deltas = [
        ir.TextDelta("abc"),
        ir.TextDelta("def"),
        ir.BlockStart(ir.ToolUse("t", "f", {})),
        ir.StreamEnd("tool_use", ir.Usage()),
    ]
    out = [e async for e in cut_stream(_events(deltas, closed), ["STOP"], input_estimate=0)]
    assert "".join(e.text for e in out if isinstance(e, ir.TextDelta)) == "abcdef"
    assert isinstance(out[-1], ir.StreamEnd) and out[-1].stop_reason == "tool_use"
