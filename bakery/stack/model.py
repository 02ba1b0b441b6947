"""The typed stack: what a stack file or a converted compose project asks swarm to run.

Frozen values, already parsed (bytes, nano-CPUs, nanoseconds, port numbers),
sorted where order carries no meaning. No `$$` escaping and no `x-bakery`
side data: those belong to the stack file (compose.emit). Each service and
top-level object keeps the `Ref` of the YAML it came from, a service also that of
each of its values (`Service.at`), so a check made later (the specs, the plan) can
still say file:line and YAML path of the value itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ComposeError, PathPart
from ..report import Finding, Kind, Report, Severity, finding, subject_of
from ..yamlsrc import Document, Path_
from . import values

Condition = Literal["service_started", "service_healthy", "service_completed_successfully"]
CONDITIONS: tuple[Condition, ...] = ("service_started", "service_healthy", "service_completed_successfully")
Mode = Literal["replicated", "global", "replicated-job", "global-job"]
MODES: tuple[Mode, ...] = ("replicated", "global", "replicated-job", "global-job")
Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Ref:
    """Where a value came from: a document and a YAML path inside it."""

    doc: Document
    path: Path_

    def where(self, *extra: PathPart) -> dict[str, Any]:
        """Keyword arguments locating the value (or a part of it) for a Finding or an error."""
        path = (*self.path, *extra)
        pos = self.doc.where(path)
        shown = getattr(self.doc, "shown", None)  # version 1 files: no `services:` in the user's path
        return {"source": self.doc.source, "line": pos.line if pos else None,
                "column": pos.column if pos else None, "path": shown(path) if shown else path}

    def at(self, *extra: PathPart) -> Ref:
        return Ref(self.doc, (*self.path, *extra))

    def error(self, message: str, fix: str | None = None, *extra: PathPart) -> ComposeError:
        return ComposeError(message, fix=fix, **self.where(*extra))

    def finding(self, severity: Severity, message: str, code: str, fix: str | None = None,
                *extra: PathPart, kind: Kind | None = None, subject: str | None = None) -> Finding:
        """A finding here; its subject (service web) given, or from the path as written (which a
        version 1 file shows without `services:`)."""
        where: dict[str, Any] = {**self.where(*extra), "subject": subject or subject_of(self.path)}
        if kind is not None:
            where["kind"] = kind
        return finding(severity, message, code=code, fix=fix, **where)

    def add(self, report: Report, severity: Severity, message: str, code: str,
            fix: str | None = None, *extra: PathPart, kind: Kind | None = None,
            subject: str | None = None) -> None:
        """`finding`, added to `report`."""
        report.add_all((self.finding(severity, message, code, fix, *extra, kind=kind, subject=subject),))


@dataclass(frozen=True)
class Port:
    target: int
    published: int | None = None  # None: the engine picks one
    protocol: str = "tcp"
    mode: str = "ingress"


@dataclass(frozen=True)
class Mount:
    type: str  # volume, bind, tmpfs, npipe
    target: str
    source: str | None = None  # a volume key, a host path, or None (anonymous volume, tmpfs)
    read_only: bool = False
    propagation: str | None = None
    nocopy: bool = False
    tmpfs_size: int | None = None  # bytes


@dataclass(frozen=True)
class Resources:
    cpus: int | None = None  # nano-CPUs
    memory: int | None = None  # bytes
    pids: int | None = None  # limits only
    reserve_cpus: int | None = None
    reserve_memory: int | None = None


@dataclass(frozen=True)
class RestartPolicy:
    condition: str = "any"
    delay: int = 5 * 10**9  # ns
    max_attempts: int = 0
    window: int = 0  # ns


@dataclass(frozen=True)
class UpdateConfig:
    """Docker's own defaults (`docker stack deploy` of a file that sets none)."""

    parallelism: int = 1
    delay: int = 0  # ns
    failure_action: str = "pause"
    monitor: int = 5 * 10**9  # ns
    max_failure_ratio: float = 0.0
    order: str = "stop-first"


@dataclass(frozen=True)
class Placement:
    constraints: tuple[str, ...] = ()
    preferences: tuple[str, ...] = ()  # spread descriptors, in order
    max_replicas: int | None = None


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...] = ()  # ("NONE",) when disabled
    interval: int | None = None  # ns
    timeout: int | None = None
    start_period: int | None = None
    retries: int | None = None


@dataclass(frozen=True)
class Attachment:
    network: str  # the key under top-level networks
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileRef:
    """A secret or config given to a service."""

    source: str  # the key under top-level secrets/configs
    target: str
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444
    ref: Ref | None = field(default=None, compare=False, repr=False)  # where the entry was written


@dataclass(frozen=True)
class Ulimit:
    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class Service:
    name: str
    ref: Ref = field(compare=False, repr=False)
    image: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[tuple[str, str | None], ...] = ()  # sorted; None: taken from the deployer's environment
    labels: Pairs = ()  # container labels
    service_labels: Pairs = ()  # deploy.labels
    ports: tuple[Port, ...] = ()
    mounts: tuple[Mount, ...] = ()
    resources: Resources = Resources()
    restart: RestartPolicy = RestartPolicy()
    mode: Mode = "replicated"
    replicas: int = 1
    placement: Placement = Placement()
    update: UpdateConfig = UpdateConfig()
    rollback: UpdateConfig = UpdateConfig()
    endpoint_mode: str = "vip"
    healthcheck: Healthcheck | None = None
    depends_on: tuple[tuple[str, Condition], ...] = ()
    networks: tuple[Attachment, ...] = ()
    secrets: tuple[FileRef, ...] = ()
    configs: tuple[FileRef, ...] = ()
    hostname: str | None = None
    user: str | None = None
    working_dir: str | None = None
    stop_grace_period: int | None = None  # ns
    stop_signal: str | None = None
    tty: bool = False
    stdin_open: bool = False
    read_only: bool = False
    init: bool | None = None
    isolation: str | None = None
    log_driver: str | None = None
    log_options: Pairs = ()
    extra_hosts: tuple[tuple[str, str], ...] = ()  # (host, ip)
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    sysctls: Pairs = ()
    ulimits: tuple[Ulimit, ...] = ()
    credential_spec: Pairs = ()  # (file|registry|config, value)
    # `x-` keys of the service: deployed nowhere, kept in the stack file for the user's own tools.
    extensions: tuple[tuple[str, Any], ...] = field(default=(), hash=False)
    # Where each value was written: its YAML path below the service (`("volumes", 0)`) -> its Ref.
    refs: Mapping[Path_, Ref] = field(default_factory=dict, compare=False, repr=False)

    def at(self, *path: PathPart) -> Ref:
        """Where the value at `path` below the service was written (a key merged in from another
        file is located there), else the service itself with the path below it."""
        for n in range(len(path), 0, -1):
            found = self.refs.get(path[:n])
            if found is not None:
                return found.at(*path[n:])
        return self.ref.at(*path)


@dataclass(frozen=True)
class Ipam:
    driver: str = "default"
    subnets: tuple[dict[str, Any], ...] = ()  # {"Subnet", "IPRange", "Gateway", "AuxiliaryAddresses"}
    options: Pairs = ()


@dataclass(frozen=True)
class Network:
    key: str
    ref: Ref = field(compare=False, repr=False)
    name: str | None = None  # the engine name when the file sets one (else <stack>_<key>)
    external: bool = False
    driver: str = "overlay"
    driver_opts: Pairs = ()
    labels: Pairs = ()
    attachable: bool = False
    internal: bool = False
    enable_ipv6: bool = False
    ipam: Ipam | None = None


@dataclass(frozen=True)
class Volume:
    key: str
    ref: Ref = field(compare=False, repr=False)
    name: str | None = None
    external: bool = False
    driver: str | None = None  # None: local, not written
    driver_opts: Pairs = ()
    labels: Pairs = ()


@dataclass(frozen=True)
class Blob:
    """A top-level secret or config: its content comes from a file, a variable or the file itself."""

    kind: Literal["secret", "config"]
    key: str
    ref: Ref = field(compare=False, repr=False)
    name: str | None = None
    external: bool = False
    file: str | None = None
    environment: str | None = None
    content: str | None = None
    labels: Pairs = ()


@dataclass(frozen=True)
class NodeLabel:
    """A classic-Swarm pattern hint (`constraint:node==web*`) kept as a node label.

    Swarm mode has no patterns, so the services' constraint is `node.labels.<label>==true` and
    the nodes the hint admits carry that label: `bakery deploy` labels them from the live swarm
    at every deploy (and takes it off the ones that no longer match); the stack file keeps the
    hint in `x-bakery.node_labels` for that. A node that joins later has no label, so it gets no
    task until a deploy has matched it: the hint never admits a node it does not match."""

    label: str  # bakery.hint.<12 hex>
    key: str  # node (the hostname) or an engine label
    op: str  # == or !=
    value: str  # the pattern: a glob or /regex/
    ref: Ref = field(compare=False, repr=False)

    @property
    def hint(self) -> str:
        return f"{self.key}{self.op}{self.value}"

    @property
    def constraint(self) -> str:
        return f"node.labels.{self.label}==true"

    def admits(self, hostname: str, engine_labels: Mapping[str, str]) -> bool:
        """Whether a node with this hostname and these engine labels satisfies the hint."""
        pattern = values.hint_pattern(self.value)
        assert pattern is not None  # checked when loaded
        have = hostname if self.key == "node" else engine_labels.get(self.key)
        return values.hint_matches(pattern, have) == (self.op == "==")


@dataclass(frozen=True)
class Stack:
    services: tuple[Service, ...]
    networks: tuple[Network, ...] = ()
    volumes: tuple[Volume, ...] = ()
    secrets: tuple[Blob, ...] = ()
    configs: tuple[Blob, ...] = ()
    node_labels: tuple[NodeLabel, ...] = ()  # sorted by label
