"""Why a package is refused: one error type whose `reason` callers branch on and whose message
people read (`connector.refused` audit events carry the reason)."""

from __future__ import annotations

from typing import Literal

from reconciler.errors import ClonedError

Reason = Literal[
    "unsigned",  # no valid signature from the role that must sign
    "bad-signature",  # a signature that does not verify, or too few (threshold)
    "tampered",  # a file whose length or hash differs from what the signed metadata says
    "expired",  # signed metadata past its expiry
    "revoked",  # signed by a key the registry no longer trusts for that role
    "outside-namespace",  # a publisher's target outside the paths it is delegated
    "rollback",  # metadata older than what was seen before
    "frozen",  # a timestamp that is not fresh (expired or replayed)
    "mix-and-match",  # metadata files that do not belong together (snapshot mismatch)
    "hash-mismatch",  # a pypi distribution whose hash differs from the lock's
    "tree-changed",  # installed files that differ from what was installed
    "unsafe-entry",  # an archive member that could escape or is not a plain file or folder
    "too-large",  # an archive or a member past the size or count limits
    "not-found",  # no such package, version or file in the source
    "unreachable",  # the source could not be read (network, folder)
    "untrusted-root",  # the registry's root metadata differs from the Registry's pin
    "invalid-manifest",  # connector.yaml missing or not valid
    "manifest-mismatch",  # the package is not what the Connector or signed metadata names
    "downgrade",  # a lower version than installed without allowDowngrade
]


class PackageRefused(ClonedError):
    """A package that is not installed or loaded, and why (`reason`)."""

    def __init__(self, reason: Reason, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason: Reason = reason
