"""Webhook calls: the signature, the guard against calling internal addresses, one POST.

Signature (README, "Alerts"): `Tollgate-Signature: t=<unix seconds>,v1=<hex>` where `<hex>` is
HMAC-SHA256 with the channel's secret over `<t>.<raw body>`. The receiver recomputes it,
compares in constant time and refuses a `t` too far from its clock (a replayed old call).

SSRF: a tenant chooses the URL, the gateway makes the call from inside the platform's network.
So unless TOLLGATE_ALERTS_ALLOW_PRIVATE_URLS is set, a URL is refused when its host is, or
resolves to, any address that is not globally routable (loopback, private, link-local such as
169.254.169.254, carrier-grade NAT, unspecified, reserved). The check that counts happens
when connecting, on the very address connected to (`GuardedBackend`), so a name that resolves
to a public address when saved and to 127.0.0.1 when called (DNS rebinding) is refused too;
redirects are never followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore2
import httpx2
from httpcore2._backends.base import NetworkStream
from httpcore2._backends.sync import SyncBackend

SIGNATURE_HEADER = "Tollgate-Signature"
USER_AGENT = "Tollgate-Alerts/1"


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The `Tollgate-Signature` header's value for this body at this time."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def address_refused(address: str) -> bool:
    """True for any address a tenant's webhook may not reach (not globally routable)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why this webhook URL is refused when saved, or None (the call checks again)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The webhook URL must be an http:// or https:// URL with a host."
    if parts.username or parts.password:
        return "The webhook URL must not hold a user name or password."
    if allow_private:
        return None
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        return "The webhook URL may not point to this machine."
    try:
        refused = address_refused(host)
    except ValueError:
        return None  # a name: checked on every call, on the address it resolves to
    return "The webhook URL may not point to a private address." if refused else None


def url_origin(url: str) -> str:
    """scheme://host[:port] alone, for showing a URL whose path may hold a token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}" if parts.netloc else ""


class RefusedAddress(httpcore2.ConnectError):
    """The host resolved to an address tenants' webhooks may not reach."""


class _DeadlineStream(NetworkStream):
    """A connection whose every read and write ends by one deadline: per-operation timeouts
    alone let a receiver that trickles its answer a byte at a time hold a worker for ever."""

    def __init__(self, stream: NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def _left(self, timeout: float | None, error: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("the webhook's time is up")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._left(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._left(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> NetworkStream:
        left = self._left(timeout, httpcore2.ConnectTimeout)
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, left), self._deadline
        )

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class GuardedBackend(SyncBackend):
    """Resolves the host itself, connects only to an address that passes the check, and ends
    everything by `deadline` (monotonic)."""

    def __init__(self, *, allow_private: bool, deadline: float) -> None:
        self.allow_private = allow_private
        self.deadline = deadline

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = [info[4][0] for info in found]
        if not self.allow_private and any(address_refused(a) for a in addresses):
            raise RefusedAddress(f"{host} resolves to a private address; refused")
        last: Exception | None = None
        for address in addresses:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise httpcore2.ConnectTimeout("the webhook's time is up")
            try:
                stream = super().connect_tcp(
                    address, port, min(timeout or left, left), local_address, socket_options or []
                )
            except httpcore2.ConnectError as exc:
                last = exc
            else:
                return _DeadlineStream(stream, self.deadline)
        raise last or httpcore2.ConnectError(f"no address for {host}")


class GuardedTransport(httpx2.HTTPTransport):
    def __init__(self, *, allow_private: bool, deadline: float) -> None:
        super().__init__(trust_env=False)
        backend = GuardedBackend(allow_private=allow_private, deadline=deadline)
        self._pool = httpcore2.ConnectionPool(network_backend=backend, retries=0)


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    latency_ms: float
    error: str = ""
    permanent: bool = False  # retrying cannot help (refused address, a 4xx)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(
    url: str, body: bytes, *, secret: str, headers: dict[str, str], timeout: float, allow_private
) -> Outcome:
    """One signed POST, all of it within `timeout` seconds. Never raises for the network;
    never follows a redirect."""
    if (problem := url_problem(url, allow_private=allow_private)) is not None:
        return Outcome(None, 0.0, problem, permanent=True)
    sent = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **headers,
        SIGNATURE_HEADER: signature(secret, body, int(time.time())),
    }
    started = time.perf_counter()
    transport = GuardedTransport(allow_private=allow_private, deadline=time.monotonic() + timeout)
    try:
        with (
            httpx2.Client(
                transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
            ) as client,
            # Streamed and never read: what the receiver says beyond its status is not needed,
            # and a huge answer must not fill the worker's memory.
            client.stream("POST", url, content=body, headers=sent) as response,
        ):
            code = response.status_code
    except httpx2.TimeoutException:
        return Outcome(None, _ms(started), f"timed out after {timeout:g} s")
    except httpx2.HTTPError as exc:
        if isinstance(exc.__cause__, RefusedAddress):  # httpx2 wraps the backend's error
            return Outcome(None, _ms(started), str(exc.__cause__), permanent=True)
        return Outcome(None, _ms(started), f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= code < 300:
        return Outcome(code, _ms(started))
    # 408, 429 and 5xx may pass later; any other answer will not (nor will a redirect).
    retry = code in (408, 429) or code >= 500
    return Outcome(code, _ms(started), f"HTTP {code}", permanent=not retry)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
