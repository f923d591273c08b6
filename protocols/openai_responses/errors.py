"""The Responses API's error shape: the Chat Completions one (reference 3.7). Pure.

An error body is `{"error": {"message", "type", "param", "code"}}`, and a stream's `error`
event (or a `response.failed`'s `response.error`) carries the same fields; see
protocols/openai_chat/errors.py.
"""

from protocols.openai_chat.errors import ERROR_KINDS, error_codes, stream_error

__all__ = ["ERROR_KINDS", "error_codes", "stream_error"]
