"""Checking files in worker processes gives exactly the sequential verdicts, in order."""

from __future__ import annotations

import pytest

from reconciler.load import checkfile
from reconciler.load.files import SourceFile
from tests.conftest import WORKSPACE_YAML

BUDGET = """\
apiVersion: cloned/v1
kind: Budget
metadata: {{name: b{index}}}
spec: {{scope: {{workspace: true}}, limits: {{calls: {calls}}}}}
"""


def sources() -> list[SourceFile]:
    files = [SourceFile("workspace.yaml", WORKSPACE_YAML.encode())]
    for index in range(40):
        calls = '"many"' if index % 13 == 5 else str(index)
        files.append(SourceFile(f"b{index}.yaml", BUDGET.format(index=index, calls=calls).encode()))
    files.append(SourceFile("broken.yaml", b"a: [1,\n"))
    return files


def test_parallel_and_sequential_verdicts_are_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    sequential = [checkfile.check_file(source) for source in sources()]
    monkeypatch.setattr(checkfile, "PARALLEL_MIN_BYTES", 0)
    assert checkfile._workers(sources()) >= 2 or checkfile.os.cpu_count() == 1
    parallel = checkfile.check_files(sources())
    assert parallel == sequential
    rejected = [result.rel for result in parallel if result.problems]
    assert rejected == ["b5.yaml", "b18.yaml", "b31.yaml", "broken.yaml"]
    assert parallel[6].problems[0].render() == (
        'b5.yaml:4:50: spec.limits.calls: expected an integer, got string "many"'
    )
    assert parallel[6].partial == frozenset({("Budget", "b5")})
