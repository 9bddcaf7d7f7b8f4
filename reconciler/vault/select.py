"""Which vault a workspace uses: the Workspace's `spec.vault.provider`, under its tier and
policy packs (specs/vault.md, "Provider contract").

`none` has no vault at all; `dev` is refused where the workspace is shared or production (tier
`enterprise`, or the `strict` policy pack); `azure` is Azure Key Vault. The chosen provider's
module is imported only then, so a workspace without a vault never loads `cryptography` or the
Azure SDK."""

from __future__ import annotations

from pathlib import Path

from reconciler.model.workspace import WorkspaceSpec
from reconciler.vault.types import VaultProvider, VaultRefused


def open_vault(root: Path, workspace: str, spec: WorkspaceSpec, *, home: Path) -> VaultProvider:
    """The vault of workspace `workspace` (repository at `root`, `$CLONED_HOME` at `home`);
    `VaultRefused` when it has none or may not use the one it names."""
    provider = spec.vault.provider
    if provider == "none":
        raise VaultRefused(
            f"workspace {workspace!r} has no vault (spec.vault.provider is 'none')",
            hint="set spec.vault.provider in the Workspace: 'dev' (a local encrypted file, for "
            "development) or 'azure' (Azure Key Vault, with spec.vault.azure.vaultUrl)",
        )
    if provider == "dev":
        refusal = dev_refusal(spec)
        if refusal is not None:
            raise VaultRefused(
                f"workspace {workspace!r}: the dev vault is refused under {refusal}; it is for "
                "development only",
                hint="use spec.vault.provider 'azure' (Azure Key Vault) for this workspace",
            )
        from reconciler.vault.dev import DevVault

        return DevVault(root, workspace, home=home)
    from reconciler.vault.azure import AzureProvider

    assert spec.vault.azure is not None  # the model requires it for provider 'azure'
    return AzureProvider.from_settings(spec.vault.azure)


def dev_refusal(spec: WorkspaceSpec) -> str | None:
    """Why `spec` may not use the dev vault (`tier enterprise`, `policy pack strict`), or None."""
    if spec.tier == "enterprise":
        return "tier 'enterprise'"
    if "strict" in spec.policy_packs:
        return "the 'strict' policy pack"
    return None
