"""A once-a-second watcher of a local cluster during day-two changes (tests/nodes/test_day_two.py, bench/daytwo).

Each sample asks the running managers in turn (through the record, inside the nodes, as an operator on
them would) until one answers `docker node ls` and `docker service ps`, and keeps:
- whether any manager answered (quorum held: a manager without a leader refuses `node ls`),
- the running tasks of each watched service,
- hostnames the swarm listed more than once (a node in the swarm twice).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Sample:
    at: float
    answered_by: str | None
    running: dict[str, int] = field(default_factory=dict)
    twice: list[str] = field(default_factory=list)
    managers: int = 0
    phase: str = ""
    where: str = ""  # the running tasks' nodes of the first service, for a failure's message


def _managers(record: Path) -> list[dict[str, object]]:
    try:
        nodes = json.loads(record.read_text()).get("nodes") or []
    except (OSError, ValueError):
        return []
    return [n for n in nodes if n.get("role") in ("seed", "manager") and not n.get("stopped")]


def sample(record: Path, services: list[str]) -> Sample:
    from bakery.providers.local import nodes
    from bakery.providers.local.state import NodeRecord, Proc

    now = time.monotonic()
    for raw in _managers(record):
        init = raw.get("init")
        if not isinstance(init, dict):
            continue
        node = NodeRecord(name=str(raw["name"]), role=str(raw["role"]), dir=str(raw["dir"]), init=Proc(**init))
        if not nodes.running(node):
            continue
        try:
            listed = nodes.exec_in(node, ["docker", "node", "ls", "--format", "{{.Hostname}}|{{.ManagerStatus}}"],
                                   timeout=10)
            if listed.returncode != 0:
                continue
            out = Sample(now, node.name)
            rows = [line.split("|") for line in listed.stdout.splitlines() if "|" in line]
            out.twice = sorted(h for h, n in Counter(h for h, _ in rows).items() if n > 1)
            out.managers = sum(1 for _, m in rows if m)
            for service in services:
                ps = nodes.exec_in(node, ["docker", "service", "ps", service, "--filter", "desired-state=running",
                                          "--format", "{{.Node}} {{.CurrentState}}"], timeout=10)
                if ps.returncode != 0:
                    break
                up = [line.split()[0] for line in ps.stdout.splitlines() if " Running " in f"{line} "]
                out.running[service] = len(up)
                if service == services[0]:
                    out.where = ",".join(sorted(up))
            else:
                return out
        except Exception:  # noqa: BLE001 (a node stopping under us: ask the next manager)
            continue
    return Sample(now, None)


class Watcher:
    """Samples every `interval` seconds in a thread until stopped."""

    def __init__(self, record: Path, services: list[str], interval: float = 1.0) -> None:
        self.record, self.services, self.interval = record, services, interval
        self.samples: list[Sample] = []
        self.phase = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            taken = sample(self.record, self.services)
            taken.phase = self.phase
            self.samples.append(taken)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - start)))

    def unanswered(self) -> list[Sample]:
        return [s for s in self.samples if s.answered_by is None]

    def below(self, service: str, floor: int) -> list[str]:
        """The samples with fewer than `floor` running tasks: second, phase, nodes running them."""
        start = self.samples[0].at if self.samples else 0.0
        return [f"{s.at - start:.0f}s {s.phase}: {s.running[service]} on {s.where or '-'}" for s in self.samples
                if service in s.running and s.running[service] < floor]

    def min_running(self, service: str) -> int:
        seen = [s.running[service] for s in self.samples if service in s.running]
        return min(seen) if seen else -1

    def twice(self) -> list[str]:
        return sorted({h for s in self.samples for h in s.twice})
