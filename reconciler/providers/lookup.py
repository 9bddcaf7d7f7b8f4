"""Which provider manages which kind. Kinds without a provider are reported, not planned."""

from __future__ import annotations

from reconciler.providers.base import Provider
from reconciler.providers.budget import BudgetProvider
from reconciler.providers.connector import ConnectorProvider
from reconciler.providers.model import ModelProvider
from reconciler.providers.pipeline import PipelineProvider
from reconciler.providers.policypack import PolicyPackProvider
from reconciler.providers.registry import RegistryProvider
from reconciler.providers.run import RunProvider
from reconciler.providers.secretref import SecretRefProvider
from reconciler.providers.workspace import WorkspaceProvider

_PROVIDERS: dict[str, Provider] = {
    provider.kind: provider
    for provider in (
        WorkspaceProvider(),
        PolicyPackProvider(),
        BudgetProvider(),
        RegistryProvider(),
        ConnectorProvider(),
        SecretRefProvider(),
        ModelProvider(),
        PipelineProvider(),
        RunProvider(),
    )
}


def provider_for(kind: str) -> Provider | None:
    """The provider of `kind`, or None when this version does not manage that kind yet."""
    return _PROVIDERS.get(kind)


def managed_kinds() -> frozenset[str]:
    """Kinds that plan and apply manage."""
    return frozenset(_PROVIDERS)
