"""The Workspace kind: approvers, the policy packs it selects, defaults, vault and git settings.

Apart from the other kinds because every plan reads the Workspace (its approvers and policy
packs) as a model: building these models alone costs a fraction of building all eight kinds.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from reconciler.model.base import Closed, Host, Name, Resource, Text

Period = Literal["day", "week", "month"]
OnExceed = Literal["block", "requireApproval"]

PUBLIC_KEY_PATTERN = r"^ssh-ed25519 [A-Za-z0-9+/]{68}(=){0,2}( [^\n]*)?$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"


class Approver(Closed):
    name: Name
    public_key: Annotated[str, Field(pattern=PUBLIC_KEY_PATTERN)]
    groups: Annotated[list[Name], Field(min_length=1)]


class GitAuthor(Closed):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    email: Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=320)]


class GitSettings(Closed):
    audit_commits: bool = True
    author: GitAuthor | None = None


class AzureVault(Closed):
    vault_url: Annotated[str, Field(pattern=r"^https://[a-z0-9-]+\.vault\.azure\.net/?$")]


class VaultSettings(Closed):
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"provider": {"const": "azure"}}, "required": ["provider"]},
            "then": {"required": ["azure"], "properties": {"azure": {"type": "object"}}},
        }
    )

    provider: Literal["none", "dev", "azure"] = "none"
    azure: AzureVault | None = None

    @model_validator(mode="after")
    def _azure_needs_url(self) -> VaultSettings:
        if self.provider == "azure" and self.azure is None:
            raise ValueError("provider 'azure' needs azure.vaultUrl")
        return self


class EgressDefaults(Closed):
    allow_hosts: list[Host] = []


class BudgetDefaults(Closed):
    period: Period = "month"
    on_exceed: OnExceed = "block"


class WorkspaceDefaults(Closed):
    egress: EgressDefaults = EgressDefaults()
    budgets: BudgetDefaults = BudgetDefaults()


class ArchiveSettings(Closed):
    """How long archives of deleted connectors are kept before `cloned archive purge` may
    remove them (unset: 7 days). Optional, so a Workspace that does not set it normalises as
    it did before."""

    retention_days: Annotated[int, Field(ge=0, le=3650)] = 7


DEFAULT_RETENTION_DAYS = 7


class WorkspaceSpec(Closed):
    description: Text = ""
    tier: Literal["personal", "team", "enterprise"] = "personal"
    policy_packs: Annotated[list[Name], Field(min_length=1)] = ["baseline"]
    approvers: list[Approver] = []
    defaults: WorkspaceDefaults = WorkspaceDefaults()
    vault: VaultSettings = VaultSettings()
    git: GitSettings = GitSettings()
    archive: ArchiveSettings | None = None


class Workspace(Resource):
    kind: Literal["Workspace"]
    spec: WorkspaceSpec
