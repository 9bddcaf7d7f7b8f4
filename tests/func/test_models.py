"""ChatModel against a real local OpenAI-compatible server (tests/fakes/openai_server.py): what
a `model` step sends, what it reads back, what it costs, and how each failure is reported; and
the fake driven by the real `openai` SDK, so the fake is shown to speak the API it imitates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.egress.rules import PackEgress
from reconciler.model.kinds import ModelSpec
from reconciler.models.client import MAX_WAIT, ChatModel, chat_url
from reconciler.models.types import Message, ModelFailed, ToolCall, ToolSpec, Usage
from tests.conftest import cloned, commit_all, write
from tests.fakes.openai_server import Call, FakeOpenAI, Raw

KEY = "sk-test-7f3a9c2e51d04b8e"
PROMPT = "Summarise the quarterly numbers for ACME-4471"
ANSWER = "Revenue rose 12% on strong widget sales (ref WIDGET-9931)"
WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
REPORT = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "pages": {"type": "integer", "minimum": 1}},
    "required": ["title", "pages"],
}


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.start(api_key=KEY) as fake:
        yield fake


def spec(base_url: str, **extra: Any) -> ModelSpec:
    return ModelSpec.model_validate(
        {"api": "openai-chat", "baseUrl": base_url, "model": "qwen2.5-7b", **extra}
    )


class Sleeps:
    """The client's injected sleep: records each wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client(
    server: FakeOpenAI, *, key: str | None = KEY, sleep: Sleeps | None = None, **extra: Any
) -> ChatModel:
    return ChatModel("local", spec(server.base_url, **extra), api_key=key, sleep=sleep or Sleeps())


def ask(model: ChatModel, **options: Any) -> Any:
    return model.complete(
        [Message("user", PROMPT)], max_tokens=options.pop("max_tokens", 64), **options
    )


def failure(model: ChatModel, **options: Any) -> ModelFailed:
    with pytest.raises(ModelFailed) as caught:
        ask(model, **options)
    text = f"{caught.value} {caught.value.hint or ''}"
    for secret in (KEY, PROMPT, ANSWER):
        assert secret not in text  # errors go to audit logs
    return caught.value


def test_a_text_answer_its_usage_and_cost(server: FakeOpenAI) -> None:
    server.reply(ANSWER, usage=(1200, 300))
    price = {"inputPerMTok": 0.15, "outputPerMTok": 0.6}
    with client(server, price=price) as model:
        completion = model.complete(
            [Message("system", "Be brief."), Message("user", PROMPT)], max_tokens=800
        )
        assert completion.text == ANSWER
        assert completion.usage == Usage(1200, 300)
        assert completion.finish_reason == "stop"
        assert completion.model == "fake-chat-1"
        assert model.cost(completion.usage) == pytest.approx(1200 * 0.15e-6 + 300 * 0.6e-6)
    [seen] = server.completions()
    assert seen.authorised
    assert seen.body == {
        "model": "qwen2.5-7b",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": PROMPT},
        ],
        "max_tokens": 800,
    }  # no temperature, no tools, no response_format unless asked


def test_a_model_without_a_price_costs_nothing(server: FakeOpenAI) -> None:
    server.reply("ok", usage=(10_000, 5_000))
    with client(server) as model:
        assert model.cost(ask(model).usage) == 0.0


def test_a_base_url_with_a_trailing_slash_posts_to_the_same_path() -> None:
    assert chat_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1/chat/completions"
    assert chat_url("https://api.openai.com/v1") == "https://api.openai.com/v1/chat/completions"


def test_tool_calls_round_trip(server: FakeOpenAI) -> None:
    server.reply(tool_calls=[Call("get_weather", '{"city": "Paris"}', id="call_9")])
    server.reply("It is sunny in Paris.")
    with client(server) as model:
        first = model.complete([Message("user", "Weather?")], max_tokens=50, tools=[WEATHER])
        assert first.text is None
        assert first.finish_reason == "tool_calls"
        assert first.tool_calls == (ToolCall("call_9", "get_weather", '{"city": "Paris"}'),)
        history = [
            Message("user", "Weather?"),
            Message("assistant", None, tool_calls=first.tool_calls),
            Message("tool", '{"sky": "clear"}', tool_call_id="call_9", name="get_weather"),
        ]
        second = model.complete(history, max_tokens=50, tools=[WEATHER])
    assert second.text == "It is sunny in Paris."
    asked, answered = server.completions()
    assert asked.tools == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER.parameters,
            },
        }
    ]
    assert answered.messages[1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {
            "role": "tool",
            "content": '{"sky": "clear"}',
            "tool_call_id": "call_9",
            "name": "get_weather",
        },
    ]


def test_structured_output_is_asked_for_and_checked(server: FakeOpenAI) -> None:
    server.reply(json.dumps({"title": "Q3", "pages": 4}))
    with client(server) as model:
        completion = ask(model, schema=REPORT)
    assert json.loads(completion.text or "") == {"title": "Q3", "pages": 4}
    assert server.completions()[0].response_format == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": REPORT},
    }


def test_an_answer_asking_for_tool_calls_is_not_checked_against_the_schema(
    server: FakeOpenAI,
) -> None:
    server.reply(tool_calls=[Call("get_weather", '{"city": "Paris"}', id="call_3")])
    with client(server) as model:
        completion = ask(model, schema=REPORT, tools=[WEATHER])
    assert completion.text is None and completion.tool_calls[0].id == "call_3"
    assert server.completions()[0].response_format["type"] == "json_schema"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (json.dumps({"title": ANSWER, "pages": 0}), "at $.pages does not match the schema"),
        (json.dumps({"title": ANSWER}), "at $ does not match the schema (required)"),
        (ANSWER, "structured output is not JSON"),
    ],
)
def test_structured_output_that_does_not_match_names_the_path(
    server: FakeOpenAI, text: str, named: str
) -> None:
    server.reply(text)
    with client(server) as model:
        failed = failure(model, schema=REPORT)
    assert failed.kind == "schema"
    assert named in str(failed)


def test_a_wrong_key_is_refused_and_the_key_is_never_shown(server: FakeOpenAI) -> None:
    with client(server, key="sk-wrong-key-0000") as model:
        failed = failure(model)
    assert (failed.kind, failed.status) == ("refused", 401)
    assert "invalid_api_key" in str(failed)
    assert "sk-wrong-key-0000" not in f"{failed} {failed.hint}"
    assert not server.completions()[0].authorised


def test_403_is_refused(server: FakeOpenAI) -> None:
    server.push(Raw(403, {"error": {"message": f"no access to {PROMPT}", "code": "forbidden"}}))
    with client(server) as model:
        failed = failure(model)
    assert (failed.kind, failed.status) == ("refused", 403)
    assert "forbidden" in str(failed)  # the error's code, not its message (it may echo input)


def test_429_is_retried_after_retry_after_then_answers(server: FakeOpenAI) -> None:
    sleeps = Sleeps()
    server.throttle(retry_after="3", times=2)
    server.reply(ANSWER)
    with client(server, sleep=sleeps) as model:
        assert ask(model).text == ANSWER
    assert sleeps.waits == [3.0, 3.0]
    assert len(server.completions()) == 3


def test_429_retries_are_bounded(server: FakeOpenAI) -> None:
    sleeps = Sleeps()
    server.throttle(retry_after=None, times=5)
    with client(server, sleep=sleeps) as model:
        failed = failure(model)
    assert (failed.kind, failed.status) == ("throttled", 429)
    assert sleeps.waits == [1.0, 2.0]  # its own backoff without Retry-After
    assert len(server.completions()) == 3


def test_a_retry_after_past_the_cap_fails_at_once_and_says_how_long(server: FakeOpenAI) -> None:
    sleeps = Sleeps()
    server.throttle(retry_after=str(int(MAX_WAIT) + 40))
    with client(server, sleep=sleeps) as model:
        failed = failure(model)
    assert (failed.kind, failed.retry_after) == ("throttled", MAX_WAIT + 40)
    assert sleeps.waits == []
    assert len(server.completions()) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_a_server_failure_and_not_retried(server: FakeOpenAI, status: int) -> None:
    server.fail(status, message=f"crashed while reading {PROMPT}")
    with client(server) as model:
        failed = failure(model)
    assert (failed.kind, failed.status) == ("server", status)
    assert len(server.completions()) == 1


def test_no_server_is_unreachable() -> None:
    fake = FakeOpenAI.start(api_key=None)
    base_url = fake.base_url
    fake.stop()
    with ChatModel("local", spec(base_url), api_key=KEY) as model:
        failed = failure(model)
    assert failed.kind == "unreachable"
    assert "local" in str(failed)


def test_an_answer_slower_than_the_timeout_is_unreachable(server: FakeOpenAI) -> None:
    server.reply(ANSWER, delay=5)
    with client(server) as model:
        failed = failure(model, timeout=0.3)
    assert failed.kind == "unreachable"


def completion_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
    }
    body.update(changes)
    return body


def message(**fields: Any) -> list[dict[str, Any]]:
    return [{"index": 0, "message": {"role": "assistant", **fields}, "finish_reason": "stop"}]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"<html>" + ANSWER.encode(), "body: expected JSON"),
        (completion_body(choices=[]), "$.choices: expected a non-empty list"),
        (completion_body(usage=None), "$.usage: expected an object"),
        (
            completion_body(usage={"prompt_tokens": -1, "completion_tokens": 2}),
            "$.usage.prompt_tokens",
        ),
        (
            completion_body(usage={"prompt_tokens": True, "completion_tokens": 2}),
            "$.usage.prompt_tokens",
        ),
        (completion_body(choices=message(content=7)), "$.choices[0].message.content"),
        (completion_body(choices=message(content=None)), "content or tool_calls"),
        (
            completion_body(
                choices=message(content=None, tool_calls=[{"id": "c", "type": "function"}])
            ),
            "$.choices[0].message.tool_calls[0].function",
        ),
        (completion_body(choices=message(role="user", content=ANSWER)), "message.role"),
        (completion_body(model=None), "$.model: expected a string"),
    ],
)
def test_an_answer_off_the_contract_is_invalid(server: FakeOpenAI, body: Any, where: str) -> None:
    server.push(Raw(200, body))
    with client(server) as model:
        failed = failure(model)
    assert failed.kind == "invalid"
    assert where in str(failed)


def test_another_status_is_invalid(server: FakeOpenAI) -> None:
    server.push(Raw(404, {"error": {"message": "model qwen not found", "code": "model_not_found"}}))
    with client(server) as model:
        failed = failure(model)
    assert (failed.kind, failed.status) == ("invalid", 404)
    assert "model_not_found" in str(failed)


def test_a_host_a_pack_denies_is_refused_before_any_request(server: FakeOpenAI) -> None:
    deny = [PackEgress("corp", deny_hosts=("127.0.0.1",))]
    with ChatModel("local", spec(server.base_url), api_key=KEY, denies=deny) as model:
        failed = failure(model)
    assert failed.kind == "refused"
    assert "pack corp egress.denyHosts: 127.0.0.1" in str(failed)
    assert server.requests == []


def test_a_model_reaches_only_its_own_origin_and_no_private_address(server: FakeOpenAI) -> None:
    # A name (not a loopback literal) that resolves to this machine or a private network is
    # refused before connecting, as for every other SafeFetch caller.
    for address in ("127.0.0.1", "10.1.2.3"):
        model = ChatModel(
            "hosted",
            spec(f"http://models.example:{server.port}/v1"),
            api_key=KEY,
            resolver=lambda host, port, answer=address: [answer],
        )
        with model:
            failed = failure(model)
        assert failed.kind == "refused"
        assert f"models.example is {address}" in str(failed)
    assert server.requests == []


def test_without_a_key_no_authorization_is_sent() -> None:
    with FakeOpenAI.start(api_key=None) as fake:
        fake.reply("hi")
        with ChatModel("local", spec(fake.base_url), api_key=None) as model:
            assert ask(model).text == "hi"
    # A key the server did not ask for would still be sent; none was given, so none went.
    assert fake.completions()[0].authorised


# --- Fidelity: the real OpenAI SDK against the fake --------------------------------------------


@pytest.fixture
def sdk(server: FakeOpenAI) -> Any:
    openai = pytest.importorskip("openai")
    return openai.OpenAI(api_key=KEY, base_url=server.base_url, max_retries=0, timeout=10)


def test_the_sdk_reads_a_text_reply_and_its_usage(server: FakeOpenAI, sdk: Any) -> None:
    server.reply(ANSWER, usage=(21, 9))
    response = sdk.chat.completions.create(
        model="qwen2.5-7b", messages=[{"role": "user", "content": PROMPT}], max_tokens=30
    )
    assert response.choices[0].message.content == ANSWER
    assert response.choices[0].finish_reason == "stop"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (21, 9)
    assert server.completions()[0].max_tokens == 30
    assert [model.id for model in sdk.models.list()] == ["fake-chat-1"]


def test_the_sdk_reads_a_tool_call(server: FakeOpenAI, sdk: Any) -> None:
    server.reply(tool_calls=[Call("get_weather", '{"city": "Oslo"}', id="call_1")])
    response = sdk.chat.completions.create(
        model="qwen2.5-7b",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[
            {
                "type": "function",
                "function": {"name": "get_weather", "parameters": WEATHER.parameters},
            }
        ],
    )
    [call] = response.choices[0].message.tool_calls
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_1",
        "get_weather",
        '{"city": "Oslo"}',
    )
    assert response.choices[0].finish_reason == "tool_calls"


def test_the_sdk_sees_a_wrong_key_as_authentication_error(server: FakeOpenAI) -> None:
    openai = pytest.importorskip("openai")
    wrong = openai.OpenAI(api_key="sk-nope", base_url=server.base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


def test_what_chatmodel_sends_the_sdk_sends_too(server: FakeOpenAI, sdk: Any) -> None:
    # The same request through both clients reaches the fake as the same body.
    server.reply('{"title": "a", "pages": 1}')
    server.reply('{"title": "b", "pages": 2}')
    with client(server) as model:
        model.complete([Message("user", PROMPT)], max_tokens=64, tools=[WEATHER], schema=REPORT)
    sdk.chat.completions.create(
        model="qwen2.5-7b",
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=64,
        tools=[
            {
                "type": "function",
                "function": {
                    "name": WEATHER.name,
                    "description": WEATHER.description,
                    "parameters": WEATHER.parameters,
                },
            }
        ],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": REPORT},
        },
    )
    ours, theirs = server.completions()
    assert ours.body == theirs.body


# --- The Model resource through plan and apply -------------------------------------------------

MODEL_YAML = (
    "apiVersion: cloned/v1\nkind: Model\nmetadata: {name: local}\n"
    "spec: {api: openai-chat, baseUrl: 'http://127.0.0.1:8000/v1', model: qwen2.5-7b,"
    " price: {inputPerMTok: 0.15, outputPerMTok: 0.6}}\n"
)


def test_a_new_model_after_bootstrap_is_planned_and_needs_an_admin(applied: Path) -> None:
    write(applied, ".cloned/local-model.yaml", MODEL_YAML)
    commit_all(applied, "a model")
    plan = json.loads(cloned("plan", "--json", cwd=applied).out)
    [created] = [c for c in plan["changes"] if c["address"] == "model.local"]
    assert (created["action"], created["decision"], created["risk"]) == (
        "create",
        "approval",
        "medium",
    )
    assert [r["rule"] for r in created["rules"]] == ["baseline/model-change"]
