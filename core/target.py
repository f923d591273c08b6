"""A resolved route: the provider, credential, model and timeouts one attempt uses.

Plain data, snapshotted from the database by providers/routing.py and read by adapters and
upstream codecs (for the upstream model and the provider's quirks).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Target:
    """One resolved route, snapshotted from the database: everything an attempt needs."""

    route_id: int
    provider_id: int
    provider_name: str
    kind: str
    base_url: str
    api_key: str = field(repr=False)
    upstream_model: str
    extra_headers: dict[str, str] = field(default_factory=dict, repr=False)
    connect_timeout: float = 10.0
    first_byte_timeout: float = 120.0
    idle_timeout: float = 120.0
    version: str = ""
    # Server quirks from the provider's preset/options (providers/presets.py).
    options: dict = field(default_factory=dict)
    # HMAC key for the gateway's thinking-signature envelopes (reference 5.12.3).
    signing_key: bytes = field(default=b"", repr=False)
    # The provider's `anthropic-beta` policy (protocols/anthropic/betas.py): forward, allow or deny.
    betas_mode: str = "forward"
    betas: tuple[str, ...] = ()
