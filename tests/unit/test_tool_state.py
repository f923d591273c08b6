"""Which calls a request looks up, and the keys they live under (gateway/tool_state.py)."""

from core import ir
from gateway import tool_state


def message(role, *parts):
    return ir.Message(role, list(parts))


def call(i):
    return ir.ToolUse(id=i, name="t", input={})


def request(*messages):
    return ir.Request(model="m", max_tokens=1, messages=list(messages))


def test_only_the_current_turns_calls_are_looked_up():
    req = request(
        message("user", ir.Text("first question")),
        message("assistant", call("old")),
        message("user", ir.ToolResult(tool_use_id="old")),
        message("assistant", ir.Text("done")),
        message("user", ir.Text("second question")),
        message("assistant", call("a1"), call("a2")),
        message("user", ir.ToolResult(tool_use_id="a1"), ir.ToolResult(tool_use_id="a2")),
        message("assistant", call("b1")),
        message("user", ir.ToolResult(tool_use_id="b1")),
    )
    assert tool_state.current_turn_calls(req) == ["b1", "a1", "a2"]


def test_a_request_without_calls_looks_nothing_up():
    assert tool_state.current_turn_calls(request(message("user", ir.Text("hi")))) == []


def test_lookups_are_bounded():
    many = [call(f"c{i}") for i in range(1000)]
    req = request(message("user", ir.Text("q")), message("assistant", *many))
    assert len(tool_state.current_turn_calls(req)) == tool_state.MAX_LOOKUPS


def test_keys_hold_the_tenant_and_never_an_odd_id_as_sent():
    assert tool_state.key(7, "toolu_01A") == "tg:tool:7:toolu_01A"
    assert tool_state.key(7, "toolu_01A") != tool_state.key(8, "toolu_01A")
    odd = tool_state.key(7, "x:*\r\nFLUSHALL " + "a" * 500)
    assert odd.startswith("tg:tool:7:h") and len(odd) < 60


def test_oversized_state_is_not_kept():
    big = ir.ToolUse(id="c", name="t", input={}, state={"ts": "x" * tool_state.MAX_STATE_BYTES})
    small = ir.ToolUse(id="d", name="t", input={}, state={"ts": "x"})
    assert [i for i, _ in tool_state.owed([big, small, call("e")])] == ["d"]
