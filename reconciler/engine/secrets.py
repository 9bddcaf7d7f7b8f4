"""Before a plan: every SecretRef names a secret the Workspace's vault holds.

A plan never reads a secret's value, but a SecretRef whose secret is missing would only fail
later, at a connector's start. So each plan asks the vault for its secrets' names (metadata
only: `VaultProvider.names`) and refuses, with each SecretRef's file and line, when one is
missing, disabled or not a valid vault name. A vault that cannot be asked fails the plan
(fail closed: `VaultUnreachable`, one line). A Workspace with provider `none` has no vault to
ask: its SecretRefs are references only, and `cloned plan` says so as a warning
(`usecases.plans`). specs/vault.md, "References and plans".
"""

from __future__ import annotations

from reconciler.errors import Problem, ValidationFailed
from reconciler.load.resources import DesiredState, LoadedResource


def check_secrets(desired: DesiredState) -> None:
    """`ValidationFailed` naming each SecretRef whose secret the vault does not hold."""
    refs = [resource for resource in desired.resources if resource.kind == "SecretRef"]
    if not refs:
        return
    workspace = desired.workspace()
    spec = workspace.spec
    if spec.vault.provider == "none":
        return
    from reconciler.home import cloned_home
    from reconciler.providers.grants import vault_name
    from reconciler.vault.select import open_vault
    from reconciler.vault.types import VaultRefused, check_name

    declared = next(r for r in desired.resources if r.kind == "Workspace")
    try:
        vault = open_vault(desired.root, workspace.metadata.name, spec, home=cloned_home())
    except VaultRefused as exc:
        raise ValidationFailed(
            [problem_at(desired, declared, ("spec", "vault"), exc.message)]
        ) from None
    held = {info.name: info for info in vault.names()}
    problems = []
    for ref in refs:
        name = vault_name(str(ref.spec["ref"]))
        where = f"secretref.{ref.name}"
        try:
            check_name(name)
        except VaultRefused as exc:
            problems.append(problem_at(desired, ref, ("spec", "ref"), f"{where}: {exc.message}"))
            continue
        info = held.get(name)
        if info is None or not info.enabled:
            state = "has no" if info is None else "has only a disabled"
            problems.append(
                problem_at(
                    desired,
                    ref,
                    ("spec", "ref"),
                    f"{where}: the {vault.provider} vault {state} secret {name!r}; set it with "
                    f"`cloned vault set {name}`",
                )
            )
    if problems:
        raise ValidationFailed(problems)


def problem_at(
    desired: DesiredState, resource: LoadedResource, at: tuple[str | int, ...], message: str
) -> Problem:
    """A problem at field `at` of `resource` (its document's line for a plan of a commit,
    whose files are not the working tree's)."""
    from reconciler.load.positions import Locator

    line, col = resource.line, 1
    text = None
    if desired.revision is None:
        try:
            text = (desired.root / resource.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = None
    if text is not None:
        found = Locator(text).find(resource.document, at, key=True)
        if found is not None:
            line, col = found
    return Problem(resource.file, line, col, message)
