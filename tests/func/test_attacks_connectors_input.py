"""Attacks through bad input on the connector path, as a hostile publisher or someone with
write access to the registry or the state folder would make them: signed archives that escape,
explode or bring another manifest, damaged TUF metadata and install records, a delete killed
half way. Each is one clear error (or a recovery), and nothing unverified is installed or lost."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import commit_all, write
from tests.func.attack_helpers import (
    hostile_archive,
    install_weather,
    republish,
    set_version,
    signed_declared,
    store_servers,
    tar_entry,
)
from tests.func.engine_helpers import Team
from tests.func.registry_helpers import (
    Publisher,
    approve_pending,
    connector_yaml,
    events,
)


@pytest.fixture
def installed(repo: Path, tmp_path: Path) -> tuple[Team, Publisher]:
    return install_weather(repo, tmp_path)


@pytest.mark.parametrize("record", ["{not json", "[1, 2]", '{"tree": 7}', '{"env": "x"}'])
def test_a_damaged_install_record_stops_an_upgrade_with_one_clear_error(
    installed: tuple[Team, Publisher], tmp_path: Path, record: str
) -> None:
    team, publisher = installed
    with sqlite3.connect(team.repo / ".cloned" / "state" / "cloned.db") as connection:
        connection.execute("UPDATE installs SET record = ?", (record,))
    publisher.publish(tmp_path / "scratch", "1.0.1")
    set_version(team, publisher, "1.0.1")
    applied = team.run("apply")
    assert applied.code == 1, applied.out + applied.err
    assert "internal error" not in applied.err
    # Found while planning, before anything is applied: one error naming the database.
    assert applied.out == ""
    assert applied.err.startswith(
        "Error: .cloned/state/cloned.db: the install record of connector.weather is damaged"
    )
    assert ["# weather 1.0.0" in text for text in store_servers(team.repo)] == [True]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"server.py": "# no manifest\n"}, "no connector.yaml of at most"),
        (
            {"connector.yaml": "name: [\n", "server.py": "x\n"},
            "acme/weather-1.0.1.tar.gz:connector.yaml:",
        ),
        (
            {
                "connector.yaml": "name: weather\nversion: 1.0.1\npublisher: acme\n"
                "run: {command: [python, server.py]}\ntools: [forecast, shell]\n",
                "server.py": "# widened\n",
            },
            "differs from what the registry's signed metadata declares",
        ),
    ],
    ids=["no-manifest", "broken-manifest", "manifest-widens"],
)
def test_a_signed_archive_whose_manifest_is_not_the_signed_one_is_refused_at_install(
    installed: tuple[Team, Publisher], tmp_path: Path, files: dict[str, str], message: str
) -> None:
    team, publisher = installed
    publisher.publish(tmp_path / "scratch", "1.0.1")
    archive = hostile_archive(tmp_path, files)
    # The plan shows the signed declared block (nothing widened), the archive holds another.
    republish(publisher, archive, "acme/weather-1.0.1.tar.gz", signed_declared(publisher, "1.0.1"))
    set_version(team, publisher, "1.0.1")
    applied = team.run("apply")
    assert applied.code == 1, applied.out + applied.err
    assert "internal error" not in applied.err
    assert "connector.weather (update) FAILED" in applied.out
    assert message in applied.out
    assert ["# weather 1.0.0" in text for text in store_servers(team.repo)] == [True]


@pytest.mark.parametrize("same_second", [True, False], ids=["same-second", "later"])
def test_a_delete_killed_between_moving_the_data_and_naming_the_archive_loses_no_data(
    installed: tuple[Team, Publisher], same_second: bool
) -> None:
    from datetime import UTC, datetime, timedelta

    team, publisher = installed
    state = team.repo / ".cloned" / "state"
    write(state / "connectors" / "weather" / "data", "forecast.txt", "sunny\n")
    write(team.repo, ".cloned/connectors.yaml", connector_yaml(publisher).split("---")[0])
    commit_all(team.repo, "retire weather")
    assert team.run("apply").code == 3
    approve_pending(team)
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    clock = {"CLONED_NOW": moment.isoformat()}
    plan = json.loads(team.run("plan", "--json", env=clock).out)
    # What a kill leaves after the data moved into the half-made archive (the delete's
    # transaction never committed, so the connector is still applied and is deleted again).
    archive_id = f"weather-{moment:%Y%m%dT%H%M%SZ}-{plan['plan_id'].removeprefix('sha256:')[:8]}"
    partial = state / "archive" / f".partial-{archive_id}"
    partial.mkdir(parents=True)
    manifest: dict[str, object] = {"format": "cloned.archive/v1", "id": archive_id}
    manifest |= {"name": "weather"}
    manifest |= {"address": "connector.weather", "archived_at": moment.isoformat()}
    manifest |= {"plan_id": plan["plan_id"], "state": {}, "install": {}, "package": False}
    (partial / "manifest.json").write_text(json.dumps(manifest))
    os.rename(state / "connectors" / "weather" / "data", partial / "data")
    if not same_second:
        clock = {"CLONED_NOW": (moment + timedelta(seconds=5)).isoformat()}
    applied = team.run("apply", env=clock)
    assert applied.code == 0, applied.out + applied.err
    kept = list((state / "archive").rglob("forecast.txt"))
    assert [path.read_text() for path in kept] == ["sunny\n"]
    assert kept[0].parent.parent.name.startswith("weather-"), kept


ESCAPES = {
    "traversal": [tar_entry("../../../escaped.py", b"x")],
    "absolute": [tar_entry("/tmp/escaped.py", b"x")],
    "symlink": [tar_entry("server.py", kind=b"2", link="/etc/passwd")],
    "hardlink": [tar_entry("server.py", kind=b"1", link="/etc/passwd")],
    "device": [tar_entry("dev", kind=b"3")],
}


@pytest.mark.parametrize("attack", [*ESCAPES, "bomb"])
def test_a_signed_archive_that_escapes_or_explodes_is_refused_through_apply(
    installed: tuple[Team, Publisher], tmp_path: Path, attack: str
) -> None:
    import gzip
    import io
    import tarfile

    team, publisher = installed
    publisher.publish(tmp_path / "scratch", "1.0.1")
    manifest = (tmp_path / "scratch" / "src-1.0.1" / "connector.yaml").read_bytes()
    out = tmp_path / "hostile.tar.gz"
    if attack == "bomb":
        # A header promising 300 MB: refused on the header, before a byte is written.
        info, _ = tar_entry("bomb")
        assert isinstance(info, tarfile.TarInfo)
        info.size = 300 * 1024 * 1024
        raw = info.tobuf(tarfile.PAX_FORMAT) + bytes(1024 * 1024)
        out.write_bytes(gzip.compress(raw, mtime=0))
    else:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for info, data in [tar_entry("connector.yaml", manifest), *ESCAPES[attack]]:
                assert isinstance(info, tarfile.TarInfo)
                archive.addfile(info, io.BytesIO(data))
        out.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    republish(publisher, out, "acme/weather-1.0.1.tar.gz", signed_declared(publisher, "1.0.1"))
    set_version(team, publisher, "1.0.1")
    applied = team.run("apply")
    assert applied.code == 1, applied.out + applied.err
    assert "internal error" not in applied.err
    assert "connector.weather (update) FAILED" in applied.out
    (refusal,) = events(team, "connector.refused")
    wanted = "too-large" if attack == "bomb" else "unsafe-entry"
    assert refusal["payload"]["reason"] == wanted  # type: ignore[index]
    assert not list(tmp_path.rglob("escaped.py")) and not Path("/tmp/escaped.py").exists()
    assert ["# weather 1.0.0" in text for text in store_servers(team.repo)] == [True]


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"signed": 1}'])
@pytest.mark.parametrize("where", ["cache", "registry"])
def test_damaged_tuf_metadata_is_one_clear_error_and_installs_nothing(
    installed: tuple[Team, Publisher], tmp_path: Path, damage: bytes, where: str
) -> None:
    team, publisher = installed
    publisher.publish(tmp_path / "scratch", "1.0.1")
    set_version(team, publisher, "1.0.1")
    if where == "cache":
        folders = list((team.homes["operator"] / "registries").rglob("metadata"))
    else:
        folders = [publisher.folder / "metadata"]
    for folder in folders:
        for name in ("timestamp.json", "root.json", "snapshot.json", "acme.json"):
            for found in folder.glob(f"*{name}"):
                if where == "cache" or name == "timestamp.json":
                    found.write_bytes(damage)
    applied = team.run("apply")
    assert "internal error" not in applied.err, applied.err
    servers = store_servers(team.repo)
    if where == "registry":
        assert applied.code == 1, applied.out + applied.err
        assert 'registry "acme", package acme/weather 1.0.1: timestamp.json: tampered' in (
            applied.err
        )
        assert ["# weather 1.0.0" in text for text in servers] == [True]
    else:  # the client's own cache is only a cache: the registry's signed metadata wins
        assert applied.code == 0, applied.out + applied.err
        assert ["# weather 1.0.1" in text for text in servers] == [True]
