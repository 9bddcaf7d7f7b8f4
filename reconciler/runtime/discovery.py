"""Listing a connector's tools once, at apply: start it, initialise, read every page of
`tools/list`, stop it. What apply pins (engine/run.py) comes from here; nothing else is asked of
the server, and it is stopped whatever happens.
"""

from __future__ import annotations

from typing import Any

from reconciler.redact import Redactor
from reconciler.runtime.types import Launch, RuntimeFailure, Settings

MAX_PAGES = 50


def discover(
    launch: Launch, *, settings: Settings = Settings(), redactor: Redactor
) -> list[dict[str, Any]]:
    """Every tool `launch`'s server lists (wire JSON); `RuntimeFailure` when it cannot be
    started, does not answer within `settings.start_timeout`, or answers something else."""
    import anyio

    try:
        return anyio.run(_discover, launch, settings)
    except RuntimeFailure:
        raise
    except TimeoutError:
        raise RuntimeFailure(
            "timeout",
            f"connector.{launch.name}: did not list its tools within {settings.start_timeout:g}s",
        ) from None
    except Exception as exc:  # noqa: BLE001 - the SDK raises many kinds; each is one failure
        detail = redactor.text(str(exc) or type(exc).__name__)
        raise RuntimeFailure(
            "unavailable", f"connector.{launch.name}: could not list its tools ({detail[:300]})"
        ) from None


async def _discover(launch: Launch, settings: Settings) -> list[dict[str, Any]]:
    import anyio
    from mcp import ClientSession, StdioServerParameters, stdio_client

    launch.log.parent.mkdir(parents=True, exist_ok=True)
    params = StdioServerParameters(
        command=launch.command[0],
        args=list(launch.command[1:]),
        env=dict(launch.env),
        cwd=str(launch.cwd),
    )
    with launch.log.open("a", encoding="utf-8") as errlog, anyio.fail_after(settings.start_timeout):
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await _all_pages(session)


async def _all_pages(session: Any) -> list[dict[str, Any]]:
    from mcp.types import PaginatedRequestParams

    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(
            tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in page.tools
        )
        cursor = page.next_cursor
        if not cursor:
            return tools
    raise RuntimeFailure("protocol", f"tools/list has more than {MAX_PAGES} pages")
