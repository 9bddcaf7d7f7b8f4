"""A process that supervises two fake connectors, has one fork a grandchild, prints every pid
as one JSON line and then waits to be killed (the no-orphans test SIGKILLs it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio

from reconciler.redact import Redactor
from reconciler.runtime.supervisor import Supervisor
from reconciler.runtime.types import Launch
from tests.fakes.runtime_helpers import fake_launch


async def main(tmp: Path) -> None:
    async with Supervisor(redactor=Redactor()) as supervisor:
        first, second = fake_launch(tmp, "first"), fake_launch(tmp, "second")
        pids: list[int] = []

        async def start(launch: Launch) -> None:
            result = await supervisor.call_tool(launch, "pid", {}, timeout=10)
            pids.append(int(result.content[0]["text"]))

        async with anyio.create_task_group() as group:
            group.start_soon(start, first)
            group.start_soon(start, second)
        child = await supervisor.call_tool(first, "spawn_child", {}, timeout=10)
        pids.append(int(child.content[0]["text"]))
        print(json.dumps(pids), flush=True)
        await anyio.sleep(3600)


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]))
