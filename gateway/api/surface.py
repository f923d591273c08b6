"""One consumer for every client surface (`/v1/messages`, `/v1/chat/completions`,
`/v1/responses`): JSON or server-sent events, in the surface's wire format exactly.

Thin: `gateway.pipeline` decides and the surface (protocols/<name>/surface.py) encodes; this
module moves bytes, keeps the stream alive, and cancels the upstream call, its retries and
fallbacks when the client goes away (watched from the moment the body is read, JSON and
streaming alike). Whatever happens to a request (answer, error, rejection, disconnect),
`pipeline.finish` runs once at the end, after the response bytes are out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import msgspec
from django.conf import settings

from core import ir, metrics, redaction
from core.errors import GatewayError
from gateway import extras, pipeline
from gateway.api.coalesce import Coalescer
from gateway.api.http import OVERHEAD_HEADER, GatewayConsumer
from gateway.usage.record import Captured, Seen
from protocols.surface import StreamWriter, Surface

SSE_HEADERS = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_json = msgspec.json.Encoder()


class SurfaceConsumer(GatewayConsumer):
    surface: Surface  # set per endpoint by `for_surface`

    @classmethod
    def for_surface(cls, surface: Surface) -> type[SurfaceConsumer]:
        return type(f"{type(surface).__name__}Consumer", (cls,), {"surface": surface})

    @property
    def endpoint(self) -> str:  # the /metrics label
        return self.surface.endpoint

    def base_headers(self, content_type: bytes) -> list[tuple[bytes, bytes]]:
        headers = super().base_headers(content_type)
        if self.surface.request_id_header != b"request-id":
            headers.append((self.surface.request_id_header, self.request_id.encode()))
        return headers

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
        call.surface, call.path = self.surface, self.scope["path"]
        self.call = call
        task = asyncio.current_task()
        watcher = asyncio.create_task(self.watch_disconnect(task))
        try:
            await pipeline.admit(call, body, self.headers, self.origin())
            if call.ask.stream:
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
        message = self.surface.response(
            response,
            response_id=call.response_id,
            model=call.ask.model,
            extras=self.extras(call),
            decoded=call.decoded,
        )
        headers = self.overhead_header(call) + self.limit_headers(call)
        self.body_ended = True
        await self.send_json(200, _json.encode(message), headers + self.warning_headers(call))

    def left_early(self, call: pipeline.Call) -> None:
        """The client left before its answer: cancelled (499 when nothing was sent). A prompt
        an upstream was reading when the call was cut is billed as the billing policy says, at
        our estimate; nothing else was generated."""
        self.seen.disconnected = True
        if call.upstream_busy and self.seen.usage is None and self.writer is None:
            self.seen.usage = ir.Usage(input_tokens=call.input_estimate(), estimated=True)

    async def account(self) -> None:
        """What the stream writer saw joins what was seen, then the pipeline ends the request."""
        seen = self.seen
        seen.finished = time.perf_counter()
        if self.call is None:
            return
        if self.writer is not None:
            seen.usage = self.writer.usage
            seen.output_chars += self.writer.output_chars
            seen.completed = self.writer.stop_reason is not None
            seen.stream_error = seen.stream_error or self.writer.error_type
        await pipeline.finish(self.call, seen, self.captured)

    async def send_body(self, body: bytes, *, more: bool = False) -> None:
        key = self.call.key if self.call is not None else None
        if key is not None and key.capture_bytes and not self.is_keepalive(body):
            room = key.capture_bytes + 1 - len(self.answer_sent)  # one more: "was it cut?"
            if room > 0:
                self.answer_sent += body[:room]
        await super().send_body(body, more=more)

    def is_keepalive(self, body: bytes) -> bool:
        return self.writer is not None and body == self.writer.keepalive()

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
        admission = self.call.admission if self.call is not None else None
        if err.limits is None and admission is not None:
            err.limits = admission.limits()
        overhead = (
            self.call.overhead_ms()
            if self.call is not None
            else ((time.perf_counter() - self.started) * 1000)
        )
        err.headers = {**err.headers, OVERHEAD_HEADER.decode(): f"{overhead:.2f}"}
        await super().send_error(err)

    def error_response(self, err: GatewayError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        status, body = self.surface.error(err, self.request_id)
        return status, body, self.surface.limit_headers(err.limits or [])

    async def client_gone(self) -> None:
        self.seen.disconnected = True

    def extras(self, call: pipeline.Call):
        """The response extras the client asked for, as the surface's encoders take them."""
        if not call.ask.wants_extras():
            return None
        return lambda usage: extras.fields(
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
        return self.surface.limit_headers(call.admission.limits())

    def overhead_header(self, call: pipeline.Call) -> list[tuple[bytes, bytes]]:
        self.seen.overhead_ms = call.overhead_ms()
        return [(OVERHEAD_HEADER, f"{self.seen.overhead_ms:.2f}".encode())]

    async def stream(self, call: pipeline.Call) -> None:
        events, first = await pipeline.open_stream(call)
        writer = self.writer = self.surface.stream_writer(
            response_id=call.response_id,
            model=call.ask.model,
            input_estimate=0,
            decoded=call.decoded,
        )
        writer.extras = self.extras(call)
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
            out.add(writer.feed(first))
            await out.flush()  # the first event never waits for company
            while not writer.finished:
                try:
                    event = await out.before_waiting(anext(events))
                except StopAsyncIteration:
                    out.add(writer.error("api_error", "upstream stream ended unexpectedly"))
                    break
                out.add(writer.feed(event))
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
            out.add(writer.error(err.type, err.message))
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
                await self.send_body(writer.keepalive(), more=True)

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
