"""The per-tenant prompt cache key (gateway/prompt_cache.py)."""

from core import ir
from gateway import prompt_cache


def request(system: str = "You are a coding agent.", question: str = "hi", **extra):
    return ir.Request(
        model="m",
        max_tokens=10,
        system=[ir.Text(system)] if system else [],
        tools=[ir.Tool(name="bash", input_schema={"type": "object"})],
        messages=[ir.Message("user", [ir.Text(question)])],
        **extra,
    )


def test_a_tenants_turns_with_the_same_prefix_share_one_key():
    assert prompt_cache.key_for(1, request(question="a")) == prompt_cache.key_for(
        1, request(question="b")
    )


def test_two_tenants_never_share_a_key():
    assert prompt_cache.key_for(1, request()) != prompt_cache.key_for(2, request())


def test_another_system_prompt_or_tool_set_is_another_key():
    base = prompt_cache.key_for(1, request())
    assert prompt_cache.key_for(1, request(system="Other.")) != base
    other_tools = request()
    other_tools.tools = []
    assert prompt_cache.key_for(1, other_tools) != base


def test_a_key_the_client_chose_is_hashed_with_its_tenant():
    options = {"openai": {"prompt_cache_key": "shared"}}
    mine = prompt_cache.key_for(1, request(provider_options=options))
    theirs = prompt_cache.key_for(2, request(provider_options=options))
    assert mine != theirs and "shared" not in mine
    assert mine != prompt_cache.key_for(1, request())


def test_keys_are_short_and_plain():
    key = prompt_cache.key_for(1, request())
    assert key.startswith("tg-") and len(key) == 3 + prompt_cache.KEY_CHARS
