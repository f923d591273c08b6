"""A scripted fake of the upstream LLM APIs (OpenAI Chat, Anthropic, OpenAI Responses, Gemini).

`app.create_app()` builds the ASGI app; `python -m tests.fake_upstream --port 9100` serves it;
`server.FakeUpstream` runs it in a subprocess for tests. Wire formats follow the protocol
reference, llm-protocols.md (sections 1.7, 2.5-2.7, 3.5-3.6, 4.5-4.7, 5.9.2, 5.10).
"""
