"""A local OpenAI-compatible chat-completions server for tests and the bench.

One HTTP server (stdlib http.server in a thread, on 127.0.0.1 port 0, Nagle off) answers
`POST /v1/chat/completions` from a script and `GET /v1/models` with its one model. The script
is a queue: each request takes the next entry, a `Reply` (text and/or tool calls, usage,
finish reason) or a `Raw` answer (any status, headers and body: a 429 with Retry-After, a 500,
a malformed body). With the queue empty it answers `default`, or 500 when there is none. Every
request is logged (`requests`: path, whether its key was right, and the body's messages,
max_tokens, tools and response_format), those refused for a wrong key included.

Use:
    server = FakeOpenAI.start(api_key="sk-test")
    server.reply(text="Hello")                                   # next answer
    server.reply(tool_calls=[Call("get_weather", '{"city": "Paris"}')], usage=(40, 12))
    server.throttle(retry_after="1")                             # one 429 first
    server.fail(500)
    server.base_url                                               # http://127.0.0.1:PORT/v1
    server.requests[-1].messages
    server.stop()
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "fake-chat-1"
CREATED = 1_700_000_000


@dataclass(frozen=True)
class Call:
    """A tool call the scripted model makes; `arguments` is the JSON text it sends."""

    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """A chat completion: `finish_reason` defaults to "tool_calls" when there are calls, else
    "stop"; `usage` is (prompt_tokens, completion_tokens), counted roughly when not given."""

    text: str | None = None
    tool_calls: tuple[Call, ...] = ()
    usage: tuple[int, int] | None = None
    finish_reason: str | None = None
    model: str | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Raw:
    """Any answer at all: a status, headers and a body (bytes, or a value sent as JSON)."""

    status: int
    body: Any = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Seen:
    """One request as the server got it."""

    method: str
    path: str
    authorised: bool
    body: Any

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []

    @property
    def max_tokens(self) -> Any:
        return self.body.get("max_tokens") if isinstance(self.body, dict) else None

    @property
    def tools(self) -> Any:
        return self.body.get("tools") if isinstance(self.body, dict) else None

    @property
    def response_format(self) -> Any:
        return self.body.get("response_format") if isinstance(self.body, dict) else None


@dataclass
class FakeOpenAI:
    """The server's script and log, and the test's handle on both (see the module)."""

    api_key: str | None
    model: str = MODEL
    default: Reply | Raw | None = None
    script: deque[Reply | Raw] = field(default_factory=deque)
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None
    ids: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def start(
        cls,
        *,
        api_key: str | None = "sk-test",
        model: str = MODEL,
        default: Reply | Raw | None = None,
    ) -> FakeOpenAI:
        """A running server that wants `api_key` as its bearer token (None: no key needed)."""
        fake = cls(api_key=api_key, model=model, default=default)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
        server.daemon_threads = True
        fake.server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return fake

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reply(
        self,
        text: str | None = None,
        *,
        tool_calls: list[Call] | tuple[Call, ...] = (),
        usage: tuple[int, int] | None = None,
        finish_reason: str | None = None,
        model: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Queue one completion."""
        self.push(Reply(text, tuple(tool_calls), usage, finish_reason, model, delay))

    def throttle(self, *, retry_after: str | None = "1", times: int = 1) -> None:
        """Queue `times` 429 answers, each with `Retry-After` when given."""
        headers = (("Retry-After", retry_after),) if retry_after is not None else ()
        body = {"error": {"message": "Rate limit reached", "type": "requests", "code": None}}
        for _ in range(times):
            self.push(Raw(429, body, headers))

    def fail(self, status: int = 500, *, message: str = "The server had an error") -> None:
        """Queue one error answer in OpenAI's error shape."""
        self.push(Raw(status, {"error": {"message": message, "type": "server_error"}}))

    def push(self, entry: Reply | Raw) -> None:
        with self.lock:
            self.script.append(entry)

    def completions(self) -> list[Seen]:
        """The chat-completion requests received, in order."""
        with self.lock:
            return [seen for seen in self.requests if seen.path.endswith("/chat/completions")]

    def _next(self) -> Reply | Raw | None:
        with self.lock:
            return self.script.popleft() if self.script else self.default

    def _record(self, seen: Seen) -> None:
        with self.lock:
            self.requests.append(seen)


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        server_state = fake

    return Handler


class _Handler(BaseHTTPRequestHandler):
    server_state: FakeOpenAI
    protocol_version = "HTTP/1.1"  # keep-alive, so a pooled client reuses the connection
    disable_nagle_algorithm = True  # TCP_NODELAY: small answers go out at once

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        fake = self.server_state
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        wanted = fake.api_key
        authorised = wanted is None or self.headers.get("Authorization") == f"Bearer {wanted}"
        path = self.path.split("?", 1)[0]
        fake._record(Seen(method, path, authorised, body))
        if not authorised:
            self._json(401, _error("Incorrect API key provided.", "invalid_api_key"))
        elif method == "GET" and path == "/v1/models":
            model = {"id": fake.model, "object": "model", "created": CREATED, "owned_by": "fake"}
            self._json(200, {"object": "list", "data": [model]})
        elif method == "POST" and path == "/v1/chat/completions":
            self._complete(fake, body)
        else:
            self._json(404, _error(f"no route {method} {path}", "unknown_url"))

    def _complete(self, fake: FakeOpenAI, body: Any) -> None:
        entry = fake._next()
        if entry is None:
            self._json(500, _error("the fake's script is empty", "fake_script_exhausted"))
        elif isinstance(entry, Raw):
            self._send(entry.status, entry.body, entry.headers)
        else:
            if entry.delay and fake.stopping.wait(entry.delay):
                return
            self._json(200, _completion(fake, entry, body, next(fake.ids)))

    def _json(self, status: int, value: Any) -> None:
        self._send(status, value, ())

    def _send(self, status: int, body: Any, headers: tuple[tuple[str, str], ...]) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


def _completion(fake: FakeOpenAI, reply: Reply, request: Any, number: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id or f"call_{number}_{index}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for index, call in enumerate(reply.tool_calls)
        ]
    prompt, completion = reply.usage or (_rough_tokens(request), len(reply.text or "") // 4 + 1)
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": CREATED,
        "model": reply.model or fake.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": reply.finish_reason
                or ("tool_calls" if reply.tool_calls else "stop"),
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _rough_tokens(request: Any) -> int:
    """About four characters a token, as a real tokenizer roughly counts English."""
    messages = request.get("messages", []) if isinstance(request, dict) else []
    return sum(len(str(m.get("content") or "")) for m in messages if isinstance(m, dict)) // 4 + 1
