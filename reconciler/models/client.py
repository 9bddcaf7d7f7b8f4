"""`ChatModel`: one applied Model's chat-completions endpoint, reached through SafeFetch.

Flow: the runner builds a `ChatModel` from the applied Model (its spec, the key the vault read
for its `apiKey`, the active packs' egress) -> `complete` POSTs `{baseUrl}/chat/completions`
through SafeFetch with the Model's own rules (`EgressRules.for_model`: its base URL's scheme,
host and port and nothing else; the packs' `denyHosts` still win), every address checked and
pinned -> the answer is read strictly (`wire.parse_completion`) and, for structured output,
checked against the step's schema. A base URL naming this machine literally (`127.0.0.1`,
`[::1]`, `localhost`: vLLM, Ollama, llama.cpp) may resolve to loopback, exactly as a local
Registry may. 429 is retried a bounded number of times, honouring `Retry-After` up to a cap;
nothing else is retried (the runner decides what a failed step does)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from reconciler.egress.addresses import is_plain_loopback
from reconciler.egress.hostnames import LOCAL_NAMES, parse_url
from reconciler.egress.rules import EgressRules, PackEgress
from reconciler.http.errors import EgressRefused, HttpFailed
from reconciler.http.safefetch import Resolver, Response, SafeFetch, system_resolver
from reconciler.model.kinds import ModelSpec
from reconciler.models.types import Completion, Message, ModelFailed, ToolSpec, Usage
from reconciler.models.wire import check_output, parse_completion, request_body

MAX_ANSWER_BYTES = 8_000_000
RETRIES = 2
"""429 answers retried after the first try (so at most three requests per completion)."""
MAX_WAIT = 20.0
"""The longest `Retry-After` honoured, in seconds; a longer one fails "throttled" at once."""
BACKOFF = 1.0
"""The wait before the first retry when the endpoint gives no `Retry-After` (then doubled)."""
ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ChatModel:
    """The client of Model `name` (`spec`), sending `api_key` as its bearer token when given."""

    def __init__(
        self,
        name: str,
        spec: ModelSpec,
        *,
        api_key: str | None,
        denies: Sequence[PackEgress] = (),
        resolver: Resolver = system_resolver,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.spec = spec
        self.url = chat_url(spec.base_url)
        self._label = f'model "{name}" ({self.url})'
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        host = parse_url(spec.base_url).host
        local = host.name in LOCAL_NAMES or is_plain_loopback(host.address or "")
        self._http = SafeFetch(
            EgressRules.for_model(name, spec.base_url, denies),
            resolver=resolver,
            max_redirects=2,
            allow_loopback_for=[host.key] if local else [],
        )
        self._sleep = sleep

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        tools: Sequence[ToolSpec] = (),
        schema: Mapping[str, Any] | None = None,
        timeout: float = 60,
    ) -> Completion:
        """One chat completion; `ModelFailed` when it does not come back as specs/models.md
        says (structured output is checked against `schema` when given and the model did not
        ask for tool calls)."""
        body = request_body(
            self.spec.model, messages, max_tokens=max_tokens, tools=tools, schema=schema
        )
        response = self._post(body, timeout)
        completion = parse_completion(response.body, self._label)
        if schema is not None and not completion.tool_calls:
            # An answer that asks for tool calls is not the output yet: the caller answers the
            # calls and asks again (a skill step's turns).
            check_output(completion.text, schema, self._label)
        return completion

    def cost(self, usage: Usage) -> float:
        """USD for `usage` at the Model's prices per million tokens (0 without a price)."""
        price = self.spec.price
        if price is None:
            return 0.0
        return (
            usage.input_tokens * price.input_per_m_tok / 1e6
            + usage.output_tokens * price.output_per_m_tok / 1e6
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __enter__(self) -> ChatModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, body: dict[str, Any], timeout: float) -> Response:
        wait = BACKOFF
        for attempt in range(RETRIES + 1):
            response = self._send(body, timeout)
            if response.status == 200:
                return response
            failure = self._failure(response)
            if failure.kind != "throttled" or attempt == RETRIES:
                raise failure
            delay = wait if failure.retry_after is None else failure.retry_after
            if delay > MAX_WAIT:
                raise failure
            self._sleep(delay)
            wait *= 2
        raise AssertionError("unreachable")  # the loop returns or raises

    def _send(self, body: dict[str, Any], timeout: float) -> Response:
        try:
            return self._http.post_json(
                self.url, body, headers=self._headers, max_bytes=MAX_ANSWER_BYTES, timeout=timeout
            )
        except EgressRefused as exc:
            raise ModelFailed("refused", f"{self._label}: {exc}") from None
        except HttpFailed as exc:
            raise ModelFailed("unreachable", f"{self._label}: no answer: {exc}") from None

    def _failure(self, response: Response) -> ModelFailed:
        status = response.status
        said = _error_code(response.body)
        detail = f"HTTP {status}" + (f" ({said})" if said else "")
        if status in (401, 403):
            hint = "check the secret its apiKey SecretRef names" if status == 401 else None
            return ModelFailed(
                "refused", f"{self._label}: refused: {detail}", status=status, hint=hint
            )
        if status == 429:
            after = _retry_after(response.header("retry-after"))
            return ModelFailed(
                "throttled",
                f"{self._label}: throttled: {detail}",
                status=status,
                retry_after=after,
            )
        if status >= 500:
            return ModelFailed("server", f"{self._label}: server error: {detail}", status=status)
        return ModelFailed("invalid", f"{self._label}: unexpected {detail}", status=status)


def chat_url(base_url: str) -> str:
    """`{baseUrl}/chat/completions`, one slash between them."""
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/chat/completions"))


def _retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` of delta-seconds; None for a date or nothing (this client
    has no wall clock to compare a date with, so it backs off on its own)."""
    if value is None or not re.fullmatch(r"[0-9]{1,6}(\.[0-9]{1,3})?", value.strip()):
        return None
    return float(value)


def _error_code(body: bytes) -> str | None:
    """The OpenAI error's `code` or `type` when it is a short identifier: an error's message
    may echo the prompt, so only that identifier is ever shown."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    if not isinstance(error, dict):
        return None
    for key in ("code", "type"):
        value = error.get(key)
        if isinstance(value, str) and ERROR_CODE.match(value):
            return value
    return None
