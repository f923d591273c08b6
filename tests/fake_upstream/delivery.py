"""Sending one response over ASGI, with the scripted faults of its scenario.

Faults: a delay before the headers, a delay between chunks, silence after N chunks (for
`hang_seconds`, then the rest follows), an abrupt cut after N chunks and a refused (dropped)
connection. A JSON body counts as one chunk. Only
scenarios with faults take the slow path that watches for the client going away.

Dropping a connection needs the socket: returning or raising from an ASGI app makes uvicorn
answer 500 instead. So the fake closes uvicorn's transport, which its `send` is bound to; with
no transport at hand (in-process tests) it raises `ConnectionDropped` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .scenario import Scenario

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

END = {"type": "http.response.body", "body": b"", "more_body": False}
DROP_GRACE_SECONDS = 1.0


class ConnectionDropped(Exception):
    """Raised where a real server would drop the connection but no socket is reachable."""


@dataclass(slots=True)
class Outcome:
    completed: bool = False  # every byte of the response was sent
    disconnected: bool = False  # the client went away before that


class DisconnectWatcher:
    """Reads ASGI messages in the background so a departing client is noticed while we wait."""

    def __init__(self, receive: Receive) -> None:
        self._gone = asyncio.Event()
        self._task = asyncio.create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._gone.set()

    async def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when the client went away meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._gone.wait(), seconds)
        return self._gone.is_set()

    def stop(self) -> None:
        self._task.cancel()


async def deliver(
    receive: Receive,
    send: Send,
    *,
    status: int,
    headers: list[tuple[bytes, bytes]],
    frames: list[bytes],
    scenario: Scenario,
) -> Outcome:
    start = {"type": "http.response.start", "status": status, "headers": headers}
    if not scenario.has_faults:
        await send(start)
        if len(frames) == 1:  # a JSON body: one message, no chunked encoding
            await send({"type": "http.response.body", "body": frames[0], "more_body": False})
            return Outcome(completed=True)
        for frame in frames:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send(END)
        return Outcome(completed=True)
    watcher = DisconnectWatcher(receive)
    try:
        return await _deliver_with_faults(send, start, frames, scenario, watcher)
    finally:
        watcher.stop()


async def _deliver_with_faults(
    send: Send,
    start: dict[str, Any],
    frames: list[bytes],
    scenario: Scenario,
    watcher: DisconnectWatcher,
) -> Outcome:
    if scenario.refuse_connection:
        await _drop(send, watcher)
        return Outcome()
    if scenario.delay_first_byte and await watcher.wait(scenario.delay_first_byte):
        return Outcome(disconnected=True)
    await send(start)
    for index in range(len(frames) + 1):
        if index == scenario.cut_after_chunks:
            await _drop(send, watcher)
            return Outcome()
        if index == scenario.silent_after_chunks and await watcher.wait(scenario.hang_seconds):
            return Outcome(disconnected=True)  # otherwise the silence is over: carry on
        if index == len(frames):
            break
        if index and scenario.chunk_delay and await watcher.wait(scenario.chunk_delay):
            return Outcome(disconnected=True)
        await send({"type": "http.response.body", "body": frames[index], "more_body": True})
    await send(END)
    return Outcome(completed=True)


async def _drop(send: Send, watcher: DisconnectWatcher) -> None:
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionDropped("scripted connection drop")
    transport.close()
    # Let uvicorn see the closed socket, so it neither answers 500 nor logs an error.
    await watcher.wait(DROP_GRACE_SECONDS)
