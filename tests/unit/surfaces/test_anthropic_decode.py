"""Anthropic request JSON -> IR, and Anthropic's validation errors."""

import random
import re

import msgspec
import pytest

from core import ir
from core.errors import InvalidRequest
from protocols.anthropic.decode import (
    decode_count_tokens,
    decode_messages,
    is_base64,
    long_cache_ttls,
    to_ir,
    unknown_fields,
    withheld_fields,
)


def decode(body: dict, beta=None) -> ir.Request:
    return to_ir(decode_messages(msgspec.json.encode(body)), beta=beta)


def base(**extra) -> dict:
    return {
        "model": "m",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }


def error_of(body) -> str:
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    with pytest.raises(InvalidRequest) as caught:
        to_ir(decode_messages(raw))
    return caught.value.message


def test_string_content_becomes_one_text_part():
    request = decode(base(system="be terse"))
    assert request.system == [ir.Text("be terse")]
    assert request.messages == [ir.Message("user", [ir.Text("hi")])]


def test_consecutive_same_role_turns_are_merged():
    request = decode(
        base(
            messages=[
                {"role": "user", "content": "a"},
                {"role": "user", "content": [{"type": "text", "text": "b"}]},
            ]
        )
    )
    assert request.messages == [ir.Message("user", [ir.Text("a"), ir.Text("b")])]


def test_missing_field_is_named():
    assert error_of({"model": "m", "messages": [{"role": "user", "content": "x"}]}) == (
        "max_tokens: Field required"
    )


def test_nested_missing_field_is_named_with_its_path():
    body = base(messages=[{"content": "x"}])
    assert error_of(body) == "messages.0.role: Field required"


def test_wrong_type_names_the_field():
    assert error_of(base(max_tokens="lots")).startswith("max_tokens: Expected `int`")


def test_malformed_json_is_invalid_request():
    assert error_of(b'{"model": ').startswith("Request body is not valid JSON")


def test_temperature_outside_zero_to_one_is_refused():
    assert error_of(base(temperature=1.5)).startswith("temperature:")


def test_empty_messages_are_refused():
    assert error_of(base(messages=[])).startswith("messages:")


def test_empty_text_block_is_refused_with_anthropic_wording():
    body = base(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}])
    assert error_of(body) == "messages.0.content.0.text: text content blocks must be non-empty"


def test_tool_use_id_must_match_pattern():
    body = base(
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "bad id", "name": "t", "input": {}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "bad id"}]},
        ]
    )
    assert "messages.1.content.0.tool_use.id" in error_of(body)


def test_tool_use_without_result_in_next_message_is_refused():
    body = base(
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "t", "input": {}}],
            },
            {"role": "user", "content": "never mind"},
        ]
    )
    assert "tool_use` ids were found without `tool_result` blocks immediately after: t1" in (
        error_of(body)
    )


def test_tool_round_trip_decodes_every_part():
    body = base(
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"c": "Lima"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "down"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": "AA==",
                                },
                            },
                        ],
                    },
                    {"type": "text", "text": "and now?"},
                ],
            },
        ]
    )
    request = decode(body)
    assistant, user = request.messages[1], request.messages[2]
    assert assistant.content == [
        ir.Thinking("hmm", "sig"),
        ir.ToolUse("toolu_1", "get_weather", {"c": "Lima"}),
    ]
    assert user.content[0] == ir.ToolResult(
        "toolu_1", [ir.Text("down"), ir.Image(media_type="image/png", data="AA==")], True
    )


def test_server_tools_and_unknown_blocks_are_noted_as_unportable():
    body = base(
        tools=[{"type": "computer_20250124", "name": "computer"}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "container_upload", "file_id": "f"},
                    {"type": "text", "text": "x"},
                ],
            }
        ],
    )
    request = decode(body)
    assert request.tools == []
    assert request.unportable == [
        "messages.0.content.0 (`container_upload` block)",
        "tools.0 (server tool `computer_20250124`)",
    ]


def test_tool_choice_must_name_a_declared_tool():
    tools = [{"name": "a", "input_schema": {"type": "object"}}]
    assert "no tool named `b`" in error_of(
        base(tools=tools, tool_choice={"type": "tool", "name": "b"})
    )


def test_thinking_budget_rules():
    assert "budget_tokens" in error_of(base(thinking={"type": "enabled", "budget_tokens": 10}))
    assert error_of(base(max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 4000})) == (
        "max_tokens: must be greater than thinking.budget_tokens"
    )
    request = decode(
        base(max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 4000}),
        beta=["interleaved-thinking-2025-05-14"],
    )
    assert request.reasoning == ir.Reasoning(budget_tokens=4000, effort="low")
    request = decode(base(max_tokens=9000, thinking={"type": "enabled", "budget_tokens": 8000}))
    assert request.reasoning.effort == "medium"


def test_gateway_reasoning_field_maps_to_reasoning():
    request = decode(base(reasoning={"effort": "high"}))
    assert request.reasoning == ir.Reasoning(effort="high", asked_by="reasoning")
    assert decode(base(reasoning={"effort": "none"})).reasoning is None


def test_unknown_top_level_fields_are_accepted():
    request = decode(base(context_management={"edits": []}, betas_unknown=1))
    assert request.model == "m"


def test_system_turns_mid_conversation_fold_into_the_system_prompt():
    request = decode(
        base(
            system="first",
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "system", "content": [{"type": "text", "text": "reminder"}]},
                {"role": "user", "content": "again"},
            ],
        )
    )
    assert request.system == [ir.Text("first"), ir.Text("reminder")]
    assert request.messages == [ir.Message("user", [ir.Text("hi"), ir.Text("again")])]


# --- Strict where laxness costs the platform: refused before any upstream call ---------------


def user_blocks(*blocks) -> dict:
    return base(messages=[{"role": "user", "content": list(blocks)}])


def image(media_type="image/png", data="iVBORw0KGgo=") -> dict:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def pdf(media_type="application/pdf", data="JVBERi0xLjQK") -> dict:
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }


@pytest.mark.parametrize("value", [0, -1])
def test_max_tokens_below_one_is_refused_in_anthropic_words(value):
    assert error_of(base(max_tokens=value)) == (
        "max_tokens: Input should be greater than or equal to 1"
    )


def test_a_bound_on_a_float_is_worded_like_anthropics():
    assert error_of(base(temperature=1.5)) == "temperature: Input should be less than or equal to 1"


@pytest.mark.parametrize("media_type", ["image/jpeg", "image/png", "image/gif", "image/webp"])
def test_documented_image_media_types_are_accepted(media_type):
    (part,) = decode(user_blocks(image(media_type))).messages[0].content
    assert part == ir.Image(media_type=media_type, data="iVBORw0KGgo=")


@pytest.mark.parametrize("media_type", ["image/jpg", "image/svg+xml", "text/html", "", 5])
def test_other_image_media_types_are_refused_naming_the_documented_ones(media_type):
    assert error_of(user_blocks(image(media_type))) == (
        "messages.0.content.0.image.source.base64.media_type: "
        "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
    )


def test_an_image_without_a_media_type_is_refused():
    block = image()
    del block["source"]["media_type"]
    assert error_of(user_blocks(block)) == (
        "messages.0.content.0.image.source.base64.media_type: Field required"
    )


@pytest.mark.parametrize(
    "data",
    [
        "not base64!",
        "iVBORw0KGgo",  # unpadded
        "iVBO Rw0K",
        "iVBORw0K\nGgo=",
        "iVBO=w0KGgo=",  # padding inside
        "iVBORw0KGg===",
        "iVBORw0KGgé=",
        "aVZC====",  # padding for a whole group
    ],
)
def test_invalid_base64_image_data_is_refused(data):
    assert error_of(user_blocks(image(data=data))) == (
        "messages.0.content.0.image.source.base64: invalid base64 data"
    )


def test_empty_image_data_is_refused_in_anthropic_words():
    assert error_of(user_blocks(image(data=""))) == (
        "messages.0.content.0.image.source.base64: image cannot be empty"
    )


def test_an_image_nested_in_a_tool_result_is_checked_with_its_full_path():
    body = base(
        messages=[
            {"role": "user", "content": "look"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": [image(data="x")]}
                ],
            },
        ]
    )
    assert error_of(body) == (
        "messages.2.content.0.tool_result.content.0.image.source.base64: invalid base64 data"
    )


def test_a_pdf_document_is_accepted_and_other_base64_documents_are_refused():
    (part,) = decode(user_blocks(pdf())).messages[0].content
    assert part == ir.Document(media_type="application/pdf", data="JVBERi0xLjQK")
    assert error_of(user_blocks(pdf("application/msword"))) == (
        "messages.0.content.0.document.source.base64.media_type: Input should be 'application/pdf'"
    )
    assert error_of(user_blocks(pdf(data="%PDF-1.4"))) == (
        "messages.0.content.0.document.source.base64: invalid base64 data"
    )


def test_a_text_document_must_say_text_plain():
    def text_doc(**source) -> dict:
        return {"type": "document", "source": {"type": "text", "data": "hello", **source}}

    (part,) = decode(user_blocks(text_doc(media_type="text/plain"))).messages[0].content
    assert part == ir.Document(text="hello", media_type="text/plain")
    assert error_of(user_blocks(text_doc(media_type="text/html"))) == (
        "messages.0.content.0.document.source.text.media_type: Input should be 'text/plain'"
    )


def test_a_tool_result_without_its_tool_use_in_the_previous_turn_is_refused():
    body = base(
        messages=[
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]},
        ]
    )
    assert error_of(body) == (
        "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_x. "
        "Each `tool_result` block must have a corresponding `tool_use` block in the previous "
        "message."
    )


def test_a_tool_result_answering_an_older_turn_is_refused():
    call = {"type": "tool_use", "id": "t1", "name": "t", "input": {}}
    body = base(
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [call]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]},
            {"role": "assistant", "content": "done"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "again"},
                    {"type": "tool_result", "tool_use_id": "t1"},
                ],
            },
        ]
    )
    assert error_of(body).startswith(
        "messages.4.content.1: unexpected `tool_use_id` found in `tool_result` blocks: t1."
    )


def test_tool_results_across_merged_user_turns_answer_the_assistant_turn_before_them():
    calls = [{"type": "tool_use", "id": f"t{i}", "name": "t", "input": {}} for i in (1, 2)]
    body = base(
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": calls},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t2"}]},
        ]
    )
    results = decode(body).messages[2].content
    assert [p.tool_use_id for p in results] == ["t1", "t2"]


def test_count_tokens_validates_content_the_same_way():
    body = {"model": "m", "messages": [{"role": "user", "content": [image(data="@@@@")]}]}
    with pytest.raises(InvalidRequest) as caught:
        to_ir(decode_count_tokens(msgspec.json.encode(body)))
    assert caught.value.message == "messages.0.content.0.image.source.base64: invalid base64 data"


def test_count_tokens_has_no_max_tokens_to_check():
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert to_ir(decode_count_tokens(msgspec.json.encode(body))).max_tokens == 0


def test_an_unknown_field_out_of_range_is_refused_naming_it():
    raw = msgspec.json.encode(base())[:-1] + b',"zz":[1e400]}'
    assert error_of(raw) == "zz.0: Number out of range"


def test_the_base64_check_agrees_with_rfc_4648s_grammar():
    grammar = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
    rng = random.Random(12)
    alphabet = "ABCab019+/=-_ \né"
    for _ in range(20_000):
        data = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 13)))
        assert is_base64(data) is (grammar.fullmatch(data) is not None), data


@pytest.mark.parametrize("field", ["max_tokens", "top_k"])
def test_token_counts_past_32_bits_are_refused(field):
    assert error_of(base(**{field: 2**31})) == (
        f"{field}: Input should be less than or equal to 2147483647"
    )
    assert error_of(base(**{field: 10**30})).startswith(f"{field}: ")


def test_unknown_fields_are_read_from_the_decoded_body_or_its_bytes():
    raw = msgspec.json.encode(base(mcp_servers=[], zz=1))
    assert unknown_fields(msgspec.json.decode(raw)) == ["mcp_servers", "zz"]
    assert unknown_fields(raw) == ["mcp_servers", "zz"]


# --- output_config, service_tier ----------------------------------------------------------------
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}


def test_output_config_format_becomes_the_output_schema():
    request = decode(base(output_config={"format": {"type": "json_schema", "schema": SCHEMA}}))
    assert request.output_schema == SCHEMA
    assert decode(base()).output_schema is None


@pytest.mark.parametrize(
    ("output_format", "message"),
    [
        ({"type": "json_object", "schema": SCHEMA}, "output_config.format.type"),
        ({"type": "json_schema"}, "output_config.format.schema: Field required"),
        ({"type": "json_schema", "schema": "{}"}, "output_config.format.schema"),
        ("json", "output_config.format"),
    ],
)
def test_a_malformed_output_format_is_a_400_naming_it(output_format, message):
    with pytest.raises(InvalidRequest) as caught:
        decode(base(output_config={"format": output_format}))
    assert str(caught.value.message).startswith(message)


def test_effort_without_thinking_asks_for_effort_but_no_thinking_blocks():
    request = decode(base(output_config={"effort": "xhigh"}))
    assert request.reasoning == ir.Reasoning(
        effort="xhigh", summary=False, asked_by="output_config.effort"
    )


def test_effort_with_adaptive_thinking_steers_the_adaptive_thinking():
    request = decode(base(thinking={"type": "adaptive"}, output_config={"effort": "low"}))
    assert request.reasoning == ir.Reasoning(adaptive=True, effort="low")


def test_effort_with_thinking_disabled_asks_for_nothing():
    request = decode(base(thinking={"type": "disabled"}, output_config={"effort": "low"}))
    assert request.reasoning is None


@pytest.mark.parametrize("tier", ["auto", "standard_only"])
def test_service_tier_is_carried(tier):
    assert decode(base(service_tier=tier)).service_tier == tier


def test_an_unknown_service_tier_is_a_400():
    with pytest.raises(InvalidRequest) as caught:
        decode(base(service_tier="priority"))
    assert str(caught.value.message).startswith("service_tier:")


# --- Fields no route gets, TTLs translated routes cannot keep -----------------------------------
def test_workspace_and_user_profile_are_withheld_from_headers_or_body():
    headers = {b"anthropic-workspace-id": b"wrkspc_x", b"anthropic-user-profile-id": b"up_1"}
    assert withheld_fields({}, headers) == [
        "workspace_id (anthropic-workspace-id header)",
        "user_profile_id (anthropic-user-profile-id header)",
    ]
    assert withheld_fields({"user_profile_id": "up_1"}, {}) == ["user_profile_id"]
    assert withheld_fields(base(), {}) == []
    assert unknown_fields({"workspace_id": "w", "speed": "fast"}) == ["speed"]


def one_hour(text: str = "x") -> dict:
    return {"type": "text", "text": text, "cache_control": {"type": "ephemeral", "ttl": "1h"}}


def test_one_hour_cache_ttls_are_found_wherever_a_block_may_carry_them():
    result = {"type": "tool_result", "tool_use_id": "t", "content": [one_hour()]}
    wire = base(
        system=[one_hour()],
        tools=[
            {"name": "t", "input_schema": {}, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ],
        messages=[{"role": "user", "content": [result, one_hour()]}],
    )
    assert long_cache_ttls(wire) == ["cache_control ttl `1h` (system.0, and 3 more)"]


def test_five_minute_ttls_and_odd_shapes_are_not_reported():
    five = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "5m"}}
    assert long_cache_ttls(base(messages=[{"role": "user", "content": [five]}])) == []
    odd = base(system="s", tools="t", messages=[{"role": "user", "content": [1, {"content": 2}]}])
    assert long_cache_ttls(odd) == []
    assert long_cache_ttls({"messages": "x"}) == []


def test_a_web_fetch_tool_keeps_its_settings_for_the_adapter_to_judge():
    tool = {
        "type": "web_fetch_20250910",
        "name": "web_fetch",
        "max_uses": 3,
        "blocked_domains": ["b.test"],
        "citations": {"enabled": True},
        "max_content_tokens": 4000,
    }
    (fetch,) = decode(base(tools=[tool])).server_tools
    assert fetch == ir.ServerTool(
        kind="web_fetch",
        type="web_fetch_20250910",
        where="tools.0",
        max_uses=3,
        blocked_domains=["b.test"],
        citations=True,
        max_content_tokens=4000,
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"citations": {"enabled": "yes"}}, "tools.0.citations.enabled: Input should be a valid"),
        ({"max_content_tokens": 0}, "tools.0.max_content_tokens"),
        ({"allowed_domains": ["a"], "blocked_domains": ["b"]}, "tools.0: use either"),
        ({"name": "fetch"}, "tools.0.name: a `web_fetch_20250910` tool must be named `web_fetch`"),
    ],
)
def test_a_bad_web_fetch_tool_is_refused_naming_the_field(extra, message):
    tool = {"type": "web_fetch_20250910", "name": "web_fetch", **extra}
    assert error_of(base(tools=[tool])).startswith(message)


def test_a_web_fetch_sent_back_in_history_becomes_text_for_a_translated_route():
    call = {
        "type": "server_tool_use",
        "id": "srvtoolu_1",
        "name": "web_fetch",
        "input": {"url": "https://a.test/"},
    }
    page = {
        "type": "web_fetch_result",
        "url": "https://a.test/",
        "content": {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "Page A."},
        },
    }
    failed = {"type": "web_fetch_tool_result_error", "error_code": "url_not_accessible"}
    turns = [
        {"role": "user", "content": "read https://a.test/"},
        {
            "role": "assistant",
            "content": [
                call,
                {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_1", "content": page},
                {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_2", "content": failed},
                {"type": "text", "text": "It says A."},
            ],
        },
        {"role": "user", "content": "thanks"},
    ]
    request = decode(base(messages=turns))
    assert request.unportable == []
    texts = [p.text for p in request.messages[1].content]
    assert texts == [
        "[web fetch: https://a.test/]",
        "[web fetch result: https://a.test/]\nPage A.",
        "[web fetch failed: url_not_accessible]",
        "It says A.",
    ]


def test_server_tool_options_no_translation_reads_are_named():
    from protocols.anthropic.server_tools import unread_options

    wire = base(
        tools=[
            {"name": "get", "input_schema": {}, "defer_loading": True},  # a function: not ours
            {"type": "web_search_20250305", "name": "web_search", "use_cache": False, "x;y": 1},
        ]
    )
    request = decode(wire)
    assert unread_options(wire, request.server_tools) == ["tools.1.use_cache", "tools.1.x?y"]
    assert unread_options({"tools": "odd"}, request.server_tools) == []
