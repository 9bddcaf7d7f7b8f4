"""Models: the client a pipeline's `model` step talks to (specs/models.md).

`types.py` holds the messages, tool calls, usage and the one error (`ModelFailed`), importable
without loading httpx; `client.py` is `ChatModel`, which speaks the OpenAI chat-completions
subset over SafeFetch to the applied Model's base URL and nowhere else. This layer sits beside
the connector runtime: above the HTTP adapter and the egress rules, below the providers."""
