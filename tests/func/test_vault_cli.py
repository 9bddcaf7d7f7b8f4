"""`cloned vault status|list|set|rm` on the dev vault: what each prints (text and JSON), the
refusals (one line, exit 1, nothing written), the audit events, and the canary: a value set
appears in no output and no file under `.cloned/` or `$CLONED_HOME`, in no encoding."""

from __future__ import annotations

import json
import os
import pty
import select
from pathlib import Path

from tests.conftest import CLONED, WORKSPACE_YAML, Result, cloned, snapshot, write
from tests.func.vault_helpers import forms

CANARY = "canary-Zq8v!x/+Rk3p=Tw9"


def dev_workspace(repo: Path, extra: str = "  vault: {provider: dev}\n") -> Path:
    write(repo, ".cloned/workspace.yaml", WORKSPACE_YAML + extra)
    return repo


def test_set_list_status_rm_in_text(repo: Path) -> None:
    dev_workspace(repo)
    empty = cloned("vault", "list", cwd=repo)
    assert empty.code == 0 and "No secrets in the dev vault" in empty.out
    done = cloned("vault", "set", "gh-token", cwd=repo, stdin="first-value-1\n")
    assert done.code == 0, done.err
    assert done.out.startswith("Set gh-token version ") and done.out.endswith(
        " in the dev vault.\n"
    )
    again = cloned("vault", "set", "gh-token", cwd=repo, stdin="second-value-2")
    listed = cloned("vault", "list", cwd=repo)
    version = again.out.split()[3]
    assert listed.code == 0 and listed.out.split()[:2] == ["gh-token", version]
    status = cloned("vault", "status", cwd=repo)
    assert status.code == 0
    assert status.out.startswith("dev (DEV ONLY") and "reachable, 1 secrets" in status.out
    removed = cloned("vault", "rm", "gh-token", "--yes", cwd=repo)
    assert removed.code == 0 and "Removed gh-token (every version)" in removed.out
    assert "No secrets" in cloned("vault", "list", cwd=repo).out


def test_every_command_with_json(repo: Path) -> None:
    dev_workspace(repo)
    made = cloned("vault", "set", "api-key", "--json", cwd=repo, stdin="value-for-json")
    assert made.code == 0
    result = json.loads(made.out)
    assert result["set"]["name"] == "api-key" and result["provider"] == "dev"
    assert result["audited"] is False  # nothing applied: no state database yet
    listed = json.loads(cloned("vault", "list", "--json", cwd=repo).out)
    assert listed["secrets"] == [
        {
            "name": "api-key",
            "version": result["set"]["version"],
            "updated": listed["secrets"][0]["updated"],
            "enabled": True,
        }
    ]
    status = json.loads(cloned("vault", "status", "--json", cwd=repo).out)
    assert status["provider"] == "dev" and status["dev_only"] and status["secrets"] == 1
    gone = json.loads(cloned("vault", "rm", "api-key", "--yes", "--json", cwd=repo).out)
    assert gone["deleted"] == {"name": "api-key", "version": result["set"]["version"]}


def test_the_value_stdin_gives_is_stored_with_one_newline_removed(repo: Path) -> None:
    from reconciler.vault.dev import DevVault

    dev_workspace(repo)
    assert cloned("vault", "set", "a-token", cwd=repo, stdin="two-lines\n\n").code == 0
    assert cloned("vault", "set", "b-token", cwd=repo, stdin="windows-line\r\n").code == 0
    store = DevVault(repo, "demo", home=Path(os.environ["CLONED_HOME"]))
    assert store.get("a-token").value == "two-lines\n"
    assert store.get("b-token").value == "windows-line"


def refused(repo: Path, *args: str, stdin: str = "long-enough-value") -> Result:
    """Run `cloned vault ...`, expect exit 1 with one `Error:` line, and nothing written."""
    home = Path(os.environ["CLONED_HOME"])
    before = snapshot(repo), snapshot(home)
    result = cloned("vault", *args, cwd=repo, stdin=stdin)
    assert result.code == 1, result
    assert result.err.count("Error: ") == 1
    assert not result.out or json.loads(result.out)["exit_code"] == 1  # --json: the error
    assert (snapshot(repo), snapshot(home)) == before
    return result


def test_bad_input_is_one_line_exit_1_and_nothing_written(repo: Path) -> None:
    dev_workspace(repo)
    cloned("validate", cwd=repo)  # its content cache is written once, before the snapshots
    assert "not a secret name" in refused(repo, "set", "Bad_Name").err
    assert "at least 8 are needed" in refused(repo, "set", "gh-token", stdin="short\n").err
    extra = refused(repo, "set", "gh-token", "the-value-itself")
    assert "takes only NAME" in extra.err and "never from an argument" in extra.err
    assert "needs --yes" in refused(repo, "rm", "gh-token").err
    assert "has no secret 'gh-token'" in refused(repo, "rm", "gh-token", "--yes").err
    as_json = refused(repo, "set", "Bad_Name", "--json")
    assert "not a secret name" in json.loads(as_json.out)["error"]


def test_no_vault_and_the_dev_vault_under_strict_or_enterprise_are_refused(repo: Path) -> None:
    dev_workspace(repo, extra="")
    cloned("validate", cwd=repo)
    for args in (("status",), ("list",), ("set", "gh-token")):
        assert "has no vault" in refused(repo, *args).err
    dev_workspace(repo, extra="  vault: {provider: dev}\n  tier: enterprise\n")
    cloned("validate", cwd=repo)
    assert "refused under tier 'enterprise'" in refused(repo, "set", "gh-token").err
    strict = WORKSPACE_YAML.replace("[baseline]", "[baseline, strict]")
    write(repo, ".cloned/workspace.yaml", strict + "  vault: {provider: dev}\n")
    cloned("validate", cwd=repo)
    assert "the 'strict' policy pack" in refused(repo, "status").err


def test_status_of_a_tampered_vault_exits_1_with_one_line(repo: Path) -> None:
    dev_workspace(repo)
    cloned("vault", "set", "gh-token", cwd=repo, stdin="value-to-tamper")
    file = repo / ".cloned/state/vault/dev.json"
    file.write_text(file.read_text().replace('"generation":1', '"generation":7'))
    status = cloned("vault", "status", cwd=repo)
    assert status.code == 1 and not status.out
    assert status.err.count("\n") == 1 and "UNREACHABLE" in status.err and str(file) in status.err
    listed = cloned("vault", "list", cwd=repo)
    assert listed.code == 1 and "changed outside Cloned" in listed.err


def with_dev_vault(applied: Path) -> Path:
    """The applied quickstart with the dev vault chosen in its (desired) Workspace: `cloned
    vault` reads the desired Workspace, and the applied state's database audits."""
    workspace = applied / ".cloned" / "workspace.yaml"
    workspace.write_text(workspace.read_text().replace("provider: none", "provider: dev"))
    return applied


def test_set_and_rm_are_audited_by_name_and_version(applied: Path) -> None:
    with_dev_vault(applied)
    made = json.loads(cloned("vault", "set", "gh-token", "--json", cwd=applied, stdin=CANARY).out)
    assert made["audited"] is True
    cloned("vault", "rm", "gh-token", "--yes", cwd=applied)
    log = cloned("audit", "log", "--type", "vault", "--json", cwd=applied).out.splitlines()
    events = [(e["type"], e["subject"], e["payload"]) for e in map(json.loads, log)]
    expected = {"name": "gh-token", "version": made["set"]["version"], "provider": "dev"}
    assert events == [
        ("vault.secret_set", "vault://gh-token", expected),
        ("vault.secret_deleted", "vault://gh-token", expected),
    ]
    shown = cloned("audit", "log", "--type", "vault", cwd=applied).out
    assert f"vault://gh-token  version {made['set']['version']} in the dev vault" in shown
    assert cloned("audit", "verify", cwd=applied).code == 0


def test_the_canary_value_is_in_no_output_and_no_file(applied: Path) -> None:
    with_dev_vault(applied)
    home = Path(os.environ["CLONED_HOME"])
    outputs = [
        cloned("vault", "set", "canary", cwd=applied, stdin=CANARY + "\n"),
        cloned("vault", "set", "canary", "--json", cwd=applied, stdin=CANARY),
        cloned("vault", "set", "other", cwd=applied, stdin="not-the-canary"),
        cloned("vault", "set", "canary", "extra", cwd=applied, stdin=CANARY),
        cloned("vault", "list", cwd=applied),
        cloned("vault", "list", "--json", cwd=applied),
        cloned("vault", "status", cwd=applied),
        cloned("vault", "status", "--json", cwd=applied),
        cloned("audit", "log", "--long", cwd=applied),
        cloned("vault", "rm", "other", "--yes", cwd=applied),
        cloned("vault", "rm", "other", "--yes", "--json", cwd=applied),
    ]
    assert [r.code for r in outputs[:3]] == [0, 0, 0]
    printed = "".join(r.out + r.err for r in outputs).encode()
    files = [p for p in [*(applied / ".cloned").rglob("*"), *home.rglob("*")] if p.is_file()]
    assert any(p.name == "dev.json" for p in files)
    for encoded in forms(CANARY):
        assert encoded not in printed
        for path in files:
            assert encoded not in path.read_bytes(), path


def tty_run(repo: Path, args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run the installed `cloned` with a pseudo-terminal as its controlling terminal, typing
    each answer after the next prompt; its exit code and everything it showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: a new session whose terminal is the pty
        os.chdir(repo)
        os.execv(str(CLONED), [str(CLONED), *args])
    shown = b""
    pending = list(answers)
    while True:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            os.kill(pid, 9)
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
        if pending and shown.rstrip().endswith((b":", b"]")):
            os.write(fd, pending.pop(0).encode() + b"\n")
            shown += b"<typed>"
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_at_a_terminal_set_asks_twice_hidden_and_rm_asks_first(repo: Path) -> None:
    dev_workspace(repo)
    code, shown = tty_run(repo, ["vault", "set", "gh-token"], [CANARY, CANARY])
    assert code == 0, shown
    assert "Value of gh-token:" in shown and "Value of gh-token again:" in shown
    assert CANARY not in shown and "Set gh-token version" in shown
    code, shown = tty_run(repo, ["vault", "set", "gh-token"], [CANARY, CANARY + "x"])
    assert code == 1 and "the two values typed differ" in shown
    code, shown = tty_run(repo, ["vault", "rm", "gh-token"], ["n"])
    assert code == 1 and "Nothing was removed" in shown
    assert "gh-token" in cloned("vault", "list", cwd=repo).out
    code, shown = tty_run(repo, ["vault", "rm", "gh-token"], ["y"])
    assert code == 0 and "Removed gh-token" in shown
