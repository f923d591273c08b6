"""`POST /v1/messages`: JSON or server-sent events, Anthropic's wire format exactly.

Thin: `gateway.pipeline` decides; this module moves bytes, keeps the stream alive with pings,
and cancels the upstream when the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from django.conf import settings

from gateway import ir, pipeline
from gateway.api.http import GatewayConsumer
from gateway.errors import GatewayError
from gateway.surfaces.anthropic.encode import encode, message_json
from gateway.surfaces.anthropic.stream import PING, StreamWriter
from gateway.tokens import estimate_input_tokens

SSE_HEADERS = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class MessagesConsumer(GatewayConsumer):
    async def handle(self, body: bytes) -> None:
        call = pipeline.Call(request_id=self.request_id, started=self.started)
        self.call = call
        await pipeline.admit(call, body, self.headers)
        if call.request.stream:
            await self.stream(call)
        else:
            response = await pipeline.complete(call)
            await self.send_json(
                200, encode(self.message(call, response)), self.overhead_header(call)
            )

    def message(self, call: pipeline.Call, response: ir.Response) -> dict:
        if response.passthrough is not None:
            return {**response.passthrough, "id": call.message_id, "model": call.body.model}
        return message_json(response, message_id=call.message_id, model=call.body.model)

    def overhead_header(self, call: pipeline.Call) -> list[tuple[bytes, bytes]]:
        return [(b"tollgate-overhead-ms", f"{call.overhead_ms():.2f}".encode())]

    async def stream(self, call: pipeline.Call) -> None:
        events, first = await pipeline.open_stream(call)
        writer = StreamWriter(message_id=call.message_id, model=call.body.model)
        if not isinstance(first, ir.Passthrough):
            writer.input_estimate = estimate_input_tokens(call.request)
            if isinstance(first, ir.StreamStart) and first.usage is None:
                first.usage = ir.Usage(input_tokens=writer.input_estimate)
        headers = self.base_headers(b"text/event-stream; charset=utf-8") + SSE_HEADERS
        await self.send_headers(200, headers + self.overhead_header(call))
        pump = asyncio.current_task()
        watcher = asyncio.create_task(self.watch_disconnect(pump))
        pinger = asyncio.create_task(self.keep_alive(writer))
        try:
            await self.write(writer, first)
            async for event in events:
                await self.write(writer, event)
                if writer.finished:
                    break
            if not writer.finished:
                await self.write(
                    writer, ir.StreamError("api_error", "upstream stream ended unexpectedly")
                )
        except asyncio.CancelledError:
            # The client went away: closing the generator closes the upstream request.
            pump.uncancel()
        except GatewayError as err:
            await self.write(writer, ir.StreamError(err.type, err.message))
        finally:
            watcher.cancel()
            pinger.cancel()
            await events.aclose()
        with contextlib.suppress(Exception):
            await self.send_body(b"")

    async def write(self, writer: StreamWriter, event: ir.StreamEvent) -> None:
        data = writer.feed(event)
        if data:
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

    async def watch_disconnect(self, pump: asyncio.Task) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                pump.cancel()
                return
