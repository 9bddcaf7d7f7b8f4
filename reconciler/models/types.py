"""What a chat completion takes and gives, as frozen records (specs/models.md).

These are the runner's vocabulary for a `model` step and the shapes `ChatModel` maps onto the
OpenAI chat-completions wire format; nothing here imports httpx, so the runner's journal and
the CLI can use them cheaply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.errors import ClonedError

Role = Literal["system", "user", "assistant", "tool"]
FailureKind = Literal["unreachable", "refused", "throttled", "server", "invalid", "schema"]


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for; `arguments` is the JSON text it sent, unparsed."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Message:
    """One chat message: a `tool` message answers the call `tool_call_id`; an `assistant`
    message may carry the `tool_calls` it made (its content then may be None)."""

    role: Role
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ToolSpec:
    """A tool offered to the model: its name, what it does, its JSON Schema for arguments."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    """Tokens the endpoint says it read (`prompt_tokens`) and wrote (`completion_tokens`)."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Completion:
    """The model's answer: its text (None when it only called tools), the calls it asked for,
    what it cost in tokens, why it stopped (`stop`, `length`, `tool_calls`...), and which model
    the endpoint says answered."""

    text: str | None
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    finish_reason: str
    model: str


class ModelFailed(ClonedError):
    """A completion that did not come back as the contract says (specs/models.md, "Errors").

    `kind`: "unreachable" (no answer: connection, timeout), "refused" (401/403, or the egress
    rules forbid the host), "throttled" (429 after the bounded retries; `retry_after` is the
    endpoint's wait, in seconds, when it gave one), "server" (5xx), "invalid" (any other
    status, or an answer that is not the chat-completions shape), "schema" (structured output
    that does not match the step's schema). Messages name the Model and the URL, never the key,
    the prompt or the answer: they go to audit logs."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.kind: FailureKind = kind
        self.status = status
        self.retry_after = retry_after
