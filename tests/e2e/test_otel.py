"""OpenTelemetry: with an OTLP endpoint set, each request's spans reach it (a local receiver
decoding the real OTLP/HTTP protobuf), in the client's trace, with the GenAI conventions."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.e2e.live import LiveGateway
from tests.e2e.test_routing import ASK, routes

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


class Receiver:
    def __init__(self):
        self.spans: list = []
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                export = ExportTraceServiceRequest.FromString(body)
                for resource in export.resource_spans:
                    for scope in resource.scope_spans:
                        received.extend((resource.resource, span) for span in scope.spans)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def wait_for(self, count: int, within: float = 10.0) -> list:
        deadline = time.monotonic() + within
        while len(self.spans) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.spans)


@pytest.fixture
def traced(stage, tmp_path):
    receiver = Receiver()
    env = {
        **stage.gateway.env,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "tollgate-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "TOLLGATE_SPOOL_DIR": str(tmp_path),
    }
    gateway = LiveGateway(env=env).start()
    yield gateway, receiver
    gateway.stop()
    receiver.server.shutdown()


def attributes(span) -> dict:
    out = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


def test_a_requests_spans_join_the_clients_trace_with_genai_attributes(stage, traced):
    gateway, receiver = traced
    key = routes(
        stage, ("p1", "openai", "up-1", {"priority": 1}), ("p2", "openai", "up-2", {"priority": 2})
    )
    stage.upstream.script("up-1", {"status": 500}, {"status": 500})
    client = stage.client(key)
    client.base_url = gateway.url
    client.messages.create(**ASK, extra_headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"})

    spans = receiver.wait_for(4)  # the server span and three attempts (p1 twice, then p2)
    by_kind = {}
    for _, span in spans:
        by_kind.setdefault(span.kind, []).append(span)
    (server,) = by_kind[2]  # SPAN_KIND_SERVER
    attempts = sorted(by_kind[3], key=lambda s: s.start_time_unix_nano)  # SPAN_KIND_CLIENT
    assert server.trace_id.hex() == TRACE_ID and server.parent_span_id.hex() == CLIENT_SPAN
    sent = stage.upstream.requests("up-2")[0]["headers"]["traceparent"]
    assert sent.split("-")[2] == server.span_id.hex()  # the provider saw the gateway's span
    assert attributes(server)["gen_ai.request.model"] == "claude-test"
    assert attributes(server)["gen_ai.operation.name"] == "chat"
    assert attributes(server)["url.path"] == "/v1/messages"
    assert [a.parent_span_id for a in attempts] == [server.span_id] * 3
    first, last = attributes(attempts[0]), attributes(attempts[-1])
    assert first["error.type"] == "api_error" and first["http.response.status_code"] == 500
    assert last["gen_ai.provider.name"] == "openai" and last["gen_ai.response.model"] == "up-2"
    assert last["gen_ai.usage.output_tokens"] > 0
    service = {kv.key: kv.value.string_value for kv in spans[0][0].attributes}
    assert service["service.name"] == "tollgate-test"


def test_an_openai_clients_request_is_traced_under_its_own_path(stage, traced):
    gateway, receiver = traced
    key = routes(stage, ("p1", "openai", "up-1", {"priority": 1}))
    httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "claude-test", "messages": [{"role": "user", "content": "hi"}]},
        headers={
            "authorization": f"Bearer {key}",
            "traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01",
        },
    ).raise_for_status()

    spans = receiver.wait_for(2)  # the server span and its attempt
    (server,) = [span for _, span in spans if span.kind == 2]
    assert attributes(server)["url.path"] == "/v1/chat/completions"
    assert attributes(server)["gen_ai.request.max_tokens"] == 4096  # Chat's default


def test_a_trace_the_client_did_not_sample_is_not_exported(stage, traced):
    gateway, receiver = traced
    key = routes(stage, ("p1", "openai", "up-1", {}))
    client = stage.client(key)
    client.base_url = gateway.url
    client.messages.create(**ASK, extra_headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-00"})
    client.messages.create(**ASK)  # no traceparent: the gateway's own trace, sampled
    spans = receiver.wait_for(2)
    time.sleep(0.3)
    assert {span.trace_id.hex() for _, span in receiver.spans} != {TRACE_ID}
    assert all(span.trace_id.hex() != TRACE_ID for _, span in receiver.spans)
    assert len(spans) >= 2
