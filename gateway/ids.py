"""Id minting: `msg_`, `toolu_` and `req_` ids of 24 base62 characters, as Anthropic's look."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def _token(n: int = 24) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def message_id() -> str:
    return "msg_" + _token()


def tool_use_id() -> str:
    return "toolu_" + _token()


def request_id() -> str:
    return "req_" + _token()
