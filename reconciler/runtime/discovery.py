"""Discovery: what apply runs to pin a connector's tools at install or upgrade. It starts the
server under the supervisor (same environment, limits and logging as at run time), lists
every page of its tools, and stops it again.
"""

from __future__ import annotations

from typing import Any

from reconciler.redact import Redactor
from reconciler.runtime.types import Launch, Settings


def discover(
    launch: Launch, *, settings: Settings = Settings(), redactor: Redactor
) -> list[dict[str, Any]]:
    """The connector's tools as wire JSON; `RuntimeFailure` when it cannot be listed."""
    import anyio

    from reconciler.runtime.supervisor import Supervisor

    async def listing() -> list[dict[str, Any]]:
        async with Supervisor(settings=settings, redactor=redactor) as supervisor:
            return await supervisor.list_tools(launch)

    return anyio.run(listing)
