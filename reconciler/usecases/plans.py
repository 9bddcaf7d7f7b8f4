"""`plan` and `show`: what apply would change and what policy decides, as a typed plan document.

`plan` previews the workspace (engine/preview.py), saves and audits the plan when asked to, and
says what the person planning should know beside it (notes); `show` reads a saved plan back. The
front end renders `plan` (reconciler.plan.document) and prints the notes; nothing is decided
there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from reconciler.errors import ExitCode
from reconciler.plan.document import PlanDocument

if TYPE_CHECKING:
    from reconciler.load.resources import DesiredState

NoteKind = Literal["no-state-database", "uncommitted", "unsandboxed", "no-vault"]


@dataclass(frozen=True)
class Note:
    """What the person planning should know that is not part of the plan (the CLI prints it on
    stderr): planning against the committed lock file, edits a `--base` plan leaves out, or a
    connector that would run without isolation here (`unsandboxed`, printed as a warning)."""

    kind: NoteKind
    message: str


@dataclass(frozen=True)
class Planned:
    """A fresh plan: its document, where it was saved (and whether that was audited), notes."""

    plan: PlanDocument
    detailed: bool = False  # --detailed-exitcode: changes exit 2
    saved_to: Path | None = None
    recorded: bool = False  # the save was audited in the state database (`plan.saved`)
    notes: tuple[Note, ...] = ()

    @property
    def exit_code(self) -> ExitCode:
        """4 when policy forbids a change; else 2 for changes with `detailed`; else 0."""
        if self.plan.denied:
            return ExitCode.POLICY_DENIED
        if self.detailed and self.plan.changes:
            return ExitCode.CHANGES
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        """The plan's JSON form (format_version 1), as `--json` prints and `--out` saves it."""
        return self.plan.to_json()


@dataclass(frozen=True)
class Shown:
    """A saved plan read back: its document, and its JSON exactly as read from the file."""

    file: Path
    plan: PlanDocument
    data: dict[str, Any]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return self.data


def plan(
    *,
    path: Path,
    base: str | None = None,
    targets: tuple[str, ...] = (),
    out: Path | None = None,
    detailed: bool = False,
    created_at: str | None = None,
    refresh: bool = False,
) -> Planned:
    """Plan the workspace containing `path` (HEAD against `base`, with one); with `out`, save
    the plan there and audit that in the state database when there is one; `refresh` asks
    every registry again about connectors already pinned. Nothing else is written but the
    validation cache (and the registries' metadata caches)."""
    from reconciler.clock import stamp
    from reconciler.engine.planfile import record_saved, save
    from reconciler.engine.preview import preview
    from reconciler.load.files import find_root

    root = find_root(path)
    previewed = preview(root, base=base, targets=targets, refresh=refresh)
    document = previewed.document(created_at=created_at if created_at is not None else stamp())
    recorded = False
    if out is not None:
        save(out, document)
        if base is None:
            recorded = record_saved(root, previewed.session, document, out)
    if base is not None:
        notes = _uncommitted(root)
    elif previewed.session.actual.source == "lock":
        notes = (Note("no-state-database", NO_STATE_DATABASE),)
    else:
        notes = ()
    notes += _unsandboxed(previewed.session.desired) + _vaultless(previewed.session.desired)
    return Planned(document, detailed, out, recorded, notes)


NO_STATE_DATABASE = (
    "no state database here; planning against .cloned/cloned.lock as committed in this "
    "checkout (policy and approvers come from it too). In CI, prefer --base REF: it reads them "
    "from the base branch instead."
)


def _uncommitted(root: Path) -> tuple[Note, ...]:
    from reconciler.engine.revision import uncommitted

    changed = uncommitted(root)
    if not changed:
        return ()
    return (
        Note(
            "uncommitted",
            f"{len(changed)} uncommitted change(s) under .cloned/ are not part of this plan "
            f"(--base plans HEAD's commit), e.g. {changed[0]}",
        ),
    )


def _unsandboxed(desired: DesiredState) -> tuple[Note, ...]:
    """A warning for each enabled connector that would start without isolation on this
    machine (or, under `strict`, not start at all)."""
    from reconciler.egress.sandbox import expected
    from reconciler.model.kinds import Connector

    notes = []
    for resource in desired.resources:
        model = resource.model if resource.kind == "Connector" else None
        if not isinstance(model, Connector) or not model.spec.enabled:
            continue
        confined = expected(model.spec.sandbox.profile)
        where = f"connector.{resource.name}"
        if confined.refused:
            text = f"{where} will not start here: sandbox.profile strict needs bubblewrap, and "
            notes.append(Note("unsandboxed", f"{text}{confined.reason}"))
        elif not confined.sandboxed:
            notes.append(Note("unsandboxed", f"{where} runs unsandboxed: {confined.reason}"))
    return tuple(notes)


def _vaultless(desired: DesiredState) -> tuple[Note, ...]:
    """A warning when SecretRefs are declared but the Workspace has no vault: they are
    references only, and no connector can be granted them (engine.secrets checks the rest)."""
    refs = sum(1 for resource in desired.resources if resource.kind == "SecretRef")
    if not refs or desired.workspace().spec.vault.provider != "none":
        return ()
    what = f"{refs} SecretRef{'s' if refs != 1 else ''}"
    return (
        Note(
            "no-vault",
            f"{what} but no vault (Workspace spec.vault.provider none): no connector can be "
            "granted them, and a connector that needs one will not start",
        ),
    )


def show(*, file: Path) -> Shown:
    """Read the plan saved in `file`; `ClonedError` when it is not a Cloned plan file."""
    from reconciler.engine.planfile import load

    saved = load(file)
    return Shown(file, saved.document, saved.data)
