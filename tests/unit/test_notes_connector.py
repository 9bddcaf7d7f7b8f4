"""The builtin `notes` connector, run as a real process and spoken to over stdio JSON-RPC
(newline-delimited, as the MCP stdio transport)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

NOTES = REPO / "connectors" / "notes"


class Session:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.next_id = 0

    def send(self, message: dict[str, Any] | str) -> None:
        assert self.proc.stdin is not None
        line = message if isinstance(message, str) else json.dumps(message)
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the server closed its output"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def request(self, method: str, params: Any = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        answer = self.receive()
        assert answer["id"] == self.next_id and answer["jsonrpc"] == "2.0"
        return answer

    def call(self, tool: str, **arguments: str) -> dict[str, Any]:
        answer = self.request("tools/call", {"name": tool, "arguments": arguments})
        result: dict[str, Any] = answer["result"]
        return result


def start(env: dict[str, str]) -> Session:
    proc = subprocess.Popen(
        [sys.executable, "server.py"],
        cwd=NOTES,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1", **env},
    )
    return Session(proc)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def session(data: Path) -> Iterator[Session]:
    server = start({"CLONED_CONNECTOR_DATA": str(data)})
    yield server
    assert server.proc.stdin is not None
    server.proc.stdin.close()
    assert server.proc.wait(timeout=10) == 0


def handshake(session: Session) -> dict[str, Any]:
    answer = session.request(
        "initialize",
        {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t"}},
    )
    session.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    result: dict[str, Any] = answer["result"]
    return result


def test_initialize_ping_and_tools_list(session: Session) -> None:
    init = handshake(session)
    assert init["protocolVersion"] == "2025-06-18"
    assert "tools" in init["capabilities"] and init["serverInfo"]["name"] == "notes"
    assert session.request("ping")["result"] == {}
    tools = session.request("tools/list")["result"]["tools"]
    assert [t["name"] for t in tools] == ["add_note", "list_notes", "read_note"]
    add = next(t for t in tools if t["name"] == "add_note")
    assert add["inputSchema"]["type"] == "object"
    assert add["inputSchema"]["required"] == ["name", "text"]


def test_notes_are_files_in_the_data_folder(session: Session, data: Path) -> None:
    handshake(session)
    assert session.call("list_notes") == {
        "content": [{"type": "text", "text": "(no notes)"}],
        "isError": False,
    }
    assert session.call("add_note", name="groceries", text="milk\neggs\n")["isError"] is False
    assert (data / "groceries.txt").read_text() == "milk\neggs\n"
    session.call("add_note", name="alpha", text="first")
    assert session.call("list_notes")["content"][0]["text"] == "alpha\ngroceries"
    assert session.call("read_note", name="groceries")["content"][0]["text"] == "milk\neggs\n"
    again = session.call("add_note", name="groceries", text="overwrite?")
    assert again["isError"] is True and "already exists" in again["content"][0]["text"]
    assert (data / "groceries.txt").read_text() == "milk\neggs\n"
    missing = session.call("read_note", name="nope")
    assert missing["isError"] is True
    assert sorted(p.name for p in data.iterdir()) == ["alpha.txt", "groceries.txt"]


def test_bad_calls_get_json_rpc_errors_and_the_server_keeps_going(
    session: Session, data: Path
) -> None:
    handshake(session)
    assert session.request("resources/list")["error"]["code"] == -32601
    bad_name = session.request(
        "tools/call", {"name": "read_note", "arguments": {"name": "../../etc/passwd"}}
    )
    assert bad_name["error"]["code"] == -32602
    unknown = session.request("tools/call", {"name": "delete_everything", "arguments": {}})
    assert unknown["error"]["code"] == -32602
    extra = session.request("tools/call", {"name": "list_notes", "arguments": {"path": "/"}})
    assert extra["error"]["code"] == -32602
    session.send("{not json")
    assert session.receive()["error"]["code"] == -32700
    session.send({"jsonrpc": "2.0", "id": 99, "params": {}})
    assert session.receive() == {
        "jsonrpc": "2.0",
        "id": 99,
        "error": {"code": -32600, "message": "invalid request"},
    }
    assert session.request("ping")["result"] == {}
    assert list(data.iterdir()) == []


def test_without_a_data_folder_tools_fail_clearly() -> None:
    server = start({})
    handshake(server)
    result = server.call("list_notes")
    assert result["isError"] is True and "CLONED_CONNECTOR_DATA" in result["content"][0]["text"]
    assert server.proc.stdin is not None
    server.proc.stdin.close()
    assert server.proc.wait(timeout=10) == 0
