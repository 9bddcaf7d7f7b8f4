"""The vault provider contract and its errors (specs/vault.md).

A provider answers `status`, `names` (metadata only, never values), `exists` (metadata of one
secret, without reading its value), `get` (the value), `set` and `delete`. Every failure to
ask the backend is `VaultUnreachable`, and a caller treats it as "no": nothing is started,
granted or applied on a vault it could not ask (fail closed). A value is only ever returned
inside a `SecretValue`, made by `revealed`, which registers it (with its encodings) with the
process's redactor first; its repr never shows the value."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from reconciler.errors import ClonedError
from reconciler.redact import active

ProviderName = Literal["dev", "azure"]

MIN_VALUE_LENGTH = 8
"""A shorter value is refused by `set`: it could not be redacted without garbling output."""
MAX_VALUE_BYTES = 25 * 1024
"""Azure Key Vault's own limit on a secret value (UTF-8 bytes); the dev provider keeps it too."""
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
"""A secret's name in the vault: a SecretRef's `ref` (`vault://NAME`) names it."""

Unreachability = Literal["down", "timeout", "unauthorised", "forbidden", "throttled", "server"]


class VaultError(ClonedError):
    """A vault operation that did not happen (a subclass says why)."""


class VaultUnreachable(VaultError):
    """The vault could not be asked: down, too slow, credentials refused, throttled, or a
    server error. Always fail closed: nothing that needed the answer goes ahead."""

    def __init__(self, message: str, *, why: Unreachability, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.why = why


class SecretMissing(VaultError):
    """The vault was asked and has no (enabled) secret of that name or version."""

    def __init__(self, name: str, message: str | None = None) -> None:
        super().__init__(message or f"vault has no secret {name!r}")
        self.name = name


class VaultRefused(VaultError):
    """A request refused by rule: the dev provider under `strict` or tier `enterprise`, a value
    too short or too long, a bad name, a dev vault file tampered with or from another
    workspace, no provider configured."""


@dataclass(frozen=True)
class SecretInfo:
    """What a vault says about one secret without its value (`names`, `exists`, `set`)."""

    name: str
    version: str | None = None
    updated: str | None = None
    """RFC 3339 UTC, when the backend records it."""
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        """The JSON form (`cloned vault list --json`)."""
        return {
            "name": self.name,
            "version": self.version,
            "updated": self.updated,
            "enabled": self.enabled,
        }


@dataclass(frozen=True)
class SecretValue:
    """A value read from the vault; made only by `revealed`. Its repr hides the value."""

    name: str
    version: str | None
    value: str = field(repr=False)

    def __str__(self) -> str:
        return f"<secret {self.name}>"


@dataclass(frozen=True)
class VaultStatus:
    """`cloned vault status`: which provider, where, whether it answered, and why not."""

    provider: ProviderName
    location: str
    """The dev vault's file, or the Key Vault's URL."""
    reachable: bool
    detail: str
    dev_only: bool = False
    secrets: int | None = None

    def line(self) -> str:
        """One line for people; a dev vault says DEV ONLY every time."""
        state = "reachable" if self.reachable else "UNREACHABLE"
        dev = " (DEV ONLY: not for shared or production workspaces)" if self.dev_only else ""
        count = f", {self.secrets} secrets" if self.secrets is not None else ""
        return f"{self.provider}{dev}: {self.location}: {state}{count}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        """The JSON form (`cloned vault status --json`)."""
        return {
            "provider": self.provider,
            "location": self.location,
            "reachable": self.reachable,
            "detail": self.detail,
            "dev_only": self.dev_only,
            "secrets": self.secrets,
        }


class VaultProvider(Protocol):
    """What every provider implements (see the module)."""

    @property
    def provider(self) -> ProviderName: ...

    def status(self) -> VaultStatus:
        """Where the vault is and whether it answers (never raises `VaultUnreachable`)."""
        ...

    def names(self) -> list[SecretInfo]:
        """Every secret's metadata, sorted by name; never a value."""
        ...

    def exists(self, name: str) -> SecretInfo | None:
        """The metadata of secret `name`, or None; its value is not read."""
        ...

    def get(self, name: str, version: str | None = None) -> SecretValue:
        """Secret `name` (its latest enabled version unless `version`), registered with the
        redactor before it is returned; `SecretMissing` when there is none."""
        ...

    def set(self, name: str, value: str) -> SecretInfo:
        """Store `value` as a new version of `name` (checked by `check_value` first)."""
        ...

    def delete(self, name: str) -> None:
        """Remove `name` (every version); `SecretMissing` when there is none."""
        ...


def revealed(name: str, version: str | None, value: str) -> SecretValue:
    """`value` as a `SecretValue`, registered with the process's redactor (with its encodings)
    first: the one way a provider hands a value out."""
    active().register(value)
    return SecretValue(name, version, value)


def check_name(name: str) -> str:
    """`name` when it is a valid secret name, else `VaultRefused` naming the rule."""
    if not re.match(NAME_PATTERN, name):
        raise VaultRefused(
            f"{name!r} is not a secret name: lower-case letters, digits and '-', "
            "1 to 63 characters, starting and ending with a letter or digit"
        )
    return name


def check_value(name: str, value: str) -> str:
    """`value` when it can be stored and redacted safely, else `VaultRefused` (it is never
    part of the message)."""
    if len(value) < MIN_VALUE_LENGTH:
        raise VaultRefused(
            f"secret {name}: the value has {len(value)} characters; at least "
            f"{MIN_VALUE_LENGTH} are needed so it can be redacted safely from every output"
        )
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise VaultRefused(f"secret {name}: the value is larger than {MAX_VALUE_BYTES} bytes")
    if "\x00" in value:
        raise VaultRefused(f"secret {name}: the value holds a NUL byte")
    return value
