"""The package manifest, `connector.yaml` at the root of a connector folder or package
(SPEC section 11): what a connector is, how it starts and what it declares it needs. Publishing
copies it into the registry's signed metadata; install checks the archive's copy against that."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from reconciler.model.base import Closed, Host, Name, Text
from reconciler.model.names import VERSION_PATTERN

ENV_PATTERN = r"^[A-Z_][A-Z0-9_]{0,127}$"
REL_FILE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}){0,15}$"
"""A relative file inside the package: no absolute path, no `.` or `..` segment."""
TOOL_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"


class ManifestRun(Closed):
    """How the connector starts: a command run in the installed folder, speaking MCP on stdio.
    `python` as the first word is the interpreter of the connector's own environment."""

    command: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=1024)]], Field(min_length=1)
    ]


class ManifestEgress(Closed):
    hosts: list[Host] = []


class ManifestSecret(Closed):
    """A secret the connector needs, delivered as an environment variable or a file."""

    name: Name
    env: Annotated[str, Field(pattern=ENV_PATTERN)] | None = None
    file: Annotated[str, Field(pattern=REL_FILE_PATTERN)] | None = None

    @model_validator(mode="after")
    def _one_delivery(self) -> ManifestSecret:
        if (self.env is None) == (self.file is None):
            raise ValueError("set exactly one of: env, file")
        return self


class Manifest(Closed):
    """`connector.yaml`."""

    name: Name
    version: Annotated[str, Field(pattern=VERSION_PATTERN)]
    publisher: Name
    description: Text = ""
    run: ManifestRun
    tools: list[Annotated[str, Field(pattern=TOOL_PATTERN)]] = []
    egress: ManifestEgress = ManifestEgress()
    secrets: list[ManifestSecret] = []
    requirements: Annotated[str, Field(pattern=REL_FILE_PATTERN)] | None = None
    """A hash-locked requirements file in the package: the connector's own environment."""
