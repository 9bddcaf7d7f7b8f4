"""What the connector attack tests share: a team with acme/weather 1.0.0 installed, and what
a hostile publisher does without Cloned's commands (re-sign a published version, sign an
archive made by hand)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from tests.conftest import commit_all, git, write
from tests.func.engine_helpers import Team
from tests.func.registry_helpers import (
    Publisher,
    connector_yaml,
    weather_team,
)

_APPLIED: list[tuple[Path, Team, Publisher]] = []


def install_weather(repo: Path, tmp_path: Path) -> tuple[Team, Publisher]:
    """The weather team, applied: acme/weather 1.0.0 installed from the registry in reg/.
    Applied once per test process and copied (repository, everyone's homes, the publisher):
    the apply, which installs the package and lists its tools, is most of a test's setup."""
    assert repo == tmp_path / "repo", "the copy keeps the layout of the `repo` fixture"
    if not _APPLIED:
        base = Path(tempfile.mkdtemp(prefix="cloned-weather-"))
        atexit.register(shutil.rmtree, base, True)
        (base / "repo").mkdir()
        git("init", "-q", "-b", "main", cwd=base / "repo")
        team, publisher = weather_team(base / "repo", base)
        applied = team.run("apply")
        assert applied.code == 0, applied.out + applied.err
        _APPLIED.append((base, team, publisher))
    base, team, publisher = _APPLIED[0]
    shutil.rmtree(repo)
    shutil.copytree(base, tmp_path, symlinks=True, dirs_exist_ok=True)
    homes = {who: tmp_path / home.relative_to(base) for who, home in team.homes.items()}
    moved = Publisher(tmp_path / publisher.home.relative_to(base), repo / "reg", publisher.pin)
    return Team(repo, homes, dict(team.keys)), moved


def store_servers(repo: Path) -> list[str]:
    folder = repo / ".cloned" / "state" / "store" / "sha256"
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    return [(entry / "server.py").read_text() for entry in entries]


def republish(
    publisher: Publisher, archive: Path, target: str, declared: dict[str, object] | None = None
) -> None:
    """What a hostile publisher (or whoever holds its key) does without Cloned's commands:
    sign other bytes under a target path that is published already (the command refuses)."""
    from securesystemslib.signer import Signer
    from tuf.api.metadata import TargetFile

    from reconciler.clock import now
    from reconciler.packages.registry.repository import Expiries, load
    from reconciler.packages.registry.signing import load_signer

    repo = load(publisher.folder)
    targets = repo.roles["acme"].signed.targets
    info = TargetFile.from_file(target, str(archive), ["sha256"])
    info.unrecognized_fields["custom"] = {
        "cloned": declared or targets[target].unrecognized_fields["custom"]["cloned"]
    }
    name = f"{info.hashes['sha256']}.{target.rpartition('/')[2]}"
    shutil.copyfile(archive, publisher.folder / "targets" / "acme" / name)
    targets[target] = info
    signers: dict[str, list[Signer]] = {
        "acme": [load_signer(publisher.key("acme"))],
        "snapshot": [load_signer(publisher.key("online"))],
    }
    repo.commit(["acme"], signers, expiries=Expiries(), now=now())


def set_version(team: Team, publisher: Publisher, version: str) -> None:
    write(team.repo, ".cloned/connectors.yaml", connector_yaml(publisher, version))
    commit_all(team.repo, f"weather {version}")


def hostile_archive(tmp_path: Path, files: dict[str, str], name: str = "hostile") -> Path:
    """A gzip tar of `files`, made by hand (not by `cloned connectors pack`)."""
    import io
    import tarfile

    out = tmp_path / f"{name}.tar.gz"
    with tarfile.open(out, "w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return out


def signed_declared(publisher: Publisher, version: str) -> dict[str, object]:
    from reconciler.packages.registry.repository import load

    targets = load(publisher.folder).roles["acme"].signed.targets
    info = targets[f"acme/weather-{version}.tar.gz"]
    return dict(info.unrecognized_fields["custom"]["cloned"])


def tar_entry(
    name: str, data: bytes = b"", kind: bytes = b"0", link: str = ""
) -> tuple[object, bytes]:
    import tarfile

    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode = kind, link, len(data), 0o644
    return info, data


def leaky_release(team: Team, publisher: Publisher, tmp_path: Path) -> None:
    """A workspace whose policy masks TOKEN, then acme/weather 1.0.1 published with TOKEN in its
    description (manifest and signed metadata) and the Connector moved to it, not applied."""
    from tests.func.engine_helpers import MASK_PACK, TOKEN

    team.edit(".cloned/workspace.yaml", "policyPacks: [baseline]", "policyPacks: [baseline, masks]")
    write(team.repo, ".cloned/masks.yaml", MASK_PACK)
    commit_all(team.repo, "masks")
    assert team.run("apply").code == 0
    scratch = tmp_path / "scratch"
    publisher.publish(scratch, "1.0.1")
    declared = signed_declared(publisher, "1.0.1")
    declared["description"] = f"Forecasts. Debug key {TOKEN}"
    manifest = scratch / "src-1.0.1" / "connector.yaml"
    manifest.write_text(manifest.read_text().replace("Forecasts.", f"Forecasts. Debug key {TOKEN}"))
    packed = tmp_path / "leaky.tar.gz"
    publisher.run("connectors", "pack", str(scratch / "src-1.0.1"), "--out", str(packed))
    republish(publisher, packed, "acme/weather-1.0.1.tar.gz", declared)
    set_version(team, publisher, "1.0.1")
