"""Which hosts one connector (or one registry, or one Model) may reach: the lists, merged.

Built from the connector's `spec.egress` (`allowHosts`, `insecureHosts`), the Workspace's
`defaults.egress.allowHosts` and every active PolicyPack's `egress`, and read by SafeFetch before
each request and each redirect hop and by the egress proxy (`proxy.py`) for each connection:

- allowed: the host matches the connector's or the Workspace's allow list (their union: the
  defaults are hosts every connector may reach), and every pack that lists `allowHosts` (each
  pack can only narrow); a pack with no list does not restrict;
- a `denyHosts` entry of any pack wins over every allow;
- https only, unless the host also matches the connector's `insecureHosts`.

This module decides on names; addresses are `addresses.py`'s, checked after resolving. The
grammar and precedence are specs/egress.md. Policy packs arrive as plain `PackEgress` records
(the policy layer sits above this one and maps its `ActivePolicy` onto them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reconciler.egress.addresses import is_plain_loopback
from reconciler.egress.hostnames import (
    DEFAULT_PORTS,
    LOCAL_NAMES,
    HostRefused,
    Target,
    parse_host,
    parse_url,
)
from reconciler.model.kinds import ConnectorEgress
from reconciler.model.workspace import WorkspaceDefaults


@dataclass(frozen=True)
class HostPattern:
    """One allow or deny entry: `api.example.org`, `*.example.org`, `*`, each with `:port`.

    Without a port, an allow entry of a connector or the Workspace matches the scheme's default
    port only (443, or 80 over http); a pack's entry (`any_port`) matches every port."""

    text: str
    name: str  # the host, or the parent domain of a `*.` pattern; "" for `*`
    subdomains: bool = False
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        """A pattern as the model's `Host` type writes it (validated there)."""
        host, _, port = text.lower().rpartition(":") if ":" in text else (text.lower(), "", "")
        number = int(port) if port else None
        if host == "*":
            return cls(text, "", port=number)
        if host.startswith("*."):
            return cls(text, host[2:].rstrip("."), subdomains=True, port=number)
        return cls(text, host.rstrip("."), port=number)

    def matches(self, target: Target, *, any_port: bool = False) -> bool:
        """True when `target`'s host and port are covered by this pattern."""
        if self.port is not None and target.port != self.port:
            return False
        if self.port is None and not any_port and target.port != DEFAULT_PORTS[target.scheme]:
            return False
        host = target.host.key
        if self.name == "":
            return True
        if self.subdomains:
            # `*.example.org` is every name below example.org: not example.org itself, and
            # not evilexample.org, hence the dot.
            return target.host.name is not None and host.endswith("." + self.name)
        return host == self.name


@dataclass(frozen=True)
class HostList:
    """A list of patterns and where it came from, so a decision can name its rule."""

    source: str
    patterns: tuple[HostPattern, ...]
    any_port: bool = False  # a pack's lists: a host without a port means every port

    @classmethod
    def of(cls, source: str, hosts: Iterable[str], *, any_port: bool = False) -> HostList:
        """The list `hosts` (pattern texts) read from `source`."""
        return cls(source, tuple(HostPattern.parse(host) for host in hosts), any_port)

    def match(self, target: Target) -> HostPattern | None:
        """The first pattern that covers `target`, or None."""
        return next((p for p in self.patterns if p.matches(target, any_port=self.any_port)), None)

    def rule(self, pattern: HostPattern) -> str:
        """`connector weather spec.egress.allowHosts: api.example.org`."""
        return f"{self.source}: {pattern.text}"


@dataclass(frozen=True)
class PackEgress:
    """One active PolicyPack's `egress`, as the policy layer hands it down."""

    name: str
    allow_hosts: tuple[str, ...] = ()
    deny_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """Whether a URL may be fetched, why, and the rule that decided (None when none matched)."""

    allowed: bool
    reason: str
    rule: str | None = None
    target: Target | None = None


@dataclass(frozen=True)
class EgressRules:
    """The merged rules for one caller; `decide` is the whole host-level check."""

    allow: tuple[HostList, ...]
    narrow: tuple[HostList, ...] = ()
    deny: tuple[HostList, ...] = ()
    insecure: HostList = HostList("", ())

    @classmethod
    def for_connector(
        cls,
        name: str,
        egress: ConnectorEgress,
        defaults: WorkspaceDefaults | None = None,
        packs: Sequence[PackEgress] = (),
    ) -> EgressRules:
        """The rules for connector `name`: its `spec.egress`, the Workspace defaults, the packs."""
        allow = [HostList.of(f"connector {name} spec.egress.allowHosts", egress.allow_hosts)]
        if defaults is not None:
            allow.append(
                HostList.of("workspace defaults.egress.allowHosts", defaults.egress.allow_hosts)
            )
        return cls(
            allow=tuple(allow),
            insecure=HostList.of(
                f"connector {name} spec.egress.insecureHosts", egress.insecure_hosts
            ),
            **_pack_lists(packs),
        )

    @classmethod
    def for_registry(cls, name: str, url: str, packs: Sequence[PackEgress] = ()) -> EgressRules:
        """The rules for registry `name`: its URL's own host and port, over its URL's scheme.

        The Registry resource (gated by policy like any change) is the approval of that host."""
        return cls._own_origin(f"registry {name} spec.url", url, packs)

    @classmethod
    def for_model(cls, name: str, base_url: str, packs: Sequence[PackEgress] = ()) -> EgressRules:
        """The rules for Model `name`: its base URL's own host and port, over its scheme.

        The Model resource (gated by policy: `model-change`) is the approval of that host, as a
        Registry's is of its own; the packs' `denyHosts` and `allowHosts` still apply."""
        return cls._own_origin(f"model {name} spec.baseUrl", base_url, packs)

    @classmethod
    def _own_origin(cls, source: str, url: str, packs: Sequence[PackEgress]) -> EgressRules:
        target = parse_url(url)
        entry = f"{target.host.text}:{target.port}"
        allowed = HostList(source, (HostPattern(entry, target.host.key, port=target.port),))
        insecure = allowed if target.scheme == "http" else HostList("", ())
        return cls(allow=(allowed,), insecure=insecure, **_pack_lists(packs))

    def decide(self, url: str) -> Decision:
        """Whether `url` may be fetched, by its scheme, host and port (addresses come later)."""
        try:
            target = parse_url(url)
        except HostRefused as exc:
            return Decision(False, str(exc))
        return self.decide_target(target)

    def decide_target(self, target: Target) -> Decision:
        """`decide` for a parsed target (the proxy's CONNECT has no URL to parse)."""
        where = f"{target.host.text}:{target.port}"
        for deny in self.deny:
            pattern = deny.match(target)
            if pattern is not None:
                return Decision(False, f"{where} is denied", deny.rule(pattern), target)
        allowed = next(((lst, p) for lst in self.allow if (p := lst.match(target))), None)
        if allowed is None:
            return Decision(
                False, f"{where} is not in any allow list ({self._sources()})", None, target
            )
        for narrow in self.narrow:
            if narrow.match(target) is None:
                return Decision(False, f"{where} is outside {narrow.source}", narrow.source, target)
        if target.scheme != "https" and self.insecure.match(target) is None:
            return Decision(
                False,
                f"{where}: plain http is refused (https only unless insecureHosts lists it)",
                None,
                target,
            )
        return Decision(True, f"{where} is allowed", allowed[0].rule(allowed[1]), target)

    def local_services(self) -> frozenset[tuple[str, int]]:
        """The services of this machine an allow list names literally, with a port
        (`127.0.0.1:11434`, `localhost:8080`), as (host, port): the reviewed YAML's consent to
        reach that one local service, as a Registry URL naming this machine is (specs/egress.md,
        "Loopback"). Only such a host, on that port, may resolve to a plain loopback address:
        the consent is to the port, so another entry allowing the host on another port (a
        wildcard, `*:PORT`) never reaches loopback there."""
        found: set[tuple[str, int]] = set()
        for allow in self.allow:
            for pattern in allow.patterns:
                if pattern.port is None or pattern.subdomains or not pattern.name:
                    continue
                try:
                    host = parse_host(pattern.name)
                except HostRefused:
                    continue
                if host.name in LOCAL_NAMES or is_plain_loopback(host.address or ""):
                    found.add((host.key, pattern.port))
        return frozenset(found)

    def _sources(self) -> str:
        return ", ".join(lst.source for lst in self.allow)


def _pack_lists(packs: Sequence[PackEgress]) -> dict[str, tuple[HostList, ...]]:
    return {
        "narrow": tuple(
            HostList.of(f"pack {p.name} egress.allowHosts", p.allow_hosts, any_port=True)
            for p in packs
            if p.allow_hosts
        ),
        "deny": tuple(
            HostList.of(f"pack {p.name} egress.denyHosts", p.deny_hosts, any_port=True)
            for p in packs
            if p.deny_hosts
        ),
    }
