"""The record of everything `bakery up --provider local` created, so `down` removes exactly that.

The record is written after every step (not only at the end), so an `up`
that fails half way can still be taken down. Processes are recorded with
their start time (field 22 of /proc/PID/stat): a pid that was reused by
another process is never signalled.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...errors import BakeryError, UserError

RECORD = "local.json"


@dataclass(frozen=True)
class Proc:
    pid: int
    starttime: int  # clock ticks since boot, from /proc/PID/stat

    @classmethod
    def of(cls, pid: int) -> Proc:
        start = proc_starttime(pid)
        if start is None:
            raise BakeryError(f"process {pid} exited right after it was started")
        return cls(pid, start)

    def alive(self) -> bool:
        return proc_starttime(self.pid) == self.starttime

    def send(self, sig: int) -> None:
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, grace: float, sig: int | None = signal.SIGTERM) -> None:
        """`sig` (None: already sent), then SIGKILL after `grace` seconds."""
        if sig is not None:
            self.send(sig)
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.send(signal.SIGKILL)
        while self.alive() and time.monotonic() < deadline + 10:
            time.sleep(0.1)


def proc_starttime(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is as good as gone
        return None
    return int(fields[19])


@dataclass
class NodeRecord:
    name: str
    role: str
    dir: str  # node directory: overlay upper, docker dir, seed, console log
    nspawn: Proc | None = None
    init: Proc | None = None  # the node's systemd (PID 1 inside), for nsenter and for a hard stop
    stopped: bool = False
    image: str = ""  # the image root it booted from ("": the cluster's); a roll moves nodes to a new one


@dataclass
class ClusterRecord:
    cluster: str
    workdir: str  # everything on disk that up created lives under here
    image: str = ""
    baked: bool = True
    bridge: str = ""
    bridge_created: bool = False
    address: str = ""  # host address on the bridge, CIDR
    iptables: list[list[str]] = field(default_factory=list)  # rules inserted, as iptables args after -I/-D
    services: dict[str, Proc] = field(default_factory=dict)  # dnsmasq, apt proxy
    nodes: list[NodeRecord] = field(default_factory=list)
    config: str = ""  # the generated cluster definition given to `bakery render`
    formed: bool = True  # False from the first `up`'s start until its nodes are Ready (older records: True)
    format: str = "cloud-init"  # or "ignition": how every node of the cluster is set up (`up --format`)

    def node(self, name: str) -> NodeRecord:
        for n in self.nodes:
            if n.name == name:
                return n
        raise BakeryError(f"cluster {self.cluster} has no node {name!r} (see `bakery nodes`)")

    def save(self, path: Path) -> None:
        """0600, as the rest of the cluster's state (it names the processes and files bakery made)."""
        from ...state import write_private

        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode())

    @classmethod
    def load(cls, path: Path) -> ClusterRecord:
        """The record, or a UserError naming the file: a damaged record is never half-read."""
        try:
            return cls._load(path)
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
            raise UserError(
                f"{path} is not a record of a local cluster bakery can read ({exc.__class__.__name__}: "
                f"{str(exc)[:120]})",
                fix="see what still runs with `machinectl list` and `ip link` (bakery-* bridges); stop it by hand, "
                    "then remove the file") from None

    @classmethod
    def _load(cls, path: Path) -> ClusterRecord:
        data: dict[str, Any] = json.loads(path.read_text())
        data["services"] = {k: Proc(**v) for k, v in data.get("services", {}).items()}
        nodes = []
        for n in data.get("nodes", []):
            n["nspawn"] = Proc(**n["nspawn"]) if n.get("nspawn") else None
            n["init"] = Proc(**n["init"]) if n.get("init") else None
            nodes.append(NodeRecord(**n))
        data["nodes"] = nodes
        return cls(**data)


@dataclass
class Teardown:
    """What `down` removed, in order, and what it could not (then the record is kept: `down` again retries).

    Both empty: there was nothing to remove.
    """

    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, other: Teardown) -> None:
        self.removed += other.removed
        self.problems += other.problems


def record_path(state_dir: Path, cluster: str) -> Path:
    return state_dir / cluster / RECORD
