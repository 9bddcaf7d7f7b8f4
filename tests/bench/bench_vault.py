"""Benchmark: what handing a connector its secrets adds to its start (specs/vault.md, "Grants").

A connector granted 10 secrets (5 as variables, 5 as files in its data folder) has them read
with `providers.grants.read_grants` exactly as a start does: the SecretRefs checked, the vault
opened, each value read (and registered with the redactor), the files written. Measured from
the dev vault (goal, issue 13: under 5 ms at the median) and from a Key Vault on loopback (the
local fake of tests/fakes/keyvault.py, through the real Azure SDK: reported, with the first
grant, which fetches a token, apart).

    python tests/bench/bench_vault.py [--grants 50] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from reconciler.model.kinds import SecretRefSpec
from reconciler.model.workspace import WorkspaceSpec
from reconciler.providers.grants import Grants, read_grants
from reconciler.vault.dev import DevVault
from tests.fakes.keyvault import CLIENT_ID, CLIENT_SECRET, TENANT, FakeKeyVault

COUNT = 10
NAMES = [f"token-{index:02d}" for index in range(COUNT)]
DECLARED = [
    {"name": name, "env": f"TOKEN_{index:02d}"}
    if index % 2
    else {"name": name, "file": f"t{index}"}
    for index, name in enumerate(NAMES)
]
REFS = {
    name: SecretRefSpec.model_validate({"ref": f"vault://{name}", "usedBy": {"connectors": ["w"]}})
    for name in NAMES
}


def grant(root: Path, home: Path, spec: WorkspaceSpec) -> tuple[float, Grants]:
    began = time.perf_counter()
    found = read_grants(
        root, "w", NAMES, DECLARED, REFS, workspace="bench", workspace_spec=spec, home=home
    )
    return (time.perf_counter() - began) * 1000, found


def summary(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grants", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        root, home = base / "repo", base / "home"
        (root / ".cloned" / "state" / "connectors" / "w" / "data").mkdir(parents=True)
        vault = DevVault(root, "bench", home=home)
        for name in NAMES:
            vault.set(name, f"value-of-{name}-0123456789abcdef")
        dev = WorkspaceSpec.model_validate({"vault": {"provider": "dev"}})
        times = [grant(root, home, dev)[0] for _ in range(args.grants)]
        results["dev_10_secrets"] = {**summary(times), "goal_p50_ms": 5.0}

        kv = FakeKeyVault.start(base / "kv")
        try:
            for name in NAMES:
                kv.put(name, f"value-of-{name}-0123456789abcdef")
            os.environ.update(kv.env(timeout=5))
            os.environ["AZURE_CLIENT_SECRET"] = CLIENT_SECRET
            azure = WorkspaceSpec.model_validate(
                {
                    "vault": {
                        "provider": "azure",
                        "azure": {
                            "vaultUrl": "https://bench.vault.azure.net",
                            "credential": {
                                "type": "clientSecret",
                                "tenantId": TENANT,
                                "clientId": CLIENT_ID,
                            },
                        },
                    }
                }
            )
            first, _ = grant(root, home, azure)
            times = [grant(root, home, azure)[0] for _ in range(args.grants)]
            results["azure_loopback_10_secrets"] = {**summary(times), "first_ms": round(first, 1)}
        finally:
            kv.stop()
    results["load_average_1min"] = {"value": os.getloadavg()[0], "cores": os.cpu_count() or 0}
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
