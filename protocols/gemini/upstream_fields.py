"""What a Gemini answer's fields mean in the IR: thinking envelopes, stop reasons, refusal
details, usage (reference 5.8-5.10, 5.12.3). Pure; read by upstream_stream.py's `GeminiTurn`.
"""

from __future__ import annotations

import re
from typing import Any

from core import ir
from core.target import Target
from protocols.envelope import seal
from protocols.gemini.request import PROVIDER

# fmt: off
REFUSALS = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
})
# fmt: on


def thinking_signature(target: Target, thought_signature: str | None) -> str:
    """The envelope a thinking block carries, with the thought signature to replay (5.12.3)."""
    data = {"ts": thought_signature} if thought_signature else {}
    return seal(PROVIDER, target.upstream_model, data, target.signing_key)


# Why Gemini stopped or blocked (finishReason, promptFeedback.blockReason) -> Anthropic's
# refusal category: harm filters are `general_harms`; recitation, a blocklist or an unnamed
# reason have no named category.
# fmt: off
REFUSAL_CATEGORIES: dict[str, ir.RefusalCategory] = dict.fromkeys((
    "SAFETY", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT",
), "general_harms")
# fmt: on
EXPLANATION_CHARS = 1000
_NAME = re.compile(r"[A-Z_]{1,64}")


def refusal_details(reason: Any, ratings: Any, message: Any, *, prompt: bool) -> ir.StopDetails:
    """A refusal's `stop_details`: the category from the reason; the explanation from Gemini's
    own text (`finishMessage`, `blockReasonMessage`), else the reason and the harm categories
    its safety ratings blocked."""
    reason = reason if isinstance(reason, str) and _NAME.fullmatch(reason) else None
    if isinstance(message, str) and message:
        explanation = message[:EXPLANATION_CHARS]
    else:
        blocked = [
            str(r.get("category"))
            for r in (ratings if isinstance(ratings, list) else ())
            if isinstance(r, dict) and r.get("blocked") and _NAME.fullmatch(str(r.get("category")))
        ][:8]
        what = "prompt blocked" if prompt else "output stopped"
        explanation = f"{what}: {reason or 'unspecified'}" + (
            f" ({', '.join(blocked)})" if blocked else ""
        )
    return ir.StopDetails(category=REFUSAL_CATEGORIES.get(reason or ""), explanation=explanation)


def stop_reason(finish: Any, saw_tool: bool, blocked: bool) -> ir.StopReason:
    """Reference 5.9.1: Gemini says STOP even when it called functions."""
    if saw_tool:
        return "tool_use"
    if blocked or finish in REFUSALS:
        return "refusal"
    if finish == "MAX_TOKENS":
        return "max_tokens"
    return "end_turn"


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) else 0


def usage_from(meta: Any) -> ir.Usage | None:
    """Reference 5.10: the prompt count includes cached tokens; candidates exclude thoughts."""
    if not isinstance(meta, dict):
        return None
    cached = _count(meta, "cachedContentTokenCount")
    thoughts = _count(meta, "thoughtsTokenCount")
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    return ir.Usage(
        input_tokens=max(0, prompt - cached),
        output_tokens=_count(meta, "candidatesTokenCount") + thoughts,
        cache_read_input_tokens=cached,
        reasoning_tokens=thoughts,
    )
