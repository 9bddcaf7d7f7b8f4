"""read_lock: a committed hash lock is accepted only when every line is name==version with
sha256 hashes; every other line pip would act on is refused at file:line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.errors import ValidationFailed
from reconciler.packages.pypi import read_lock
from reconciler.packages.pypi.lockfile import lock_location

H1 = "a" * 64
H2 = "b" * 64
GOOD = f"""\
# Hash lock of demo==1.0
demo==1.0 --hash=sha256:{H1}
Idna==3.20 \\
    --hash=sha256:{H2} \\
    --hash=sha256:{H1}
    # via demo
"""


def problems(text: str, **wanted: str) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        read_lock(text.encode(), "locks/x.txt", **wanted)
    return [problem.render() for problem in caught.value.problems]


def test_a_good_lock_reads_with_continuations_and_names_normalised() -> None:
    lock = read_lock(GOOD.encode(), "locks/x.txt", package="demo", version="1.0")
    assert [(p.name, p.version) for p in lock.pins] == [("demo", "1.0"), ("idna", "3.20")]
    assert lock.get("IDNA") is not None and lock.get("IDNA").hashes == (H1, H2)  # type: ignore[union-attr]
    assert lock.header == ("Hash lock of demo==1.0",)
    again = read_lock(lock.text().encode(), "copy.txt")
    assert again.digest == lock.digest and again.text() == lock.text()


def test_the_digest_is_of_the_pins_not_the_comments() -> None:
    plain = read_lock(GOOD.replace("# Hash lock of demo==1.0\n", "").encode(), "x")
    assert plain.digest == read_lock(GOOD.encode(), "x").digest
    other = read_lock(
        GOOD.replace(f"demo==1.0 --hash=sha256:{H1}", f"demo==1.0 --hash=sha256:{H2}").encode(), "x"
    )
    assert other.digest != plain.digest


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("idna", "'idna' is not pinned"),
        (f"idna>=3 --hash=sha256:{H1}", "'idna>=3' is not pinned"),
        (f"idna==3.* --hash=sha256:{H1}", "not pinned"),
        ("idna==3.20", "idna==3.20 has no --hash=sha256"),
        (f"idna==3.20 --hash=sha512:{H1}", "only --hash=sha256:<64 hex digits>"),
        ("idna==3.20 --hash=sha256:abc", "only --hash=sha256:<64 hex digits>"),
        (f"idna==3.20 --hash=sha256:{H1} --no-binary :all:", "only --hash=sha256"),
        (
            f"https://evil.example/idna-3.20.whl --hash=sha256:{H1}",
            "URLs and paths are not allowed",
        ),
        (f"idna @ https://evil.example/i.whl --hash=sha256:{H1}", "not pinned"),
        (f"./idna-3.20.whl --hash=sha256:{H1}", "URLs and paths are not allowed"),
        ("-e .", "option -e is not allowed"),
        ("-r other.txt", "option -r is not allowed"),
        ("--index-url https://evil.example/simple", "option --index-url is not allowed"),
        ("--extra-index-url=https://evil.example/simple", "option --extra-index-url"),
        ("--find-links /tmp", "option --find-links is not allowed"),
        (f'idna==3.20 ; python_version < "3.12" --hash=sha256:{H1}', "markers are not allowed"),
        (f"idna[all]==3.20 --hash=sha256:{H1}", "extras are not allowed"),
    ],
)
def test_a_line_pip_could_act_on_beyond_a_pin_is_refused_at_its_line(line: str, says: str) -> None:
    found = problems(f"# header\ndemo==1.0 --hash=sha256:{H1}\n{line}\n")
    assert len(found) == 1
    assert found[0].startswith("locks/x.txt:3:1: ")
    assert says in found[0]


def test_every_bad_line_is_reported_at_once() -> None:
    found = problems(f"idna\n\nsix==1 --hash=sha256:{H1}\nsix==1 --hash=sha256:{H2}\n-e .\n")
    assert [f.split(": ", 1)[0] for f in found] == [
        "locks/x.txt:1:1",
        "locks/x.txt:4:1",
        "locks/x.txt:5:1",
    ]
    assert "six locked twice (line 3)" in found[1]


def test_the_connectors_package_must_be_locked_at_its_version() -> None:
    missing = problems(f"idna==3.20 --hash=sha256:{H1}\n", package="demo", version="1.0")
    assert missing == ["locks/x.txt: demo is not in the lock (run cloned connectors lock)"]
    wrong = problems(GOOD, package="demo", version="1.1")
    assert wrong == [
        "locks/x.txt:2:1: locks demo==1.0, but the Connector's spec.version is 1.1 "
        "(run cloned connectors lock)"
    ]


def test_not_text_or_too_large_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="problem"):
        read_lock(b"\xff\xfe", "x")
    with pytest.raises(ValidationFailed) as caught:
        read_lock(b"#" * (1024 * 1024 + 1), "x")
    assert "larger than" in caught.value.problems[0].message


@pytest.mark.parametrize(
    ("rel", "says"),
    [
        ("../outside.txt", "without '.' or '..'"),
        ("locks/../../x.txt", "without '.' or '..'"),
        ("/etc/passwd", "relative path"),
        ("state/time.txt", "names state, which Cloned owns"),
        ("cloned.lock", "which Cloned owns"),
        ("locks/time.yaml", "must not end in .yaml"),
    ],
)
def test_a_lock_path_outside_cloned_or_owned_by_it_is_refused(
    tmp_path: Path, rel: str, says: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        lock_location(tmp_path / ".cloned", rel, file=".cloned/c.yaml", line=4)
    assert caught.value.problems[0].render().startswith(".cloned/c.yaml:4:1: source.pypi.lock")
    assert says in caught.value.problems[0].message


def test_a_lock_path_through_a_symlink_out_of_cloned_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".cloned").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / ".cloned" / "locks")
    with pytest.raises(ValidationFailed, match="problem"):
        lock_location(tmp_path / ".cloned", "locks/time.txt", file="c.yaml", line=1)
    inside = lock_location(tmp_path / ".cloned", "deps/time.txt", file="c.yaml", line=1)
    assert inside == tmp_path / ".cloned" / "deps" / "time.txt"
