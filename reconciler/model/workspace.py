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


TENANT_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$"
"""A Microsoft Entra tenant: its GUID or a domain (`contoso.onmicrosoft.com`)."""
CLIENT_ID_PATTERN = r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"
"""An application's or a user-assigned managed identity's client ID (a GUID)."""


class AzureCredential(Closed):
    """How Cloned signs in to Key Vault (specs/vault.md, "Azure provider").

    `default` is azure-identity's DefaultAzureCredential chain (environment variables,
    workload identity, managed identity, then the Azure CLI and the other developer tools);
    `clientSecret` is an app registration (`tenantId` and `clientId` here; the client secret's
    value never in YAML: it is read from the `AZURE_CLIENT_SECRET` environment variable);
    `managedIdentity` is the host's identity (`clientId` picks a user-assigned one)."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"type": {"const": "clientSecret"}}, "required": ["type"]},
                    "then": {"required": ["tenantId", "clientId"]},
                },
                {
                    "if": {
                        "properties": {"type": {"const": "managedIdentity"}},
                        "required": ["type"],
                    },
                    "then": {"not": {"required": ["tenantId"]}},
                },
                {
                    "if": {
                        "anyOf": [
                            {"not": {"required": ["type"]}},
                            {"properties": {"type": {"const": "default"}}},
                        ]
                    },
                    "then": {
                        "not": {"anyOf": [{"required": ["tenantId"]}, {"required": ["clientId"]}]}
                    },
                },
            ]
        }
    )

    type: Literal["default", "clientSecret", "managedIdentity"] = "default"
    tenant_id: Annotated[str, Field(pattern=TENANT_PATTERN, max_length=254)] | None = None
    client_id: Annotated[str, Field(pattern=CLIENT_ID_PATTERN)] | None = None

    @model_validator(mode="after")
    def _fields_for_type(self) -> AzureCredential:
        if self.type == "clientSecret" and (self.tenant_id is None or self.client_id is None):
            raise ValueError(
                "credential type 'clientSecret' needs tenantId and clientId (the secret itself "
                "comes from the AZURE_CLIENT_SECRET environment variable, never from YAML)"
            )
        if self.type == "managedIdentity" and self.tenant_id is not None:
            raise ValueError(
                "credential type 'managedIdentity' takes no tenantId (clientId picks a "
                "user-assigned identity)"
            )
        if self.type == "default" and (self.tenant_id is not None or self.client_id is not None):
            raise ValueError(
                "credential type 'default' takes no tenantId or clientId: the default chain "
                "reads AZURE_TENANT_ID and AZURE_CLIENT_ID from the environment"
            )
        return self


class AzureVault(Closed):
    vault_url: Annotated[str, Field(pattern=r"^https://[a-z0-9-]+\.vault\.azure\.net/?$")]
    credential: AzureCredential = AzureCredential()


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
