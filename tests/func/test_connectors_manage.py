"""`cloned connectors list|show|verify|restore` and `cloned archive list|purge` on the
quickstart, installed for real by `cloned apply` in a temporary git repository."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, cloned, commit_all, copy_quickstart, git, write

STORE = Path(".cloned/state/store/sha256")
CLOCK_DOC = re.compile(
    r"---\napiVersion: cloned/v1\nkind: Connector\nmetadata:\n  name: clock\n.*?(?=---)", re.S
)
NOTES_STEP = "    - name: notes\n      tool: {connector: notes, name: list_notes}\n"
DATE_STEP = "    - name: date\n      tool: {connector: clock, name: now}\n      with: {zone: UTC}\n"


def run(repo: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return cloned(*args, cwd=repo, env=env)


def as_json(repo: Path, *args: str) -> Any:
    result = run(repo, *args, "--json")
    assert result.code == 0, result.out + result.err
    return json.loads(result.out)


_BUILT: list[Path] = []


@pytest.fixture
def qs(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quickstart applied: builtin `notes` and registry package `clock` installed; the
    approver `demo` holds a key in this test's CLONED_HOME. Applied once per test process
    and copied (the repository and the CLONED_HOME apply ran with): the apply is most of a
    test's time."""
    if not _BUILT:
        _BUILT.append(_build_qs(tmp_path_factory.mktemp("quickstart-applied")))
    shutil.rmtree(repo)
    shutil.copytree(_BUILT[0] / "repo", repo, symlinks=True)
    shutil.copytree(_BUILT[0] / "home", os.environ["CLONED_HOME"], dirs_exist_ok=True)
    return repo


def _build_qs(base: Path) -> Path:
    repo, home = base / "repo", base / "home"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    copy_quickstart(repo)
    public = run(repo, "keys", "generate", "demo", env={"CLONED_HOME": str(home)}).out.strip()
    workspace = repo / ".cloned" / "workspace.yaml"
    text = re.sub(
        r'publicKey: "ssh-ed25519 [^"]+"', f'publicKey: "{public}"', workspace.read_text()
    )
    workspace.write_text(text)
    commit_all(repo, "the quickstart")
    applied = run(repo, "apply", env={"CLONED_HOME": str(home)})
    assert applied.code == 0, applied.out + applied.err
    return base


def entry_of(repo: Path, name: str) -> Path:
    shown = as_json(repo, "connectors", "show", name)
    assert isinstance(shown, dict)
    return Path(shown["install"]["store_entry"])


def events(repo: Path, type_: str) -> list[dict[str, Any]]:
    result = run(repo, "audit", "log", "--json")
    assert result.code == 0, result.err
    found = [json.loads(line) for line in result.out.splitlines()]
    return [event for event in found if event["type"] == type_]


def approve_all_and_apply(repo: Path) -> None:
    pending = run(repo, "apply")
    assert pending.code == 3, pending.out + pending.err
    listed = as_json(repo, "approvals", "list")
    assert isinstance(listed, list)
    for request in listed:
        if request["status"] == "pending":
            approved = run(repo, "approvals", "approve", str(request["id"]), "--key", "demo")
            assert approved.code == 0, approved.err
    applied = run(repo, "apply")
    assert applied.code == 0, applied.out + applied.err


def delete_clock(repo: Path) -> None:
    """Take the clock Connector (and the pipeline step that uses it) out and apply, approved."""
    registry = repo / ".cloned" / "registry.yaml"
    registry.write_text(CLOCK_DOC.sub("", registry.read_text(), count=1))
    pipeline = repo / ".cloned" / "pipelines" / "research-report.yaml"
    pipeline.write_text(pipeline.read_text().replace(DATE_STEP, ""))
    commit_all(repo, "no clock")
    approve_all_and_apply(repo)


def test_list_shows_each_installed_connector(qs: Path) -> None:
    listed = run(qs, "connectors", "list")
    assert listed.code == 0, listed.err
    header, *lines = listed.out.splitlines()
    assert header.split() == [
        "NAME",
        "VERSION",
        "SOURCE",
        "PUBLISHER",
        "DIGEST",
        "STATUS",
        "VERIFIED",
        "AT",
    ]
    assert lines[0].split()[:7] == [
        "clock",
        "1.0.0",
        "registry",
        "demo",
        "demo",
        lines[0].split()[5],
        "enabled",
    ]
    assert lines[1].split()[:6] == [
        "notes",
        "0.1.0",
        "builtin",
        "notes",
        "cloned",
        lines[1].split()[5],
    ]
    assert len(lines[1].split()[5]) == 12  # the digest, short

    data = as_json(qs, "connectors", "list")
    assert isinstance(data, dict)
    assert data["applied_from"] == "state" and data["desired_valid"] is True
    clock, notes = data["connectors"]
    assert clock["source"] == {"registry": {"name": "demo", "package": "demo/clock"}}
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", clock["digest"])
    assert notes["source"] == {"builtin": "notes"} and notes["status"] == "enabled"
    assert notes["verified_at"] and notes["publisher"] == "cloned"


def test_list_names_declared_but_unapplied_connectors(qs: Path) -> None:
    registry = qs / ".cloned" / "registry.yaml"
    registry.write_text(
        registry.read_text()
        + "---\napiVersion: cloned/v1\nkind: Connector\nmetadata:\n  name: jotter\nspec:\n"
        "  source: {builtin: notes}\n  version: 0.1.0\n  publisher: cloned\n"
    )
    data = as_json(qs, "connectors", "list")
    assert isinstance(data, dict)
    jotter = data["connectors"][-1]
    assert (jotter["name"], jotter["status"], jotter["digest"]) == ("jotter", "not applied", None)

    registry.write_text(registry.read_text() + "  bogus: field\n")
    broken = run(qs, "connectors", "list", "--json")
    assert broken.code == 0
    assert [c["name"] for c in json.loads(broken.out)["connectors"]] == ["clock", "notes"]
    assert "declared but not applied are not listed" in broken.err
    assert len(broken.err.strip().splitlines()) == 1


def test_a_disabled_connector_stays_installed_and_listed_disabled(qs: Path) -> None:
    registry = qs / ".cloned" / "registry.yaml"
    text = registry.read_text()
    registry.write_text(
        text.replace(
            "  limits: {ratePerMinute: 30}\n", "  limits: {ratePerMinute: 30}\n  enabled: false\n"
        )
    )
    # A pipeline step still names it: disabling is the emergency stop, and always plans.
    commit_all(qs, "notes off")
    applied = run(qs, "apply")
    assert applied.code == 0, applied.out + applied.err
    statuses = {c["name"]: c["status"] for c in as_json(qs, "connectors", "list")["connectors"]}
    assert statuses == {"clock": "enabled", "notes": "disabled"}
    assert run(qs, "connectors", "verify", "notes").code == 0


def test_list_without_a_state_database_reads_the_lock(qs: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git("clone", "-q", str(qs), str(clone), cwd=tmp_path)
    listed = run(clone, "connectors", "list")
    assert listed.code == 0, listed.err
    assert "not installed here" in listed.out and "cloned.lock" in listed.out
    shown = run(clone, "connectors", "show", "clock")
    assert shown.code == 0, shown.err
    assert "none here" in shown.out and "Health          unknown" in shown.out


def test_show_tells_everything_about_one(qs: Path) -> None:
    shown = run(qs, "connectors", "show", "clock")
    assert shown.code == 0, shown.err
    for expected in (
        "publisher     demo (signed by role demo)",
        "target        demo/clock-1.0.0.tar.gz (",
        "tools         now, convert",
        "run           python server.py",
        "TUF metadata  demo 2, root 1, snapshot 3, targets 2, timestamp 3",
        "Health          ok: the installed files verify",
    ):
        assert expected in shown.out
    data = as_json(qs, "connectors", "show", "clock")
    assert isinstance(data, dict)
    assert data["spec"]["tools"]["allow"] == ["now", "convert"]
    assert data["package"]["registry"]["target"] == "demo/clock-1.0.0.tar.gz"
    assert data["install"]["record"]["versions"]["timestamp"] == 3
    assert Path(data["install"]["store_entry"]).is_dir()
    assert data["data_folder"] == {
        "path": str(qs / ".cloned/state/connectors/clock/data"),
        "exists": True,
    }
    assert data["health"]["ok"] is True and data["health"]["problems"] == []


def test_show_of_an_unknown_name_lists_the_known_ones(qs: Path) -> None:
    shown = run(qs, "connectors", "show", "weather")
    assert shown.code == 1
    assert "no Connector named 'weather' (known: clock, notes)" in shown.err
    assert shown.out == ""


def test_verify_passes_then_finds_an_edited_file(qs: Path) -> None:
    ok = run(qs, "connectors", "verify")
    assert (ok.code, ok.out.split()) == (0, ["ok", "clock", "ok", "notes"])
    assert events(qs, "connectors.verified") == []  # a clean verify floods nothing

    server = entry_of(qs, "notes") / "server.py"
    server.chmod(server.stat().st_mode | stat.S_IWUSR)
    server.write_text(server.read_text() + "\nimport os  # injected\n")
    found = run(qs, "connectors", "verify")
    assert found.code == 1
    assert "ok      clock" in found.out
    assert re.search(r"FAILED  notes: .*server\.py", found.out)
    data = json.loads(run(qs, "connectors", "verify", "notes", "--json").out)
    assert data["ok"] is False and data["exit_code"] == 1
    assert [c["name"] for c in data["connectors"]] == ["notes"]
    assert any("server.py" in problem for problem in data["connectors"][0]["problems"])

    statuses = {c["name"]: c["status"] for c in as_json(qs, "connectors", "list")["connectors"]}
    assert statuses == {"clock": "enabled", "notes": "damaged"}
    (first, *_) = events(qs, "connectors.verified")
    assert first["payload"]["failed"] == 1 and "notes" in first["payload"]["connectors"]
    assert run(qs, "audit", "verify").code == 0


def test_verify_finds_a_deleted_store_entry(qs: Path) -> None:
    entry = entry_of(qs, "clock")
    for folder in [entry, *(p for p in entry.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)
    shutil.rmtree(entry)
    found = run(qs, "connectors", "verify", "clock")
    assert found.code == 1
    assert found.out.startswith("FAILED  clock: ")
    assert run(qs, "connectors", "verify", "notes").code == 0


def test_verify_of_an_unknown_name_is_refused(qs: Path) -> None:
    refused = run(qs, "connectors", "verify", "clock", "weather")
    assert refused.code == 1
    assert "no applied Connector named 'weather' (applied: clock, notes)" in refused.err


def test_delete_archives_and_restore_brings_it_back(qs: Path) -> None:
    write(qs, ".cloned/state/connectors/clock/data/kept.txt", "remember me")
    before = git("rev-parse", "HEAD", cwd=qs).strip()
    delete_clock(qs)
    assert not (qs / ".cloned/state/connectors/clock").joinpath("data").exists()
    listed = as_json(qs, "archive", "list")
    assert isinstance(listed, dict)
    (archive,) = listed["archives"]
    assert (archive["name"], archive["version"], archive["package"], archive["data"]) == (
        "clock",
        "1.0.0",
        True,
        True,
    )
    kept_until = datetime.fromisoformat(archive["kept_until"].replace("Z", "+00:00"))
    archived_at = datetime.fromisoformat(archive["archived_at"].replace("Z", "+00:00"))
    assert kept_until - archived_at == timedelta(days=7)
    assert "clock" in run(qs, "archive", "list").out

    restored = run(qs, "connectors", "restore", "clock")
    assert restored.code == 0, restored.err
    assert "is not installed by this" in restored.out
    assert (qs / ".cloned/state/connectors/clock/data/kept.txt").read_text() == "remember me"
    assert as_json(qs, "archive", "list")["archives"] == []
    (event,) = events(qs, "connector.restored")
    assert event["subject"] == "connector.clock"
    assert event["payload"]["archive"] == archive["id"]
    subject = git("log", "-1", "--format=%s", cwd=qs).strip()
    assert subject == f"cloned: connectors restore clock: archive {archive['id']}"
    assert ".cloned/audit/" in git("show", "--name-only", "--format=", "HEAD", cwd=qs)

    # Declare clock again, as it was before the delete.
    git("checkout", before, "--", ".cloned/registry.yaml", ".cloned/pipelines", cwd=qs)
    commit_all(qs, "clock again")
    approve_all_and_apply(qs)  # a Connector added to an applied workspace is gated
    statuses = {c["name"]: c["status"] for c in as_json(qs, "connectors", "list")["connectors"]}
    assert statuses["clock"] == "enabled"
    assert (qs / ".cloned/state/connectors/clock/data/kept.txt").read_text() == "remember me"
    assert run(qs, "connectors", "verify").code == 0


def test_restore_without_an_archive_is_refused(qs: Path) -> None:
    refused = run(qs, "connectors", "restore", "clock")
    assert refused.code == 1
    assert "no archive of connector 'clock'" in refused.err


def test_purge_keeps_the_retention_and_is_audited(qs: Path) -> None:
    delete_clock(qs)
    (archive,) = as_json(qs, "archive", "list")["archives"]
    archived_at = datetime.fromisoformat(archive["archived_at"].replace("Z", "+00:00"))

    refused = run(qs, "archive", "purge", "--older-than", "3d")
    assert refused.code == 1
    assert "keeps archives for 7d" in refused.err
    assert len(as_json(qs, "archive", "list")["archives"]) == 1

    young = run(qs, "archive", "purge", "--older-than", "7d")
    assert (young.code, young.out.strip()) == (0, "Nothing to purge: no archive is that old.")
    assert events(qs, "archive.purged") == []

    later = {"CLONED_NOW": (archived_at + timedelta(days=8)).isoformat()}
    purged = run(qs, "archive", "purge", "--older-than", "1w", "--json", env=later)
    assert purged.code == 0, purged.err
    data = json.loads(purged.out)
    assert [a["id"] for a in data["removed"]] == [archive["id"]]
    assert data["retention_days"] == 7 and data["older_than_days"] == 7
    assert as_json(qs, "archive", "list")["archives"] == []
    (event,) = events(qs, "archive.purged")
    assert event["payload"]["archives"] == [archive["id"]]
    assert run(qs, "audit", "verify").code == 0


def test_purge_refuses_a_bad_duration(qs: Path) -> None:
    refused = run(qs, "archive", "purge", "--older-than", "soon")
    assert refused.code == 1
    assert "--older-than 'soon': give a duration like 30d" in refused.err


def test_commands_that_write_need_a_state_database(workspace: Path) -> None:
    for args in (
        ("connectors", "verify"),
        ("connectors", "restore", "x"),
        ("archive", "purge", "--older-than", "30d"),
    ):
        refused = run(workspace, *args)
        assert refused.code == 1, args
        assert "no state database here" in refused.err
    assert not (workspace / ".cloned" / "state" / "cloned.db").exists()


def test_the_applied_workspace_sets_the_retention(repo: Path) -> None:
    copy_quickstart(repo)
    workspace = repo / ".cloned" / "workspace.yaml"
    workspace.write_text(workspace.read_text() + "  archive: {retentionDays: 2}\n")
    commit_all(repo, "short retention")
    assert run(repo, "apply").code == 0
    allowed = run(repo, "archive", "purge", "--older-than", "3d")
    assert (allowed.code, allowed.out.strip()) == (0, "Nothing to purge: no archive is that old.")
    refused = run(repo, "archive", "purge", "--older-than", "36h")
    assert refused.code == 1 and "keeps archives for 2d" in refused.err
    assert as_json(repo, "archive", "list")["retention_days"] == 2


def test_commands_that_write_wait_for_the_workspace_lock(qs: Path) -> None:
    from reconciler.state.db import StateDB
    from reconciler.state.lock import WorkspaceLock

    with StateDB.existing(qs) as db:
        assert db is not None
        with WorkspaceLock(db):
            for args in (("connectors", "verify"), ("archive", "purge", "--older-than", "30d")):
                refused = run(qs, *args)
                assert refused.code == 1, args
                assert "the workspace is locked by" in refused.err
    assert run(qs, "connectors", "verify").code == 0
