"""Read a package manifest, `connector.yaml`: the same safe parser and the same precise
`file:line:col` messages as the desired state, against the manifest's own model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.errors import Problem, ValidationFailed

if TYPE_CHECKING:
    from reconciler.model.manifest import Manifest

MAX_MANIFEST_BYTES = 64 * 1024


def read_manifest(data: bytes, where: str) -> Manifest:
    """The manifest in `data` (read from `where`, which problems name); `ValidationFailed`
    with every problem when it is not one valid manifest document."""
    from pydantic import ValidationError

    from reconciler.load.yamlio import YamlProblem, parse
    from reconciler.model.manifest import Manifest

    if len(data) > MAX_MANIFEST_BYTES:
        raise ValidationFailed([Problem(where, 0, 0, f"larger than {MAX_MANIFEST_BYTES} bytes")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed([Problem(where, 0, 0, f"not UTF-8 text ({exc.reason})")]) from None
    try:
        documents = parse(text)
    except YamlProblem as exc:
        raise ValidationFailed([Problem(where, exc.line + 1, exc.col + 1, exc.message)]) from None
    if len(documents) != 1:
        found = f"{len(documents)} documents"
        raise ValidationFailed([Problem(where, 1, 1, f"needs exactly one document, found {found}")])
    document = documents[0]
    if not isinstance(document.data, dict):
        raise ValidationFailed([Problem(where, document.line, 1, "the manifest must be a mapping")])
    try:
        return Manifest.model_validate(document.data)
    except ValidationError as exc:
        # Only a manifest with problems pays for the resource models the messages use.
        from reconciler.load.positions import Locator
        from reconciler.load.validate import explain

        locator = Locator(text)
        problems = []
        for error in exc.errors(include_url=False):
            finding = explain(error, Manifest)
            line, col = locator.find(0, finding.at, key=finding.key) or (document.line, 1)
            problems.append(Problem(where, line, col, finding.message))
        raise ValidationFailed(sorted(problems)) from None
