"""A process that supervises two fake connectors, has one fork a grandchild, prints every pid
as one JSON line and then waits to be killed (the no-orphans test SIGKILLs it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio

from reconciler.redact import Redactor
from reconciler.runtime.supervisor import Supervisor
from tests.fakes.runtime_helpers import fake_launch


async def main(tmp: Path) -> None:
    async with Supervisor(redactor=Redactor()) as supervisor:
        first, second = fake_launch(tmp, "first"), fake_launch(tmp, "second")
        pids = []
        for launch in (first, second):
            result = await supervisor.call_tool(launch, "pid", {}, timeout=10)
            pids.append(int(result.content[0]["text"]))
        child = await supervisor.call_tool(first, "spawn_child", {}, timeout=10)
        pids.append(int(child.content[0]["text"]))
        print(json.dumps(pids), flush=True)
        await anyio.sleep(3600)


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]))
