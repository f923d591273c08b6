"""What each translating adapter reports it would drop (the input to strictness)."""

from core import ir
from core.target import Target
from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.gemini import GeminiAdapter
from providers.adapters.openai_chat import OpenAIChatAdapter
from providers.adapters.openai_responses import OpenAIResponsesAdapter


def target(kind: str, model: str) -> Target:
    return Target(
        route_id=1,
        provider_id=1,
        provider_name=f"{kind}-main",
        kind=kind,
        base_url="http://x.test",
        api_key="k",
        upstream_model=model,
    )


def request(**fields) -> ir.Request:
    return ir.Request(
        model="m", max_tokens=10, messages=[ir.Message("user", [ir.Text("hi")])], **fields
    )


def test_plain_request_drops_nothing_anywhere():
    plain = request(temperature=0.5)
    for adapter, kind in [
        (OpenAIChatAdapter(), "openai"),
        (GeminiAdapter(), "gemini"),
        (OpenAIResponsesAdapter(), "openai_responses"),
        (AnthropicAdapter(), "anthropic"),
    ]:
        assert adapter.unsupported(plain, target(kind, "model-x")) == []


def test_openai_chat_drops_top_k_and_reasoning_model_sampling():
    req = request(top_k=5, temperature=0.2, stop_sequences=["END"])
    assert OpenAIChatAdapter().unsupported(req, target("openai", "gpt-4.1")) == ["top_k"]
    assert OpenAIChatAdapter().unsupported(req, target("openai", "o3-mini")) == [
        "top_k",
        "temperature",
        "stop_sequences",
    ]


def test_thinking_is_reported_for_a_model_that_cannot_reason():
    req = request(reasoning=ir.Reasoning(budget_tokens=2048, effort="low"))
    assert OpenAIChatAdapter().unsupported(req, target("openai", "gpt-4.1")) == ["thinking"]
    assert OpenAIChatAdapter().unsupported(req, target("openai", "gpt-5")) == []


def test_responses_has_no_stop_parameter():
    req = request(stop_sequences=["END"])
    assert OpenAIResponsesAdapter().unsupported(req, target("openai_responses", "gpt-4.1")) == [
        "stop_sequences"
    ]


def test_gemini_reports_extra_stops_and_parallel_tool_approximation():
    req = request(
        stop_sequences=list("abcdef"),
        tool_choice=ir.ToolChoice(type="auto", disable_parallel_tool_use=True),
    )
    assert GeminiAdapter().unsupported(req, target("gemini", "gemini-2.5-flash")) == [
        "stop_sequences (beyond the first 5)",
        "tool_choice.disable_parallel_tool_use (approximated)",
    ]


def test_effort_alone_is_named_as_the_client_sent_it_where_it_cannot_be_honoured():
    effort = ir.Reasoning(effort="low", summary=False, asked_by="output_config.effort")
    req = request(reasoning=effort)
    assert OpenAIChatAdapter().unsupported(req, target("openai", "gpt-4.1")) == [
        "output_config.effort"
    ]
    assert OpenAIChatAdapter().unsupported(req, target("openai", "gpt-5")) == []
    assert GeminiAdapter().unsupported(req, target("gemini", "gemini-2.5-flash")) == []


def test_an_effort_openai_has_no_name_for_is_reported_with_what_was_sent():
    req = request(
        reasoning=ir.Reasoning(effort="max", summary=False, asked_by="output_config.effort")
    )
    expected = ["output_config.effort `max` (sent as `high`)"]
    assert OpenAIChatAdapter().unsupported(req, target("openai", "gpt-5")) == expected
    assert (
        OpenAIResponsesAdapter().unsupported(req, target("openai_responses", "gpt-5")) == expected
    )


def test_output_format_and_service_tier_are_honoured_by_every_translated_kind():
    req = request(output_schema={"type": "object"}, service_tier="standard_only")
    for adapter, kind in [
        (OpenAIChatAdapter(), "openai"),
        (GeminiAdapter(), "gemini"),
        (OpenAIResponsesAdapter(), "openai_responses"),
    ]:
        assert adapter.unsupported(req, target(kind, "model-x")) == []


def test_the_gateway_reasoning_extra_is_reported_on_anthropic_which_takes_thinking():
    """Only a forwarded Anthropic body loses the extra; a body built from the IR (another
    surface's client) carries it as `thinking`."""
    req = request(reasoning=ir.Reasoning(effort="low", asked_by="reasoning"), surface="anthropic")
    assert AnthropicAdapter().unsupported(req, target("anthropic", "claude-x")) == [
        "reasoning (Anthropic routes take `thinking`)"
    ]
    req.surface = "openai_chat"
    assert AnthropicAdapter().unsupported(req, target("anthropic", "claude-x")) == []
    thinking = request(reasoning=ir.Reasoning(budget_tokens=2048, effort="low"))
    assert AnthropicAdapter().unsupported(thinking, target("anthropic", "claude-x")) == []
