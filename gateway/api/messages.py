"""`POST /v1/messages`: JSON or server-sent events, Anthropic's wire format exactly.

Thin: `gateway.pipeline` decides; this module moves bytes, keeps the stream alive with pings,
and cancels the upstream call, its retries and fallbacks when the client goes away (watched
from the moment the body is read, JSON and streaming alike). Whatever happens to a request
(answer, error, rejection, disconnect), `account` runs once at the end: it builds the usage
record from what was seen, hands it off (one non-blocking append), then settles the limits
the request reserved, after the response bytes are out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import msgspec
from django.conf import settings

from core import ir, metrics, redaction
from core.errors import GatewayError
from gateway import extras, limits, logs, otel, pipeline
from gateway.api.coalesce import Coalescer
from gateway.api.http import OVERHEAD_HEADER, GatewayConsumer
from gateway.usage import recorder
from gateway.usage.record import Captured, Seen, build
from protocols.anthropic.encode import encode, message_json
from protocols.anthropic.stream import PING, StreamWriter

log = logging.getLogger("tollgate.api")

SSE_HEADERS = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class MessagesConsumer(GatewayConsumer):
    endpoint = "messages"

    async def serve(self, scope, receive, send):
        self.call: pipeline.Call | None = None
        self.seen = Seen(finished=0.0)
        self.writer: StreamWriter | None = None
        self.body_ended = False
        self.client_left = False  # set by `watch_disconnect` before it cancels the request
        self.streaming = False  # an SSE stream is open (counted in /metrics)
        self.answer_sent = bytearray()  # what the tenant's body capture keeps of the answer
        try:
            await super().serve(scope, receive, send)
        except asyncio.CancelledError:
            self.seen.disconnected = True  # the server gave up on the connection
            raise
        finally:
            if self.streaming:
                metrics.IN_FLIGHT_STREAMS.dec()
            await self.account()

    async def handle(self, body: bytes) -> None:
        call = pipeline.Call(request_id=self.request_id, started=self.started)
        self.call = call
        task = asyncio.current_task()
        watcher = asyncio.create_task(self.watch_disconnect(task))
        try:
            await pipeline.admit(call, body, self.headers, self.origin())
            if call.request.stream:
                await self.stream(call)
            else:
                await self.answer(call)
        except asyncio.CancelledError:
            if not self.client_left:
                raise  # the server's own cancellation, not the client's departure
            task.uncancel()
            self.left_early(call)
        finally:
            watcher.cancel()

    async def answer(self, call: pipeline.Call) -> None:
        response = await pipeline.complete(call)
        self.seen.usage, self.seen.completed = response.usage, True
        message = self.message(call, response)
        if extras.wanted(call.body):
            usage_fields, top = self.extras(call, response.usage)
            message["usage"] = {**message.get("usage", {}), **usage_fields}
            message.update(top)
        headers = self.overhead_header(call) + self.limit_headers(call)
        self.body_ended = True
        await self.send_json(200, encode(message), headers + self.warning_headers(call))

    def left_early(self, call: pipeline.Call) -> None:
        """The client left before its answer: cancelled (499 when nothing was sent). A prompt
        an upstream was reading when the call was cut is billed as the billing policy says, at
        our estimate; nothing else was generated."""
        self.seen.disconnected = True
        if call.upstream_busy and self.seen.usage is None and self.writer is None:
            self.seen.usage = ir.Usage(input_tokens=call.input_estimate(), estimated=True)

    async def account(self) -> None:
        """The request's one usage record: built, handed off, then its reservations settled.

        A request that never authenticated (401, 429 for too many failed authentications, or
        refused before its key was read) has no tenant to bill or show a record to: it leaves
        none, and /metrics counts it (tollgate_auth_failures_total).
        """
        seen = self.seen
        seen.finished = time.perf_counter()
        call = self.call
        if call is None or call.key is None:
            return
        if self.writer is not None:
            seen.usage = self.writer.usage
            seen.output_chars += self.writer.output_chars
            seen.completed = self.writer.stop_reason is not None
        try:
            record = build(call, seen, settings.TOLLGATE_BILLING)
            record.captured = self.captured(call)
            recorder.submit(record)
        except Exception:
            log.exception("usage record of request %s could not be built", self.request_id)
            return
        observe(call, record)
        if settings.ACCESS_LOG:
            logs.log_request(record, endpoint="messages", tenant=call.key.tenant_name)
        otel.export_request(call, record)
        if call.admission is not None:
            await limits.settle(call.admission, record)

    async def send_body(self, body: bytes, *, more: bool = False) -> None:
        key = self.call.key if self.call is not None else None
        if key is not None and key.capture_bytes and body is not PING:
            room = key.capture_bytes + 1 - len(self.answer_sent)  # one more: "was it cut?"
            if room > 0:
                self.answer_sent += body[:room]
        await super().send_body(body, more=more)

    def captured(self, call: pipeline.Call) -> Captured | None:
        """The request and answer as the tenant's body capture keeps them, if it asked."""
        key = call.key
        if not key.capture_bytes:
            return None
        request = b""
        if call.request is not None and call.request.raw_json is not None:
            hidden = extras.secrets(call)
            request = msgspec.json.encode(redaction.scrub_json(call.request.raw_json, hidden))
        cap = key.capture_bytes
        answer = bytes(self.answer_sent)
        return Captured(
            request=request[:cap].decode("utf-8", "replace"),
            response=redaction.scrub(answer[:cap].decode("utf-8", "replace")),
            truncated=len(request) > cap or len(answer) > cap,
            days=key.capture_days,
        )

    async def send_headers(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.seen.http_status, self.seen.first_byte = status, time.perf_counter()
        if self.seen.overhead_ms is None and self.call is not None:
            self.seen.overhead_ms = self.call.overhead_ms()
        await super().send_headers(status, headers)

    async def send_error(self, err: GatewayError) -> None:
        self.seen.error = err
        if self.call is not None and self.call.admission is not None:
            err.headers = {**self.call.admission.headers(), **err.headers}
        overhead = (
            self.call.overhead_ms()
            if self.call is not None
            else ((time.perf_counter() - self.started) * 1000)
        )
        err.headers = {**err.headers, OVERHEAD_HEADER.decode(): f"{overhead:.2f}"}
        await super().send_error(err)

    async def client_gone(self) -> None:
        self.seen.disconnected = True

    def extras(self, call: pipeline.Call, usage: ir.Usage) -> tuple[dict, dict]:
        return extras.fields(
            call,
            usage,
            warnings=call.warnings(),
            skipped=call.review.skipped if call.review else [],
            first_token_at=self.seen.first_byte,
        )

    def warning_headers(self, call: pipeline.Call) -> list[tuple[bytes, bytes]]:
        warnings = call.warnings()
        if not warnings:
            return []
        # Header values are latin-1: keep the field names (ASCII) and drop anything else.
        text = "; ".join(warnings).encode("ascii", "replace")
        return [(b"tollgate-warnings", text)]

    def limit_headers(self, call: pipeline.Call) -> list[tuple[bytes, bytes]]:
        if call.admission is None:
            return []
        return [(k.encode(), v.encode()) for k, v in call.admission.headers().items()]

    def message(self, call: pipeline.Call, response: ir.Response) -> dict:
        if response.passthrough is not None:
            return {**response.passthrough, "id": call.message_id, "model": call.body.model}
        return message_json(response, message_id=call.message_id, model=call.body.model)

    def overhead_header(self, call: pipeline.Call) -> list[tuple[bytes, bytes]]:
        self.seen.overhead_ms = call.overhead_ms()
        return [(OVERHEAD_HEADER, f"{self.seen.overhead_ms:.2f}".encode())]

    async def stream(self, call: pipeline.Call) -> None:
        events, first = await pipeline.open_stream(call)
        writer = self.writer = StreamWriter(message_id=call.message_id, model=call.body.model)
        if extras.wanted(call.body):
            writer.extras = lambda usage: self.extras(call, usage)
        if not isinstance(first, ir.Passthrough):
            writer.input_estimate = call.input_estimate()
            if isinstance(first, ir.StreamStart) and first.usage is None:
                first.usage = ir.Usage(input_tokens=writer.input_estimate)
        headers = self.base_headers(b"text/event-stream; charset=utf-8") + SSE_HEADERS
        headers += self.overhead_header(call) + self.limit_headers(call)
        await self.send_headers(200, headers + self.warning_headers(call))
        metrics.IN_FLIGHT_STREAMS.inc()
        self.streaming = True
        pinger = asyncio.create_task(self.keep_alive(writer))
        out = Coalescer(self.send_events)
        try:
            self.write(writer, first, out)
            await out.flush()  # the first event never waits for company
            while not writer.finished:
                try:
                    event = await out.before_waiting(anext(events))
                except StopAsyncIteration:
                    self.write(
                        writer,
                        ir.StreamError("api_error", "upstream stream ended unexpectedly"),
                        out,
                    )
                    break
                self.write(writer, event, out)
                if out.full:
                    await out.flush()
            await self.end_body(out)
        except asyncio.CancelledError:
            if not self.client_left:
                raise
            # The client went away: closing the generator closes the upstream request.
            asyncio.current_task().uncancel()
            self.seen.disconnected = True
        except GatewayError as err:
            self.write(writer, ir.StreamError(err.type, err.message), out)
            await self.end_body(out)
        finally:
            pinger.cancel()
            await events.aclose()
        if not self.body_ended:
            with contextlib.suppress(Exception):
                await self.send_body(b"")

    async def end_body(self, out: Coalescer) -> None:
        """The last events and the end of the body in one message (one write, chunk terminator
        included)."""
        self.body_ended = True
        await self.send_body(out.take())

    def write(self, writer: StreamWriter, event: ir.StreamEvent, out: Coalescer) -> None:
        if isinstance(event, ir.StreamError):
            self.seen.stream_error = event.error_type
        elif isinstance(event, ir.Passthrough):
            if event.event == "content_block_delta":  # forwarded as is: count its text
                self.seen.output_chars += delta_chars(event.data)
            elif event.event == "error":
                self.seen.stream_error = _error_type(event.data)
        out.add(writer.feed(event))

    async def send_events(self, data: bytes) -> None:
        self.last_write = time.monotonic()
        await self.send_body(data, more=True)

    async def keep_alive(self, writer: StreamWriter) -> None:
        interval = settings.TOLLGATE["STREAM_PING_SECONDS"]
        self.last_write = time.monotonic()
        while True:
            await asyncio.sleep(interval - (time.monotonic() - self.last_write))
            if time.monotonic() - self.last_write >= interval and not writer.finished:
                self.last_write = time.monotonic()
                await self.send_body(PING, more=True)

    async def watch_disconnect(self, request: asyncio.Task) -> None:
        """Cancels the request's task when the client goes away (the body is read by now, so
        the only message left to come is the disconnect). Once the last bytes are being sent
        there is nothing left to cancel (and uvicorn reports a finished response that way)."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                if not self.body_ended:
                    self.client_left = True
                    request.cancel()
                return


class _Delta(msgspec.Struct):
    text: str = ""
    thinking: str = ""
    partial_json: str = ""


class _DeltaEvent(msgspec.Struct):
    delta: _Delta


_delta_event = msgspec.json.Decoder(_DeltaEvent)


def delta_chars(sse: bytes) -> int:
    """Characters of text, thinking or tool input in a forwarded `content_block_delta` event:
    what a reply cut short is billed from (signatures and framing are not output)."""
    try:
        delta = _delta_event.decode(sse[sse.index(b"{") :]).delta
    except (ValueError, msgspec.DecodeError):
        return 0
    return len(delta.text) + len(delta.thinking) + len(delta.partial_json)


def _error_type(sse: bytes) -> str:
    """The `error.type` of a forwarded SSE `error` event."""
    try:
        payload = msgspec.json.decode(sse.split(b"data:", 1)[1])
        return str(payload["error"]["type"])
    except (IndexError, KeyError, TypeError, msgspec.DecodeError):
        return "api_error"


def observe(call: pipeline.Call, record) -> None:
    """Prometheus figures of one finished request and of its failed upstream attempts."""
    if call.model is None:
        return  # refused before a model was resolved: no bounded label to count it under
    metrics.observe_request(
        model=record.model,
        provider=record.provider or "none",
        status=record.status,
        error_type=record.error_type,
        latency_s=record.latency_ms / 1000,
        overhead_ms=record.overhead_ms,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cache_read_tokens=record.cache_read_tokens,
        cache_write_tokens=record.cache_write_tokens,
        cost=record.cost_usd,
        ttfb_s=None if record.ttfb_ms is None else record.ttfb_ms / 1000,
    )
    for attempt in call.attempts:
        if attempt.error_type is not None:
            metrics.observe_upstream_error(
                provider=attempt.provider, status=attempt.status or attempt.error_type
            )
