"""IR stream events -> Anthropic SSE: framing, dense indices, one open block at a time."""

import msgspec

from core import ir
from protocols.anthropic.stream import StreamWriter


def parse(data: bytes) -> list[tuple[str, dict]]:
    events = []
    for chunk in data.decode().split("\n\n"):
        if not chunk:
            continue
        name_line, data_line = chunk.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        payload = msgspec.json.decode(data_line[6:])
        assert payload["type"] == name_line[7:]  # the event line always names the JSON type
        events.append((name_line[7:], payload))
    return events


def run(events: list, **kw) -> list[tuple[str, dict]]:
    writer = StreamWriter(message_id="msg_x", model="claude-test", **kw)
    return parse(b"".join(writer.feed(e) for e in events))


def test_text_then_tool_calls_get_dense_sequential_blocks():
    usage = ir.Usage(input_tokens=44, output_tokens=22, cache_read_input_tokens=256)
    out = run(
        [
            ir.StreamStart(),
            ir.TextDelta(""),
            ir.TextDelta("On it."),
            ir.BlockStart(ir.ToolUse("call_1", "get_weather", {})),
            ir.ToolInputDelta('{"city":'),
            ir.ToolInputDelta('"Lima"}'),
            ir.BlockStart(ir.ToolUse("call_2", "get_time", {})),
            ir.StreamEnd("tool_use", usage),
        ]
    )
    names = [n for n, _ in out]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    starts = [p for n, p in out if n == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1, 2]
    assert starts[1]["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "get_weather",
        "input": {},
    }
    delta = out[-2][1]
    assert delta == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 44,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 256,
            "output_tokens": 22,
        },
    }


def test_message_start_carries_the_input_estimate_and_end_fills_it_when_unknown():
    out = run(
        [
            ir.StreamStart(),
            ir.TextDelta("hi"),
            ir.StreamEnd("end_turn", ir.Usage(output_tokens=1, estimated=True)),
        ],
        input_estimate=472,
    )
    start = out[0][1]["message"]
    assert start["usage"]["input_tokens"] == 472 and start["usage"]["output_tokens"] == 0
    assert start["content"] == [] and start["stop_reason"] is None
    assert out[-2][1]["usage"]["input_tokens"] == 472


def test_thinking_block_shell_and_signature():
    out = run(
        [
            ir.ThinkingDelta("let me see"),
            ir.SignatureDelta("sig"),
            ir.TextDelta("42"),
            ir.StreamEnd("end_turn", ir.Usage()),
        ]
    )
    shell = out[2][1]["content_block"]
    assert shell == {"type": "thinking", "thinking": "", "signature": ""}
    deltas = [p["delta"] for n, p in out if n == "content_block_delta"]
    assert deltas == [
        {"type": "thinking_delta", "thinking": "let me see"},
        {"type": "signature_delta", "signature": "sig"},
        {"type": "text_delta", "text": "42"},
    ]


def test_error_event_ends_the_stream_without_message_stop():
    out = run([ir.TextDelta("par"), ir.StreamError("overloaded_error", "Overloaded")])
    assert out[-1] == (
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    assert "message_stop" not in [n for n, _ in out]


def test_passthrough_rewrites_message_start_id_and_model_only():
    payload = {
        "type": "message_start",
        "message": {"id": "msg_up", "model": "claude-up", "container": None, "usage": {}},
    }
    writer = StreamWriter(message_id="msg_x", model="claude-test")
    data = writer.feed(ir.Passthrough(b"", "message_start", payload=payload))
    assert parse(data)[0][1]["message"] == {
        "id": "msg_x",
        "model": "claude-test",
        "container": None,
        "usage": {},
    }
    raw = b'event: content_block_start\ndata: {"type":"content_block_start"}\n\n'
    assert writer.feed(ir.Passthrough(raw, "content_block_start")) == raw
    assert writer.blocks == 1


def test_a_refusal_ends_with_its_stop_details_on_message_delta():
    details = ir.StopDetails(category="general_harms", explanation="blocked: SAFETY")
    out = run(
        [
            ir.StreamStart(),
            ir.TextDelta("Step one"),
            ir.StreamEnd("refusal", ir.Usage(output_tokens=2), stop_details=details),
        ]
    )
    delta = next(p for n, p in out if n == "message_delta")["delta"]
    assert delta == {
        "stop_reason": "refusal",
        "stop_sequence": None,
        "stop_details": {
            "type": "refusal",
            "category": "general_harms",
            "explanation": "blocked: SAFETY",
        },
    }


def test_other_stops_carry_no_stop_details():
    out = run([ir.StreamStart(), ir.TextDelta("Hi"), ir.StreamEnd("end_turn", ir.Usage())])
    delta = next(p for n, p in out if n == "message_delta")["delta"]
    assert delta == {"stop_reason": "end_turn", "stop_sequence": None}


def test_the_served_tier_is_in_the_final_usage():
    end = ir.StreamEnd("end_turn", ir.Usage(output_tokens=1), service_tier="standard")
    out = run([ir.StreamStart(), ir.TextDelta("Hi"), end])
    usage = next(p for n, p in out if n == "message_delta")["usage"]
    assert usage["service_tier"] == "standard"
    plain = run([ir.StreamStart(), ir.TextDelta("Hi"), ir.StreamEnd("end_turn", ir.Usage())])
    assert "service_tier" not in next(p for n, p in plain if n == "message_delta")["usage"]


def test_a_web_search_streams_as_anthropic_streams_it():
    call = ir.ServerToolUse(id="srvtoolu_1", name="web_search", input={})
    found = ir.WebSearchResult(
        tool_use_id="srvtoolu_1", results=[ir.SearchHit(url="https://a.test/", title="A")]
    )
    cited = ir.Citation(url="https://a.test/", title="A", cited_text="It is A.")
    usage = ir.Usage(output_tokens=9, web_search_requests=1)
    applied = [ir.AppliedEdit(type="clear_thinking_20251015", cleared_thinking_turns=2)]
    out = run(
        [
            ir.StreamStart(),
            ir.BlockStart(call),
            ir.ToolInputDelta('{"query":"a"}'),
            ir.BlockStart(found),
            ir.BlockStop(),
            ir.TextDelta("It is A."),
            ir.CitationDelta(cited),
            ir.StreamEnd("end_turn", usage, applied_edits=applied),
        ]
    )
    starts = [p["content_block"] for n, p in out if n == "content_block_start"]
    assert starts[0] == {
        "type": "server_tool_use",
        "id": "srvtoolu_1",
        "name": "web_search",
        "input": {},
    }
    assert starts[1]["type"] == "web_search_tool_result"
    assert starts[1]["content"][0]["url"] == "https://a.test/"
    assert starts[1]["content"][0]["encrypted_content"]  # opaque, never empty
    deltas = [(p["index"], p["delta"]) for n, p in out if n == "content_block_delta"]
    assert deltas[0] == (0, {"type": "input_json_delta", "partial_json": '{"query":"a"}'})
    assert deltas[2][0] == 2 and deltas[2][1]["type"] == "citations_delta"
    citation = deltas[2][1]["citation"]
    assert citation["type"] == "web_search_result_location"
    assert (citation["url"], citation["title"], citation["cited_text"]) == (
        "https://a.test/",
        "A",
        "It is A.",
    )
    end = next(p for n, p in out if n == "message_delta")
    assert end["usage"]["server_tool_use"] == {"web_search_requests": 1}
    assert end["context_management"] == {
        "applied_edits": [
            {
                "type": "clear_thinking_20251015",
                "cleared_thinking_turns": 2,
                "cleared_input_tokens": 0,
            }
        ]
    }


def test_a_citation_without_an_open_text_block_is_not_sent():
    cited = ir.Citation(url="https://a.test/", cited_text="x")
    out = run([ir.StreamStart(), ir.CitationDelta(cited), ir.StreamEnd("end_turn", ir.Usage())])
    assert [n for n, _ in out if n == "content_block_delta"] == []


def test_a_web_fetch_streams_as_anthropic_streams_it():
    call = ir.ServerToolUse(id="srvtoolu_1", name="web_fetch", input={})
    fetched = ir.WebFetchResult(tool_use_id="srvtoolu_1", url="https://a.test/")
    failed = ir.WebFetchResult(
        tool_use_id="srvtoolu_2", url="https://b.test/", error_code="url_not_accessible"
    )
    usage = ir.Usage(output_tokens=3, web_fetch_requests=2)
    out = run(
        [
            ir.StreamStart(),
            ir.TextDelta("Read."),
            ir.BlockStart(call),
            ir.ToolInputDelta('{"url":"https://a.test/"}'),
            ir.BlockStart(fetched),
            ir.BlockStop(),
            ir.BlockStart(failed),
            ir.BlockStop(),
            ir.StreamEnd("end_turn", usage),
        ]
    )
    starts = [p["content_block"] for n, p in out if n == "content_block_start"]
    assert starts[1] == {
        "type": "server_tool_use",
        "id": "srvtoolu_1",
        "name": "web_fetch",
        "input": {},
    }
    source = {"type": "text", "media_type": "text/plain", "data": ""}
    assert starts[2] == {
        "type": "web_fetch_tool_result",
        "tool_use_id": "srvtoolu_1",
        "content": {
            "type": "web_fetch_result",
            "url": "https://a.test/",
            "content": {"type": "document", "source": source, "title": None},
            "retrieved_at": None,
        },
    }
    assert starts[3]["content"] == {
        "type": "web_fetch_tool_result_error",
        "error_code": "url_not_accessible",
    }
    stops = [p["index"] for n, p in out if n == "content_block_stop"]
    assert stops == [0, 1, 2, 3]
    end = next(p for n, p in out if n == "message_delta")
    assert end["usage"]["server_tool_use"] == {"web_fetch_requests": 2}
