"""IR response -> Anthropic message JSON: `stop_details` on refusals, as Anthropic sends it."""

from core import ir
from protocols.anthropic.encode import message_json


def encode(response: ir.Response) -> dict:
    return message_json(response, message_id="msg_x", model="claude-test")


def test_a_refusal_carries_its_stop_details_between_stop_sequence_and_usage():
    response = ir.Response(
        content=[ir.Text("I can't help with that.")],
        stop_reason="refusal",
        usage=ir.Usage(input_tokens=3, output_tokens=6),
        stop_details=ir.StopDetails(explanation="I can't help with that."),
    )
    message = encode(response)
    assert list(message)[-3:] == ["stop_sequence", "stop_details", "usage"]
    assert message["stop_details"] == {
        "type": "refusal",
        "category": None,
        "explanation": "I can't help with that.",
    }


def test_a_message_without_stop_details_has_no_such_field():
    response = ir.Response(content=[ir.Text("Hi")], stop_reason="end_turn", usage=ir.Usage())
    assert "stop_details" not in encode(response)


def test_the_served_tier_is_usage_service_tier():
    response = ir.Response(
        content=[ir.Text("Hi")], stop_reason="end_turn", usage=ir.Usage(), service_tier="priority"
    )
    assert encode(response)["usage"]["service_tier"] == "priority"


def test_an_unreported_tier_is_left_out_of_usage():
    response = ir.Response(content=[ir.Text("Hi")], stop_reason="end_turn", usage=ir.Usage())
    assert "service_tier" not in encode(response)["usage"]
