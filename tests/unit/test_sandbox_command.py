"""egress.sandbox without starting anything but the probe: the bwrap command it builds (what is
hidden, what is bound back, in which order, with which environment), the profiles' decisions,
and the reasons it gives when bubblewrap is missing or cannot create namespaces."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reconciler.egress.sandbox import (
    BWRAP_ENV,
    SandboxRefused,
    bwrap_command,
    confinement,
    expected,
    isolation,
    wrap,
)
from reconciler.runtime.types import Launch


def folders(tmp_path: Path) -> dict[str, Path]:
    made = {
        "home": tmp_path / "home",
        "cloned": tmp_path / "home" / ".config" / "cloned",
        "repo": tmp_path / "home" / "work" / "repo",
        "entry": tmp_path / "home" / "work" / "repo" / ".cloned" / "state" / "store" / "e",
        "data": tmp_path / "home" / "work" / "repo" / ".cloned" / "state" / "connectors" / "d",
    }
    for path in made.values():
        path.mkdir(parents=True, exist_ok=True)
    return made


def argv(tmp_path: Path, **extra: list[Path]) -> list[str]:
    f = folders(tmp_path)
    return list(
        bwrap_command(
            "/usr/bin/bwrap",
            ["python", "server.py"],
            cwd=f["entry"],
            hidden=[f["repo"], f["cloned"], f["home"], Path("/")],
            writable=[f["data"]],
            readable=[f["entry"], *extra.get("readable", [])],
        )
    )


def pairs(args: list[str], option: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == option]


def test_the_command_isolates_everything_and_drops_every_capability(tmp_path: Path) -> None:
    args = argv(tmp_path)
    head = args[: args.index("--ro-bind")]
    assert head[:4] == ["/usr/bin/bwrap", "--unshare-all", "--unshare-net", "--die-with-parent"]
    assert pairs(head, "--cap-drop") == ["ALL"]
    assert "--new-session" not in args  # it would take the server out of its process group
    assert args[args.index("--ro-bind") : args.index("--ro-bind") + 3] == ["--ro-bind", "/", "/"]
    assert args[-3:] == ["--", "python", "server.py"]


def test_hidden_trees_cover_nested_ones_and_never_the_root(tmp_path: Path) -> None:
    args = argv(tmp_path)
    home = str(Path(tmp_path / "home").resolve())
    assert pairs(args, "--tmpfs") == ["/tmp", "/run", home]  # the repo and CLONED_HOME are inside
    assert pairs(args, "--remount-ro") == [home]
    # what is bound back comes after the tmpfs and before it is made read-only
    entry = args.index("--ro-bind", args.index("--tmpfs", args.index("--tmpfs") + 1))
    assert args.index("--tmpfs", args.index("--tmpfs") + 1) < entry < args.index("--remount-ro")
    assert str(folders(tmp_path)["entry"].resolve()) in pairs(args, "--ro-bind")
    assert pairs(args, "--bind") == [str(folders(tmp_path)["data"].resolve())]


def test_readable_paths_outside_the_hidden_trees_are_not_bound_again(tmp_path: Path) -> None:
    visible = Path(sys.prefix).resolve()  # Cloned's own Python: visible through / already
    missing = tmp_path / "home" / "gone"
    args = argv(tmp_path, readable=[visible, missing])
    bound = pairs(args, "--ro-bind")
    if not str(visible).startswith(("/tmp/", str(tmp_path))):
        assert str(visible) not in bound
    assert str(missing) not in bound and str(missing.resolve()) not in bound


def test_no_environment_variable_is_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line is world-readable (/proc/PID/cmdline): bwrap gets the environment as
    its own (the runtime spawns it with exactly the launch's) and passes it on."""
    from reconciler.egress.sandbox import wrap
    from reconciler.runtime.types import Launch

    monkeypatch.setenv(BWRAP_ENV, str(fake_bwrap(tmp_path, "exit 0\n")))
    f = folders(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "WEATHER_TOKEN": "tok-7Q2M9XW4PA8RJD"}
    plain = Launch("w", ("python", "server.py"), f["entry"], env, tmp_path / "log")
    boxed = wrap(
        plain,
        profile="strict",
        name="w",
        root=f["repo"],
        cloned_home=f["cloned"],
        user_home=f["home"],
        writable=[f["data"]],
        readable=[f["entry"]],
    )
    assert boxed.command[0] == str(tmp_path / "bwrap") and boxed.env == env
    assert not any("tok-7Q2M9XW4PA8RJD" in arg or "WEATHER_TOKEN" in arg for arg in boxed.command)
    assert "--setenv" not in boxed.command and "--clearenv" not in boxed.command
    assert "tok-7Q2M9XW4PA8RJD" not in repr(boxed)  # nor in a log line that prints the launch


def fake_bwrap(tmp_path: Path, script: str) -> Path:
    path = tmp_path / "bwrap"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


def test_a_missing_binary_refuses_strict_and_says_why_under_standard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BWRAP_ENV, str(tmp_path / "no-bwrap"))
    assert not isolation().available
    with pytest.raises(SandboxRefused) as refused:
        confinement("strict", name="notes")
    assert "connector.notes: sandbox.profile strict needs bubblewrap" in refused.value.message
    assert "apt-get install bubblewrap" in str(refused.value.hint)
    standard = confinement("standard", name="notes")
    assert not standard.sandboxed
    assert (
        standard.summary()
        == f"none (bubblewrap not found at {tmp_path / 'no-bwrap'} (CLONED_BWRAP); "
        "egress: proxy variables only, not enforced)"
    )
    assert expected("strict").refused
    assert expected("none").reason == "sandbox.profile none: an explicit, approved opt-out"


def test_user_namespaces_turned_off_is_named_in_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = "bwrap: No permissions to create new namespace, likely because the kernel does not"
    monkeypatch.setenv(BWRAP_ENV, str(fake_bwrap(tmp_path, f"echo '{said}' >&2\nexit 1\n")))
    found = isolation()
    assert not found.available
    assert said in str(found.reason) and "user namespaces" in str(found.reason)


def test_wrap_leaves_the_environment_and_replaces_only_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BWRAP_ENV, str(fake_bwrap(tmp_path, "exit 0\n")))
    f = folders(tmp_path)
    launch = Launch("n", ("python", "s.py"), f["entry"], {"PATH": "/bin"}, tmp_path / "log")
    common = {
        "name": "n",
        "root": f["repo"],
        "cloned_home": f["cloned"],
        "user_home": f["home"],
        "writable": [f["data"]],
        "readable": [f["entry"]],
    }
    wrapped = wrap(launch, profile="standard", **common)
    assert isinstance(wrapped, Launch)
    assert wrapped.env == launch.env and wrapped.cwd == launch.cwd
    assert wrapped.command[0] == str(tmp_path / "bwrap")
    assert wrapped.command[-2:] == ("python", "s.py")
    assert wrap(launch, profile="none", **common) is launch


def test_sandbox_paths_may_not_expose_cloned_s_own_files_or_the_whole_home(
    tmp_path: Path,
) -> None:
    from reconciler.model.kinds import Sandbox
    from reconciler.providers.starting import _granted

    f = folders(tmp_path)
    (f["home"] / "code").mkdir()
    where = {"root": f["repo"], "home": f["home"], "config": f["cloned"]}

    def granted(*paths: dict[str, object]) -> tuple[list[Path], list[Path]]:
        return _granted("git", Sandbox.model_validate({"paths": list(paths)}), **where)  # type: ignore[arg-type]

    code = (f["home"] / "code").resolve()
    assert granted({"path": "~/code"}, {"path": str(code), "write": True}) == ([code], [code])
    refusals = {
        "~/": "the whole of the user's HOME",
        str(tmp_path): "the whole of the user's HOME",
        str(f["cloned"] / ".."): "$CLONED_HOME",
        str(f["repo"]): "the repository's .cloned/ folder",
        str(f["repo"] / ".cloned" / "state"): "the repository's .cloned/ folder",
        "~/missing": "is not a folder here",
    }
    for path, why in refusals.items():
        with pytest.raises(SandboxRefused) as refused:
            granted({"path": path})
        assert why in refused.value.message, path
