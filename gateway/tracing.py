"""Correlation ids a client sends, carried to the provider and kept with the usage record.

`x-request-id`: the client's own id for its request (1 to 128 visible ASCII characters, or a
400). It is stored beside the gateway's `request-id`, never instead of it: record ids are the
gateway's alone, so no tenant can choose the id of a record (and collide with another's). It is
sent upstream as `x-request-id`; without one, the gateway's request id is.

`traceparent` (W3C Trace Context, version 00): the request continues the client's trace (and
its sampling decision). The gateway is one hop of it, so the provider gets the same trace id
and flags with the gateway's own span id as parent; gateway/otel.py exports that span. An
invalid `traceparent` is ignored, as the specification requires, and the gateway starts a
trace of its own (sampled). `tracestate` is passed on unchanged with a valid parent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core import ids
from core.errors import InvalidRequest

_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,128}")
_TRACEPARENT = re.compile(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_TRACESTATE = re.compile(rb"[\x20-\x7e]{1,512}")
_NO_TRACE, _NO_SPAN = "0" * 32, "0" * 16


@dataclass(slots=True)
class Trace:
    client_request_id: str  # "" when the client sent none
    trace_id: str
    span_id: str  # the gateway's hop: the parent the provider sees
    flags: str
    state: str = ""
    parent_id: str = ""  # the client's span, when it sent a valid traceparent

    def upstream_headers(self, request_id: str) -> dict[str, str]:
        headers = {
            "x-request-id": self.client_request_id or request_id,
            "traceparent": f"00-{self.trace_id}-{self.span_id}-{self.flags}",
        }
        if self.state:
            headers["tracestate"] = self.state
        return headers


def _hex(bits: int) -> str:
    return f"{ids.random_bits(bits):0{bits // 4}x}"


def read(headers: dict[bytes, bytes]) -> Trace:
    """The request's correlation ids; InvalidRequest for an `x-request-id` that is not one."""
    client_id = headers.get(b"x-request-id")
    if client_id is not None and not _REQUEST_ID.fullmatch(client_id):
        raise InvalidRequest("x-request-id: must be 1 to 128 visible ASCII characters")
    trace = Trace(
        client_request_id=client_id.decode("ascii") if client_id else "",
        trace_id="",
        span_id=_hex(64),
        flags="01",  # a trace the gateway starts is sampled (exported when OTLP is set)
    )
    parent = _TRACEPARENT.fullmatch((headers.get(b"traceparent") or b"").strip())
    if parent and parent[1] != _NO_TRACE.encode() and parent[2] != _NO_SPAN.encode():
        trace.trace_id, trace.flags = parent[1].decode(), parent[3].decode()
        trace.parent_id = parent[2].decode()
        state = headers.get(b"tracestate")
        if state and _TRACESTATE.fullmatch(state):
            trace.state = state.decode("ascii")
    else:
        trace.trace_id = _hex(128)
    return trace
