"""`cloned registry ...`: make, sign and serve a connector registry (a TUF repository)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reconciler.cli.output import print_json, say

if TYPE_CHECKING:
    from reconciler.usecases.registry import Durations

app = typer.Typer(
    help="Keep a signed connector registry (a TUF repository) with Cloned's Ed25519 keys.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

DIR = typer.Argument(..., help="The registry folder (metadata/ and targets/).")
JSON = typer.Option(False, "--json", help="Print what was done as JSON.")
TARGETS_KEY = typer.Option(..., "--targets-key", help="The targets role's key (NAME or path).")
ONLINE_KEY = typer.Option(
    ..., "--online-key", help="The online key that signs snapshot and timestamp (NAME or path)."
)
ROOT_EXPIRES = typer.Option(None, "--root-expires", help="Root validity, e.g. 365d (default).")
TARGETS_EXPIRES = typer.Option(
    None, "--targets-expires", help="Targets and publisher roles' validity (default 90d)."
)
SNAPSHOT_EXPIRES = typer.Option(None, "--snapshot-expires", help="Snapshot validity (default 7d).")
TIMESTAMP_EXPIRES = typer.Option(
    None, "--timestamp-expires", help="Timestamp validity (default 1d)."
)


def _durations(
    root: str | None = None,
    targets: str | None = None,
    snapshot: str | None = None,
    timestamp: str | None = None,
) -> Durations:
    """The `--*-expires` flags given, for the use case (imported on use: `--help` stays fast)."""
    from reconciler.usecases.registry import Durations

    return Durations(root=root, targets=targets, snapshot=snapshot, timestamp=timestamp)


def _role_durations(targets: str | None, snapshot: str | None, timestamp: str | None) -> Durations:
    """The expiries every command that re-signs targets, snapshot and timestamp takes."""
    return _durations(targets=targets, snapshot=snapshot, timestamp=timestamp)


def _show(result: object, as_json: bool) -> int:
    from reconciler.usecases.registry import Published

    assert isinstance(result, Published)
    if as_json:
        print_json(result.to_json())
        return int(result.exit_code)
    subject = f" {result.target}" if result.target else ""
    say(f"{result.action}{subject}: {result.folder}")
    for name in result.written:
        say(f"  wrote {name}")
    versions = ", ".join(f"{role} {version}" for role, version in result.versions.items())
    say(f"  versions: {versions}")
    say(f"  root pin: {result.pin}")
    return int(result.exit_code)


@app.command("init")
def init(
    folder: Path = DIR,
    root_key: list[str] = typer.Option(..., "--root-key", help="A root key; repeat for more."),
    threshold: int = typer.Option(1, "--threshold", help="Root keys needed to sign a root."),
    targets_key: str = TARGETS_KEY,
    online_key: str = ONLINE_KEY,
    root_expires: str | None = ROOT_EXPIRES,
    targets_expires: str | None = TARGETS_EXPIRES,
    snapshot_expires: str | None = SNAPSHOT_EXPIRES,
    timestamp_expires: str | None = TIMESTAMP_EXPIRES,
    as_json: bool = JSON,
) -> int:
    """Create a registry in DIR and print its root pin.

    Put the pin in the Registry resource's `root`: clients trust the registry only when its
    1.root.json hashes to it.

    Example:

    \b
      cloned registry init vendor/registry --root-key root --targets-key targets \\
        --online-key online
    """
    from reconciler.usecases.registry import init as run

    durations = _durations(root_expires, targets_expires, snapshot_expires, timestamp_expires)
    result = run(
        folder=folder,
        root_keys=root_key,
        threshold=threshold,
        targets_key=targets_key,
        online_key=online_key,
        expires=durations,
    )
    return _show(result, as_json)


@app.command("delegate")
def delegate(
    folder: Path = DIR,
    name: str = typer.Option(..., "--name", help="The publisher; it may publish NAME/*."),
    publisher_key: list[str] = typer.Option(
        ..., "--publisher-key", help="The publisher's key; repeat for more."
    ),
    threshold: int = typer.Option(1, "--threshold", help="Publisher keys needed to sign."),
    targets_key: str = TARGETS_KEY,
    online_key: str = ONLINE_KEY,
    targets_expires: str | None = TARGETS_EXPIRES,
    snapshot_expires: str | None = SNAPSHOT_EXPIRES,
    timestamp_expires: str | None = TIMESTAMP_EXPIRES,
    as_json: bool = JSON,
) -> int:
    """Add publisher NAME, a delegated role that may sign packages NAME/* only."""
    from reconciler.usecases.registry import delegate as run

    durations = _durations(
        targets=targets_expires, snapshot=snapshot_expires, timestamp=timestamp_expires
    )
    result = run(
        folder=folder,
        name=name,
        publisher_keys=publisher_key,
        threshold=threshold,
        targets_key=targets_key,
        online_key=online_key,
        expires=durations,
    )
    return _show(result, as_json)


@app.command("publish")
def publish(
    folder: Path = DIR,
    file: Path = typer.Argument(..., help="A connector archive (`cloned connectors pack`)."),
    key: list[str] = typer.Option(..., "--key", help="The publisher's key; repeat for more."),
    online_key: str = ONLINE_KEY,
    targets_expires: str | None = TARGETS_EXPIRES,
    snapshot_expires: str | None = SNAPSHOT_EXPIRES,
    timestamp_expires: str | None = TIMESTAMP_EXPIRES,
    as_json: bool = JSON,
) -> int:
    """Publish FILE as PUBLISHER/NAME-VERSION.tar.gz, signed by its publisher's key.

    The publisher, name and version come from the archive's connector.yaml; what it declares
    (tools, egress hosts, secrets, run) is copied into the signed metadata.
    """
    from reconciler.usecases.registry import publish as run

    durations = _durations(
        targets=targets_expires, snapshot=snapshot_expires, timestamp=timestamp_expires
    )
    result = run(folder=folder, file=file, keys=key, online_key=online_key, expires=durations)
    return _show(result, as_json)


@app.command("revoke")
def revoke(
    folder: Path = DIR,
    name: str = typer.Option(..., "--name", help="The publisher to revoke."),
    new_key: list[str] = typer.Option(
        [], "--new-key", help="Rotate to this key instead of removing the publisher; repeatable."
    ),
    threshold: int | None = typer.Option(None, "--threshold", help="With --new-key: keys needed."),
    targets_key: str = TARGETS_KEY,
    online_key: str = ONLINE_KEY,
    targets_expires: str | None = TARGETS_EXPIRES,
    snapshot_expires: str | None = SNAPSHOT_EXPIRES,
    timestamp_expires: str | None = TIMESTAMP_EXPIRES,
    as_json: bool = JSON,
) -> int:
    """Remove publisher NAME, or rotate its key with --new-key.

    Metadata signed by the old keys stops counting at once; after a rotation the publisher's
    packages come back when it publishes again with the new key.
    """
    from reconciler.usecases.registry import revoke as run

    durations = _durations(
        targets=targets_expires, snapshot=snapshot_expires, timestamp=timestamp_expires
    )
    result = run(
        folder=folder,
        name=name,
        new_keys=new_key,
        threshold=threshold,
        targets_key=targets_key,
        online_key=online_key,
        expires=durations,
    )
    return _show(result, as_json)


@app.command("timestamp")
def timestamp(
    folder: Path = DIR,
    online_key: str = ONLINE_KEY,
    timestamp_expires: str | None = TIMESTAMP_EXPIRES,
    as_json: bool = JSON,
) -> int:
    """Sign a fresh timestamp (run it on a schedule, before the current one expires)."""
    from reconciler.usecases.registry import timestamp as run

    durations = _durations(timestamp=timestamp_expires)
    return _show(run(folder=folder, online_key=online_key, expires=durations), as_json)


@app.command("rotate-root")
def rotate_root(
    folder: Path = DIR,
    root_key: list[str] = typer.Option(..., "--root-key", help="A current root key; repeatable."),
    new_root_key: list[str] = typer.Option(
        ..., "--new-root-key", help="A key of the new root; repeatable."
    ),
    threshold: int = typer.Option(1, "--threshold", help="New root keys needed to sign a root."),
    root_expires: str | None = ROOT_EXPIRES,
    as_json: bool = JSON,
) -> int:
    """Write the next root version with new root keys, signed by the current and new keys.

    Clients follow the rotation from their pinned 1.root.json; the pin does not change.
    """
    from reconciler.usecases.registry import rotate_root as run

    durations = _durations(root=root_expires)
    result = run(
        folder=folder,
        root_keys=root_key,
        new_root_keys=new_root_key,
        threshold=threshold,
        expires=durations,
    )
    return _show(result, as_json)


@app.command("root-pin")
def root_pin(folder: Path = DIR, as_json: bool = JSON) -> int:
    """Print the registry's root pin (`sha256:` of metadata/1.root.json)."""
    from reconciler.usecases.registry import root_pin as run

    result = run(folder=folder)
    if as_json:
        print_json(result.to_json())
    else:
        say(result.pin)
    return int(result.exit_code)


@app.command("serve")
def serve(
    folder: Path = DIR,
    port: int = typer.Option(8000, "--port", help="The port (0 picks a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="A loopback address to listen on."),
    as_json: bool = JSON,
) -> int:
    """Serve DIR read-only over HTTP on loopback until Ctrl-C; prints the registry URL."""
    from reconciler.usecases.registry import open_server

    serving = open_server(folder=folder, host=host, port=port)
    if as_json:
        print_json(serving.to_json())
    else:
        say(f"Serving {serving.folder} at {serving.url} (Ctrl-C stops)")
    sys.stdout.flush()  # the URL must reach a pipe before serving blocks
    serving.run()
    return int(serving.exit_code)
