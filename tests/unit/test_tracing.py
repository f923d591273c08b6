"""Correlation ids a client sends: what is accepted, what is refused, what is ignored."""

import pytest

from core.errors import InvalidRequest
from gateway import tracing

PARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_parent_is_continued_with_the_gateways_own_span():
    trace = tracing.read({b"traceparent": PARENT, b"tracestate": b"vendor=abc"})
    headers = trace.upstream_headers("req_1")
    assert (trace.trace_id, trace.parent_id, trace.flags) == (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
        "01",
    )
    assert headers["traceparent"].split("-")[2] == trace.span_id != trace.parent_id
    assert headers["tracestate"] == "vendor=abc" and headers["x-request-id"] == "req_1"


@pytest.mark.parametrize(
    "parent",
    [
        b"garbage",
        b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01",  # the all-zero trace id is invalid
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-" + b"0" * 16 + b"-01",
        b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        PARENT.upper(),
    ],
)
def test_an_invalid_parent_is_ignored_and_its_state_with_it(parent):
    trace = tracing.read({b"traceparent": parent, b"tracestate": b"vendor=abc"})
    assert trace.parent_id == "" and trace.state == "" and trace.flags == "01"
    assert len(trace.trace_id) == 32 and trace.trace_id != "0" * 32


@pytest.mark.parametrize("state", [b"x" * 513, b"a=b\r\nx-injected: 1", b"caf\xc3\xa9=1"])
def test_a_tracestate_that_is_not_one_is_not_passed_on(state):
    trace = tracing.read({b"traceparent": PARENT, b"tracestate": state})
    assert trace.state == "" and "tracestate" not in trace.upstream_headers("req_1")


@pytest.mark.parametrize("value", [b"", b"a" * 129, b"two words", b"line\nbreak", b"\xff"])
def test_an_x_request_id_that_is_not_one_is_refused(value):
    with pytest.raises(InvalidRequest, match="x-request-id"):
        tracing.read({b"x-request-id": value})
