"""Thinking across providers: returned as thinking blocks, replayed only where it came from."""

import pytest

KINDS = ["openai", "gemini", "openai_responses"]
THINK = {"type": "enabled", "budget_tokens": 2048}


def setup(stage, kind: str) -> str:
    stage.apply(
        providers=[stage.provider(kind), stage.provider("anthropic")],
        models=[
            stage.model(
                "claude-think", [{"provider": f"{kind}-fake", "upstream_model": "gpt-5-reasoning"}]
            ),
            stage.model(
                "claude-real", [{"provider": "anthropic-fake", "upstream_model": "claude-up"}]
            ),
        ],
        tenants=[{"name": "acme"}],
    )
    return stage.tenant_key("acme")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_reasoning_comes_back_as_a_signed_thinking_block(stage, kind, stream):
    client = stage.client(setup(stage, kind))
    ask = {
        "model": "claude-think",
        "max_tokens": 4096,
        "thinking": THINK,
        "messages": [{"role": "user", "content": "What is 27 * 453?"}],
    }
    if stream:
        with client.messages.stream(**ask) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**ask)
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking.startswith("Thinking about: What is 27 * 453?")
    assert message.content[0].signature.startswith("tg1.")


@pytest.mark.parametrize("kind", KINDS)
def test_no_thinking_blocks_unless_the_client_asked(stage, kind):
    client = stage.client(setup(stage, kind))
    message = client.messages.create(
        model="claude-think", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    assert [b.type for b in message.content] == ["text"]


def test_thinking_is_replayed_to_its_provider_and_stripped_for_anthropic(stage):
    client = stage.client(setup(stage, "openai_responses"))
    first = client.messages.create(
        model="claude-think",
        max_tokens=4096,
        thinking=THINK,
        messages=[{"role": "user", "content": "Think first."}],
    )
    thinking = first.content[0]
    history = [
        {"role": "user", "content": "Think first."},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "thinking",
                    "thinking": thinking.thinking,
                    "signature": thinking.signature,
                },
                {"type": "text", "text": first.content[1].text},
            ],
        },
        {"role": "user", "content": "And now?"},
    ]
    client.messages.create(model="claude-think", max_tokens=4096, thinking=THINK, messages=history)
    items = stage.upstream.requests("gpt-5-reasoning")[-1]["body"]["input"]
    reasoning = [i for i in items if i.get("type") == "reasoning"]
    assert len(reasoning) == 1 and reasoning[0]["encrypted_content"]  # restored, as sent

    client.messages.create(model="claude-real", max_tokens=4096, thinking=THINK, messages=history)
    sent = stage.upstream.requests("claude-up")[-1]["body"]["messages"][1]["content"]
    assert [b["type"] for b in sent] == ["text"]  # Anthropic would reject our signature
