"""After a rollback: wait until the services that got their previous spec back run again.

Resubmitting `PreviousSpec` only asks the engine; the old tasks may need to be
started again (a start-first update that was stopped half-way, a rolling
update that replaced some of them). A rollback is reported as finished only
when the restored services have converged, judged by the same `Watch` a
deploy uses, or as unfinished when `timeout` runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import constraints
from .engine import Engine
from .model import HASH_LABEL, ServiceRun
from .watch import Watch


@dataclass(frozen=True)
class Restored:
    """One service that was given its previous spec back."""

    name: str
    ident: str
    spec: dict[str, Any]  # the previous spec, now live again
    existing: frozenset[str]  # its task IDs before the restore: older failures do not count
    update_started: str | None  # UpdateStatus.StartedAt right after the restore


def run_of(name: str, spec: Mapping[str, Any], nodes: list[dict[str, Any]]) -> ServiceRun:
    """What converged means for a live spec (the engine's defaults filled in)."""
    mode = spec.get("Mode") or {"Replicated": {"Replicas": 1}}
    job = "ReplicatedJob" in mode or "GlobalJob" in mode
    global_mode = "Global" in mode or "GlobalJob" in mode
    condition = ((spec.get("TaskTemplate") or {}).get("RestartPolicy") or {}).get("Condition", "any")
    if global_mode:
        placement = (spec.get("TaskTemplate") or {}).get("Placement") or {}
        expected = len(constraints.eligible(nodes, placement.get("Constraints") or []))
    elif job:
        expected = int(mode["ReplicatedJob"].get("TotalCompletions") or 1)
    else:
        expected = int((mode.get("Replicated") or {}).get("Replicas", 1))
    return ServiceRun(name, (), expected, job, global_mode, condition == "any")


def wait_restored(
    engine: Engine,
    stack: str,
    restored: list[Restored],
    *,
    timeout: float,
    poll: float,
    stable_for: float,
    max_failures: int,
    on_change: Callable[[str, str, Watch], None],
) -> dict[str, str]:
    """Poll until every restored service is done; returns the problem of each one that is not."""
    if not restored:
        return {}
    nodes = engine.nodes()
    watches = {
        r.name: Watch(
            run_of(r.name, r.spec, nodes),
            r.existing,
            max_failures=max_failures,
            stable_for=stable_for,
            spec_hash=(r.spec.get("Labels") or {}).get(HASH_LABEL),
            update_started=r.update_started,
        )
        for r in restored
    }
    pending = {r.name: r for r in restored}
    problems: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            for name in pending:
                problems[name] = f"not running again after {timeout:.0f}s: {watches[name].message}"
            break
        tasks = engine.tasks([r.ident for r in pending.values()], up_to_date=True)
        live = {s["ID"]: s for s in engine.services(stack)}
        for name, r in list(pending.items()):
            w = watches[name]
            own: list[Mapping[str, Any]] = [t for t in tasks if t.get("ServiceID") == r.ident]
            verdict = w.observe(live.get(r.ident), own, time.monotonic())
            if verdict in ("done", "failed"):
                del pending[name]
                if verdict == "failed":
                    problems[name] = "; ".join(w.errors) or "did not run again"
            on_change(name, verdict, w)
        if pending:
            time.sleep(poll)
    return problems
