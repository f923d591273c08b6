"""Write a stream's events in as few sends as it can, never holding one back.

One upstream read often carries several events (a burst of tokens, or the three events that
close a message), and translation can turn one upstream event into several Anthropic ones.
Each ASGI send is a socket write, the largest single cost of a stream in the profile, so
`Coalescer` buffers what the events produce and sends it when the event source is about to
wait for the network: everything already received goes out in one write, and nothing waits
for a timer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

T = TypeVar("T")
# A source that never waits (a reply already buffered in full) still gets written this often.
MAX_PENDING_BYTES = 32 * 1024


class Coalescer:
    def __init__(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        self._send = send
        self._pending: list[bytes] = []
        self._size = 0

    def add(self, data: bytes) -> None:
        if data:
            self._pending.append(data)
            self._size += len(data)

    @property
    def full(self) -> bool:
        return self._size >= MAX_PENDING_BYTES

    def take(self) -> bytes:
        """Everything pending, now the caller's to send."""
        data = b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        return data

    async def flush(self) -> None:
        if self._pending:
            await self._send(self.take())

    def before_waiting(self, awaitable: Awaitable[T]) -> Awaitable[T]:
        """Await `awaitable`, flushing first if (and only when) it is about to suspend."""
        return _FlushBeforeWait(awaitable, self)


class _FlushBeforeWait:
    """Steps the wrapped awaitable by hand: when it yields to the event loop (it is waiting),
    the buffered bytes are sent first; when it completes without yielding, nothing is sent.
    Whatever the loop sends or throws in (a result, a cancellation) is passed through."""

    __slots__ = ("_awaitable", "_coalescer")

    def __init__(self, awaitable: Awaitable[Any], coalescer: Coalescer) -> None:
        self._awaitable = awaitable
        self._coalescer = coalescer

    def __await__(self) -> Generator[Any, Any, Any]:
        inner = self._awaitable.__await__()
        try:
            signal = inner.send(None)
        except StopIteration as done:
            return done.value
        thrown: BaseException | None = None
        try:
            yield from self._coalescer.flush().__await__()
        except BaseException as exc:  # cancelled while flushing: the inner awaitable hears it
            thrown = exc
        while True:
            try:
                if thrown is not None:
                    exc, thrown = thrown, None
                    signal = inner.throw(exc)
                else:
                    try:
                        value = yield signal
                    except BaseException as exc:
                        thrown = exc
                        continue
                    signal = inner.send(value)
            except StopIteration as done:
                return done.value
