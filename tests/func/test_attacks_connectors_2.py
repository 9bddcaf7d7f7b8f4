"""Second attack round on connectors: the repair path, the fresh-pin shortcut, restore and
purge of archives, the tracked-state check, and bad input to the commands that manage what
is installed (`connectors list|show|verify|restore`, `archive list|purge`). Each attempt is
built with the real commands and asserts it is held: nothing unapproved or unverified is
installed, nothing is lost, and bad input is one clear error, never an internal error."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import Result, commit_all, git, write
from tests.func.attack_helpers import install_weather, store_servers
from tests.func.engine_helpers import Team
from tests.func.registry_helpers import Publisher, approve_pending, connector_yaml, weather_server

STATE = Path(".cloned/state")


@pytest.fixture
def installed(repo: Path, tmp_path: Path) -> tuple[Team, Publisher]:
    return install_weather(repo, tmp_path)


def clear_error(result: Result) -> None:
    """Refused with one clear error: exit 1, no internal error."""
    assert result.code == 1, result.out + result.err
    assert "internal error" not in result.err and "Traceback" not in result.err, result.err


def archived(team: Team, publisher: Publisher, data: str = "sunny\n") -> Path:
    """Delete the weather Connector (approved), its data folder holding forecast.txt; the
    archive folder it leaves."""
    write(team.repo / STATE / "connectors" / "weather" / "data", "forecast.txt", data)
    write(team.repo, ".cloned/connectors.yaml", connector_yaml(publisher).split("---")[0])
    commit_all(team.repo, "retire weather")
    assert team.run("apply").code == 3
    approve_pending(team)
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    (folder,) = [p for p in (team.repo / STATE / "archive").iterdir()]
    return folder


DAMAGES: list[tuple[str, object]] = [
    ("archived_at", "yesterday"),
    ("archived_at", 7),
    ("archived_at", "2026-01-01T00:00:00"),
    ("install", [1]),
    ("name", ["weather"]),
    ("state", "x"),
]


def test_a_damaged_archive_manifest_is_one_clear_error(installed: tuple[Team, Publisher]) -> None:
    team, publisher = installed
    folder = archived(team, publisher)
    good = json.loads((folder / "manifest.json").read_text())
    for field, value in DAMAGES:
        (folder / "manifest.json").write_text(json.dumps({**good, field: value}))
        for args in (
            ("archive", "list"),
            ("archive", "list", "--json"),
            ("archive", "purge", "--older-than", "30d"),
            ("connectors", "restore", "weather"),
        ):
            clear_error(team.run(*args))
        assert (folder / "data" / "forecast.txt").read_text() == "sunny\n"


@pytest.mark.parametrize("kind", ["file", "symlink", "dangling"])
def test_restore_over_a_data_path_that_is_not_a_folder_loses_nothing(
    installed: tuple[Team, Publisher], tmp_path: Path, kind: str
) -> None:
    team, publisher = installed
    folder = archived(team, publisher)
    data = team.repo / STATE / "connectors" / "weather" / "data"
    data.parent.mkdir(parents=True, exist_ok=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if kind == "file":
        data.write_text("mine\n")
    else:
        data.symlink_to(elsewhere if kind == "symlink" else tmp_path / "gone")
    clear_error(team.run("connectors", "restore", "weather"))
    assert (folder / "data" / "forecast.txt").read_text() == "sunny\n"
    assert list(elsewhere.iterdir()) == []
    if kind == "file":
        assert data.read_text() == "mine\n"


@pytest.mark.parametrize("kind", ["file", "symlink", "empty"])
def test_a_store_entry_replaced_is_found_and_repaired_never_a_crash(
    installed: tuple[Team, Publisher], tmp_path: Path, kind: str
) -> None:
    team, _ = installed
    (entry,) = (team.repo / STATE / "store" / "sha256").iterdir()
    shutil.rmtree(entry)
    if kind == "file":
        entry.write_text("not a folder\n")
    elif kind == "symlink":
        write(tmp_path / "fake", "server.py", "# fake\n")
        entry.symlink_to(tmp_path / "fake")
    else:
        entry.mkdir()
    for args in (("connectors", "list", "--json"), ("connectors", "show", "weather")):
        shown = team.run(*args)
        assert shown.code == 0, shown.out + shown.err
    checked = team.run("connectors", "verify", "--json")
    assert checked.code == 1, checked.out + checked.err
    assert "internal error" not in checked.err
    assert json.loads(checked.out)["connectors"][0]["ok"] is False
    plan = team.run("plan")
    assert plan.code == 0 and "- installed: " in plan.out, plan.out + plan.err
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    assert store_servers(team.repo) == [weather_server("1.0.0")]
    assert team.run("connectors", "verify").code == 0


@pytest.mark.parametrize("how", ["one-file", "staged-only", "symlink", "submodule"])
def test_state_that_git_tracks_is_refused_however_it_got_there(
    installed: tuple[Team, Publisher], tmp_path: Path, how: str
) -> None:
    team, _ = installed
    state = team.repo / STATE
    if how in ("one-file", "staged-only"):
        git("add", "-f", ".cloned/state/cloned.db", cwd=team.repo)
        if how == "one-file":
            git("commit", "-qm", "the database", cwd=team.repo)
    elif how == "symlink":
        os.rename(state, team.repo / "elsewhere")
        state.symlink_to("../elsewhere")
        git("add", "-f", ".cloned/state", cwd=team.repo)
        git("commit", "-qm", "state as a link", cwd=team.repo)
    else:
        sub = tmp_path / "sub"
        sub.mkdir()
        git("init", "-q", cwd=sub)
        write(sub, "cloned.db", "planted\n")
        git("add", "-A", cwd=sub)
        git("-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "s", cwd=sub)
        gitlink = f"160000,{git('rev-parse', 'HEAD', cwd=sub).strip()},.cloned/state"
        git("update-index", "--add", "--cacheinfo", gitlink, cwd=team.repo)
        git("commit", "-qm", "state as a submodule", cwd=team.repo)
    for args in (
        ("apply",),
        ("connectors", "verify"),
        ("connectors", "restore", "weather"),
        ("archive", "purge", "--older-than", "30d"),
        ("archive", "list"),
    ):
        refused = team.run(*args)
        clear_error(refused)
        assert "git tracks files in .cloned/state/" in refused.err, (args, refused.err)


def test_an_archive_that_arrived_through_git_is_never_restored(
    installed: tuple[Team, Publisher], tmp_path: Path
) -> None:
    team, publisher = installed
    folder = archived(team, publisher, data="mine\n")
    # Someone commits an archive of their own making (their data) in a pull request.
    shutil.rmtree(folder / "data")
    write(folder / "data", "forecast.txt", "planted\n")
    git("add", "-f", str(folder.relative_to(team.repo)), cwd=team.repo)
    git("commit", "-qm", "an archive", cwd=team.repo)
    refused = team.run("connectors", "restore", "weather")
    clear_error(refused)
    assert "git tracks files in .cloned/state/" in refused.err
    assert not (team.repo / STATE / "connectors" / "weather" / "data").exists()
    assert (folder / "data" / "forecast.txt").read_text() == "planted\n"


def test_a_secret_in_a_package_description_never_reaches_the_connector_commands(
    repo: Path, tmp_path: Path
) -> None:
    from tests.func.attack_helpers import leaky_release
    from tests.func.engine_helpers import TOKEN
    from tests.func.registry_helpers import weather_team

    team, publisher = weather_team(repo, tmp_path)
    leaky_release(team, publisher, tmp_path)
    assert team.run("apply").code == 0
    outputs = [team.run("connectors", "list"), team.run("connectors", "list", "--json")]
    outputs += [team.run("connectors", "show", "weather", "--json")]
    outputs += [team.run("connectors", "show", "weather")]
    outputs += [team.run("connectors", "verify", "--json")]
    archived(team, publisher)
    outputs += [team.run("archive", "list", "--json"), team.run("archive", "list")]
    outputs += [team.run("connectors", "restore", "weather", "--json")]
    outputs += [team.run("audit", "log", "--json")]
    for index, result in enumerate(outputs):
        assert result.code == 0, result.out + result.err
        assert TOKEN not in result.out + result.err, index
    for path in (repo / ".cloned" / "audit").rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(), path


MIRROR = """\
---
apiVersion: cloned/v1
kind: Registry
metadata: {{name: mirror}}
spec:
  url: file:reg2
  root: {pin}
---
apiVersion: cloned/v1
kind: Connector
metadata: {{name: weather2}}
spec:
  source: {{registry: {{name: mirror, package: acme/weather}}}}
  version: 1.0.0
  publisher: acme
"""


def test_a_repair_is_not_spared_its_registry_check_by_another_registry_serving_the_digest(
    installed: tuple[Team, Publisher], tmp_path: Path
) -> None:
    from tests.func.attack_helpers import republish
    from tests.func.registry_helpers import make_publisher

    team, publisher = installed
    # A second registry serves the very same archive (same bytes, so the same digest).
    other = make_publisher(tmp_path / "other", team.repo / "reg2")
    assert other.target("1.0.0").read_bytes() == publisher.target("1.0.0").read_bytes()
    # The first registry no longer vouches for what weather pinned: it signs other bytes.
    src = tmp_path / "evil"
    write(
        src, "connector.yaml", (tmp_path / "scratch" / "src-1.0.0" / "connector.yaml").read_text()
    )
    write(src, "server.py", "# evil 1.0.0\n")
    publisher.run("connectors", "pack", str(src), "--out", str(tmp_path / "evil.tar.gz"))
    republish(publisher, tmp_path / "evil.tar.gz", "acme/weather-1.0.0.tar.gz")
    # weather2 is added from the mirror and approved; then weather's store entry is damaged,
    # so the next apply both repairs weather and installs weather2.
    with (team.repo / ".cloned" / "connectors.yaml").open("a") as out:
        out.write(MIRROR.format(pin=other.pin))
    commit_all(team.repo, "weather2 from the mirror")
    assert team.run("apply").code == 3
    approve_pending(team)
    (entry,) = (team.repo / STATE / "store" / "sha256").iterdir()
    os.chmod(entry, 0o700)
    shutil.rmtree(entry)
    applied = team.run("apply")
    # weather2 installs (the mirror vouches for it now); weather's repair is refused, as it
    # is without weather2 beside it: its own registry signs another archive under its pin.
    assert applied.code == 1, applied.out + applied.err
    assert "signs another acme/weather-1.0.0.tar.gz" in applied.out + applied.err
    assert "connector.weather2 (create) applied" in applied.out, applied.out


class Counting:
    """Serves a registry folder on 127.0.0.1 and counts the requests for each file name."""

    def __init__(self, folder: Path) -> None:
        import threading
        from collections import Counter
        from functools import partial
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        self.seen: Counter[str] = Counter()
        seen = self.seen

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                seen[self.path.rsplit("/", 1)[-1]] += 1
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"


def test_an_apply_asks_the_registry_once_for_what_its_own_plan_resolved_and_again_to_repair(
    repo: Path, tmp_path: Path
) -> None:
    from tests.func.registry_helpers import weather_team

    served = tmp_path / "served"
    served.mkdir()
    server = Counting(served)
    try:
        team, publisher = weather_team(repo, tmp_path, url=server.url)
        served.rmdir()
        os.rename(publisher.folder, served)
        commit_all(repo, "registry served over HTTP")
        assert team.run("apply").code == 0
        # The plan resolved the pin just now: the install downloads without asking again.
        assert server.seen["timestamp.json"] == 1, server.seen
        (entry,) = (repo / STATE / "store" / "sha256").iterdir()
        os.chmod(entry, 0o700)
        shutil.rmtree(entry)
        server.seen.clear()
        assert team.run("apply").code == 0
        # A repair reinstalls the applied pin (reused, not resolved): the registry is asked.
        assert server.seen["timestamp.json"] == 1, server.seen
        assert len(store_servers(repo)) == 1
    finally:
        server.server.shutdown()
        server.server.server_close()


def test_a_saved_plan_applied_after_the_registry_re_signed_its_version_is_stale(
    installed: tuple[Team, Publisher], tmp_path: Path
) -> None:
    from tests.func.attack_helpers import republish, set_version

    team, publisher = installed
    publisher.publish(tmp_path / "scratch", "1.1.0")
    set_version(team, publisher, "1.1.0")
    assert team.run("plan", "--out", "p.json").code == 0
    approve_pending(team)
    # After the review, the registry signs other bytes under the planned version.
    src = tmp_path / "evil"
    write(
        src, "connector.yaml", (tmp_path / "scratch" / "src-1.1.0" / "connector.yaml").read_text()
    )
    write(src, "server.py", "# evil 1.1.0\n")
    publisher.run("connectors", "pack", str(src), "--out", str(tmp_path / "evil.tar.gz"))
    republish(publisher, tmp_path / "evil.tar.gz", "acme/weather-1.1.0.tar.gz")
    applied = team.run("apply", "p.json")
    clear_error(applied)
    assert "stale" in applied.err, applied.err
    assert not any("evil" in text for text in store_servers(team.repo))


def test_a_package_edited_while_archived_is_never_what_a_declared_again_connector_runs(
    installed: tuple[Team, Publisher], tmp_path: Path
) -> None:
    from reconciler.packages.tree import read_folder

    team, publisher = installed
    folder = archived(team, publisher)
    # Someone with the state folder edits the archived package, and the manifest to match.
    package = folder / "package"
    (package / "server.py").write_text("# edited while archived\n")
    manifest = json.loads((folder / "manifest.json").read_text())
    honest = manifest["install"]["tree"]
    manifest["install"]["tree"] = read_folder(package, skip_caches=False).digest
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert team.run("connectors", "restore", "weather").code == 0
    write(team.repo, ".cloned/connectors.yaml", connector_yaml(publisher))
    commit_all(team.repo, "weather again")
    assert team.run("apply").code == 3
    approve_pending(team)
    applied = team.run("apply")
    assert applied.code == 0, applied.out + applied.err
    shown = json.loads(team.run("connectors", "show", "weather", "--json").out)
    assert shown["install"]["record"]["tree"] == honest
    entry = Path(shown["install"]["store_entry"])
    assert (entry / "server.py").read_text().endswith("# weather 1.0.0\n")
    assert (team.repo / STATE / "connectors" / "weather" / "data" / "forecast.txt").is_file()
    assert team.run("connectors", "verify").code == 0


ODD_DURATIONS = ["-1d", "1.5d", "30D", "30 d", "", "0x10d", "1e9d", "999999999w", "30d\n7d"]
ODD_DURATIONS += ["\u0663\u0660d", "\x00"]


def test_odd_durations_are_a_usage_error_or_a_purge_within_the_retention(
    installed: tuple[Team, Publisher],
) -> None:
    team, publisher = installed
    folder = archived(team, publisher)
    for older_than in ODD_DURATIONS:
        result = team.run("archive", "purge", "--older-than", older_than, "--json")
        assert result.code in (0, 1), (older_than, result.out + result.err)
        assert "internal error" not in result.err + result.out, older_than
    assert (folder / "data" / "forecast.txt").read_text() == "sunny\n"


ODD_NAMES = ["", "../weather", "weather/..", "x" * 5000, "we\nather", "-"]


def test_odd_names_are_one_clear_error(installed: tuple[Team, Publisher]) -> None:
    team, _ = installed
    for name in ODD_NAMES:
        for command in ("show", "verify", "restore"):
            clear_error(team.run("connectors", command, name))
    assert team.run("connectors", "verify").code == 0


def test_a_branch_that_shortens_the_retention_cannot_purge_what_it_deleted(
    installed: tuple[Team, Publisher],
) -> None:
    team, publisher = installed
    folder = archived(team, publisher)
    team.edit(".cloned/workspace.yaml", "spec:\n", "spec:\n  archive: {retentionDays: 0}\n")
    commit_all(team.repo, "keep nothing")
    refused = team.run("archive", "purge", "--older-than", "0d")
    clear_error(refused)
    assert "keeps archives for 7d" in refused.err
    assert (folder / "data" / "forecast.txt").read_text() == "sunny\n"


def test_state_tracked_through_a_linked_cloned_folder_is_refused(
    installed: tuple[Team, Publisher],
) -> None:
    team, _ = installed
    # .cloned is committed as a link to cfg/, and cfg/state/ (the state) with it.
    os.rename(team.repo / ".cloned", team.repo / "cfg")
    (team.repo / ".cloned").symlink_to("cfg")
    git("rm", "-rq", "--cached", ".cloned", cwd=team.repo)
    git("add", "-A", cwd=team.repo)
    git("add", "-f", "cfg/state/cloned.db", cwd=team.repo)
    git("commit", "-qm", "config in cfg/", cwd=team.repo)
    assert "cfg/state/cloned.db" in git("ls-files", cwd=team.repo)
    for args in (("apply",), ("connectors", "verify")):
        clear_error(team.run(*args))


@pytest.mark.parametrize("kind", ["file", "link"])
def test_a_leftover_archive_name_that_is_not_a_folder_is_one_clear_error(
    installed: tuple[Team, Publisher], tmp_path: Path, kind: str
) -> None:
    team, publisher = installed
    folder = archived(team, publisher)
    leftover = folder.parent / ".partial-weather-20260101T000000Z-00000000"
    kept = tmp_path / "kept"
    write(kept, "precious.txt", "keep\n")
    if kind == "file":
        leftover.write_text("x\n")
    else:
        leftover.symlink_to(kept)
    for args in (("archive", "list"), ("connectors", "restore", "weather")):
        result = team.run(*args)
        assert "internal error" not in result.err, result.err
    assert (kept / "precious.txt").read_text() == "keep\n"


def test_an_archive_name_linked_elsewhere_is_never_restored_from(
    installed: tuple[Team, Publisher], tmp_path: Path
) -> None:
    team, publisher = installed
    folder = archived(team, publisher)
    elsewhere = tmp_path / "elsewhere"
    os.rename(folder, elsewhere)
    folder.symlink_to(elsewhere)
    clear_error(team.run("connectors", "restore", "weather"))
    assert (elsewhere / "data" / "forecast.txt").read_text() == "sunny\n"
    assert not (team.repo / STATE / "connectors" / "weather" / "data").exists()
