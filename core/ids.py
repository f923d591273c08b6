"""Id minting: `msg_`, `toolu_` and `req_` ids of 24 base62 characters, as Anthropic's look,
and `chatcmpl-` ids of 29, as OpenAI's Chat Completions look.

These ids identify, they do not authenticate (API key secrets come from `secrets` in
accounts/keys.py), so a fast generator seeded from the OS is enough; `secrets.choice` per
character cost 7% of a worker's CPU on the hot path.
"""

import hashlib
import os
import random
import string

_ALPHABET = string.ascii_letters + string.digits
# Explicit process state: one generator, seeded from the OS, re-seeded in forked workers.
_rng = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(32)))


def _token(n: int = 24) -> str:
    return "".join(_rng.choices(_ALPHABET, k=n))


def message_id() -> str:
    return "msg_" + _token()


def chat_completion_id() -> str:
    return "chatcmpl-" + _token(29)


def tool_use_id() -> str:
    return "toolu_" + _token()


def response_id() -> str:
    """An OpenAI Responses answer's id (`resp_...`)."""
    return "resp_" + _token()


def request_id() -> str:
    return "req_" + _token()


def random_bits(bits: int) -> int:
    """A non-zero random number of `bits` bits (trace and span ids)."""
    return _rng.getrandbits(bits) or 1


def hashed_user_id(user_id: str) -> str:
    """A client's end-user id as providers get it on translated routes: a stable digest, never
    the id itself (it may be an e-mail address)."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:32]
