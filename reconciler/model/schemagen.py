"""Write `schemas/<kind>.schema.json` from the models: `python -m reconciler.model.schemagen`.

The files are committed; `tests/unit/test_schemas.py` fails when they differ from what this
module generates, so schemas and models cannot drift apart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from reconciler.data import data_dir
from reconciler.model.kinds import KINDS
from reconciler.model.names import API_VERSION, NAME_PATTERN

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://cloned.dev/schemas/v1/"


def kind_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one kind's whole document (envelope and spec)."""
    body = KINDS[kind].model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{ID_BASE}{kind.lower()}.schema.json",
        **{key: value for key, value in body.items() if key != "title"},
        "title": f"Cloned {kind} ({API_VERSION})",
    }


def envelope_schema() -> dict[str, Any]:
    """The schema every resource document shares, whatever its kind."""
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{ID_BASE}resource.schema.json",
        "title": f"Cloned resource envelope ({API_VERSION})",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"enum": list(KINDS)},
            "metadata": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "pattern": NAME_PATTERN}},
            },
            "spec": {"type": "object"},
        },
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {"$ref": f"{kind.lower()}.schema.json"},
            }
            for kind in KINDS
        ],
    }


def render(schema: dict[str, Any]) -> str:
    """The committed text of a schema: stable key order, two-space indent, final newline."""
    return json.dumps(schema, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def generated() -> dict[str, str]:
    """File name -> text, for every schema this module owns."""
    files = {f"{kind.lower()}.schema.json": render(kind_schema(kind)) for kind in KINDS}
    files["resource.schema.json"] = render(envelope_schema())
    files["connector-manifest.schema.json"] = render(manifest_schema())
    return files


def manifest_schema() -> dict[str, Any]:
    """The schema of a package manifest, `connector.yaml` (SPEC section 11)."""
    from reconciler.model.manifest import Manifest

    body = Manifest.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{ID_BASE}connector-manifest.schema.json",
        **{key: value for key, value in body.items() if key != "title"},
        "title": "Cloned connector package manifest (connector.yaml)",
    }


def main() -> int:
    """Rewrite the schema files; print which changed."""
    folder: Path = data_dir("schemas")
    folder.mkdir(exist_ok=True)
    for name, text in generated().items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
