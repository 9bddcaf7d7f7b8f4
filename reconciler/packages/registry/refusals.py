"""python-tuf's exceptions as `PackageRefused` with the reason a user and the audit log need.

The TUF client (`client.py`) runs every python-tuf call inside `converted(...)`. python-tuf says
*that* metadata failed; which attack it was depends on the file it was reading, which the
fetcher remembers: a file whose hash differs from what the snapshot or timestamp lists is
`tampered`, unless it is genuine metadata of another version (`mix-and-match`); a signature
failure is `revoked` when a key the registry revoked signed it, `unsigned` when no key of the
role did, and `bad-signature` otherwise. The delegator metadata used to tell these apart is the
one TUF itself trusted and cached. This module only names the refusal: python-tuf decided it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from tuf.api import exceptions
from tuf.api.metadata import Metadata, Root, Targets

from reconciler.packages.refusal import PackageRefused, Reason
from reconciler.packages.registry.fetcher import RegistryFetcher
from reconciler.packages.registry.repository import REVOKED_FIELD

VERSIONED = re.compile(r"^(\d+)\.(.+)\.json$")
TARGETS_MISMATCH = re.compile(r"^Expected \S+ v\d+, got v\d+")
SIGNATURE_WORDS: dict[Reason, str] = {
    "revoked": "signed with a key the registry revoked for this role",
    "unsigned": "not signed by the keys the registry trusts for this role",
    "bad-signature": "its signatures do not verify, or fewer than the role's threshold do",
}


@dataclass(frozen=True)
class Context:
    """What a refusal names: the registry, the package, and where TUF keeps what it trusts."""

    registry: str
    package: str
    fetcher: RegistryFetcher
    metadata_dir: Path

    def refuse(self, reason: Reason, detail: str, *, where: str | None = None) -> NoReturn:
        """Raise the refusal, naming the registry, the package and the metadata file involved
        (by default the file being read)."""
        where = where or _file_name(self.fetcher.last_url)
        place = f"{where}: " if where else ""
        raise PackageRefused(
            reason, f'registry "{self.registry}", package {self.package}: {place}{reason}: {detail}'
        )


@contextmanager
def converted(context: Context) -> Iterator[None]:
    """Run python-tuf calls, turning each of its errors into the matching `PackageRefused`."""
    try:
        yield
    except exceptions.UnsignedMetadataError as exc:
        signature = _signature_reason(context)
        context.refuse(signature, f"{SIGNATURE_WORDS[signature]} ({exc})")
    except exceptions.LengthOrHashMismatchError as exc:
        context.refuse(*_mismatch(context, str(exc)))
    except exceptions.ExpiredMetadataError as exc:
        root = "root.json" in str(exc)
        expiry: Reason = "frozen" if "timestamp" in str(exc) else "expired"
        context.refuse(expiry, str(exc), where="root.json" if root else None)
    except exceptions.BadVersionNumberError as exc:
        context.refuse(_version_reason(str(exc)), str(exc))
    except exceptions.DownloadLengthMismatchError as exc:
        context.refuse("tampered", f"longer than the signed metadata allows: {exc}")
    except exceptions.DownloadError as exc:
        context.refuse("unreachable", _download_detail(exc))
    except exceptions.RepositoryError as exc:
        context.refuse("tampered", f"{type(exc).__name__}: {exc}")
    except OSError as exc:
        context.refuse("unreachable", f"the metadata cache: {exc}")


def _version_reason(message: str) -> Reason:
    # A snapshot that is not the one the timestamp names, or a targets role that is not the
    # version the snapshot names, is a mixed repository state; any other version check that
    # fails is metadata older than what was trusted before.
    if message.startswith("Expected snapshot version") or TARGETS_MISMATCH.match(message):
        return "mix-and-match"
    return "rollback"


def _mismatch(context: Context, detail: str) -> tuple[Reason, str]:
    md = _parsed(context.fetcher.last_body)
    match = VERSIONED.match(_file_name(context.fetcher.last_url) or "")
    if md is not None and match and md.signed.version != int(match.group(1)):
        found = md.signed.version
        return "mix-and-match", f"version {found} served where the snapshot names {match.group(1)}"
    return "tampered", f"differs from the length and hash the registry signed ({detail})"


def _signature_reason(context: Context) -> Reason:
    md = _parsed(context.fetcher.last_body)
    role = _role_of(_file_name(context.fetcher.last_url))
    if md is None or role is None:
        return "bad-signature"
    signers = set(md.signatures)
    if signers & set(_revoked(context.metadata_dir).get(role, [])):
        return "revoked"
    delegator = _delegator(context.metadata_dir, role)
    if delegator is None:
        return "bad-signature"
    try:
        result = delegator.get_verification_result(role, md.signed_bytes, md.signatures)
    except ValueError:
        return "unsigned"
    known = set(result.signed) | set(result.unsigned)
    if role == Root.type and result.verified:
        return "bad-signature"  # the previous root accepts it; its own keys do not
    return "bad-signature" if signers & known else "unsigned"


def _delegator(metadata_dir: Path, role: str) -> Root | Targets | None:
    top = _cached(metadata_dir, "root.json")
    if top is not None and role in (Root.type, "timestamp", "snapshot", Targets.type):
        signed: Root = top.signed
        return signed
    targets = _cached(metadata_dir, "targets.json")
    if targets is None or targets.signed.delegations is None:
        return None
    roles = targets.signed.delegations.roles or {}
    return targets.signed if role in roles else None


def _revoked(metadata_dir: Path) -> dict[str, list[str]]:
    targets = _cached(metadata_dir, "targets.json")
    if targets is None:
        return {}
    revoked = targets.signed.unrecognized_fields.get(REVOKED_FIELD, {})
    return revoked if isinstance(revoked, dict) else {}


def revoked_roles(metadata_dir: Path) -> dict[str, list[str]]:
    """Publisher roles the registry's trusted targets metadata records as revoked."""
    return _revoked(metadata_dir)


def _cached(metadata_dir: Path, name: str) -> Metadata[Any] | None:
    try:
        return _parsed((metadata_dir / name).read_bytes())
    except OSError:
        return None


def _parsed(body: bytes | None) -> Metadata[Any] | None:
    if body is None:
        return None
    try:
        return Metadata.from_bytes(body)
    except (exceptions.RepositoryError, ValueError, KeyError, TypeError):
        return None


def _file_name(url: str | None) -> str | None:
    if url is None:
        return None
    return url.rsplit("/", 1)[-1]


def _role_of(name: str | None) -> str | None:
    if name is None or not name.endswith(".json"):
        return None
    match = VERSIONED.match(name)
    return match.group(2) if match else name.removesuffix(".json")


def _download_detail(exc: exceptions.DownloadError) -> str:
    cause = exc.__cause__
    return f"{exc} ({cause})" if cause is not None else str(exc)
