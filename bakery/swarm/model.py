"""The deploy plan: frozen values between planning and applying.

Specs are Engine API bodies (plain dicts, canonical: sorted, defaults explicit).
They stay dicts because that is what the API takes; the dataclasses around
them are frozen so a plan cannot change between `--dry-run` and apply.
Secret payloads live only in `Change.data`, which is kept out of reprs and JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["network", "volume", "secret", "config", "service", "node"]
Action = Literal["create", "update", "unchanged", "remove"]
Condition = Literal["service_started", "service_healthy", "service_completed_successfully"]
CONDITIONS: tuple[Condition, ...] = ("service_started", "service_healthy", "service_completed_successfully")

NAMESPACE_LABEL = "com.docker.stack.namespace"
IMAGE_LABEL = "com.docker.stack.image"
HASH_LABEL = "com.bakery.spec-hash"

# Creation order of the stack's kinds; services come last because they reference the others.
# Nodes are not the stack's: a plan only edits their pattern-hint labels, before everything else.
KIND_ORDER: tuple[Kind, ...] = ("network", "volume", "secret", "config", "service")

Spec = dict[str, Any]


@dataclass(frozen=True)
class Desired:
    """One object the stack file asks for."""

    kind: Kind
    key: str  # the name in the file (`web`)
    name: str  # the engine name (`voting_web`)
    spec: Spec = field(hash=False)
    data: bytes | None = field(default=None, repr=False, hash=False)  # secret/config payload


@dataclass(frozen=True)
class ServiceRun:
    """How apply treats a service: what it waits for before and after."""

    key: str
    depends_on: tuple[tuple[str, Condition], ...] = ()
    expected_tasks: int = 1  # replicas, or eligible nodes for global services
    job: bool = False  # one-shot: done when its tasks complete successfully
    global_mode: bool = False  # one task per eligible node; plan counts the nodes
    restarts: bool = True  # restart condition `any`: a completed task is not done


@dataclass(frozen=True)
class LabelEdit:
    """One node label a pattern hint stands for, set (`true`) or taken off (None)."""

    label: str
    hint: str  # node==web*: why
    before: str | None  # restored on rollback
    after: str | None

    def __str__(self) -> str:
        return f"+{self.label}={self.after}" if self.after is not None else f"-{self.label}"


@dataclass(frozen=True)
class Change:
    kind: Kind
    key: str
    name: str
    action: Action
    spec: Spec | None = field(default=None, hash=False)  # desired spec (None for remove)
    live_id: str | None = None
    live_version: int | None = None
    live_spec: Spec | None = field(default=None, hash=False, repr=False)  # restored on rollback
    reasons: tuple[str, ...] = ()  # which parts differ, for the plan display
    live_update_started: str | None = None  # UpdateStatus.StartedAt before this deploy
    data: bytes | None = field(default=None, repr=False, hash=False)
    labels: tuple[LabelEdit, ...] = ()  # a node's: the pattern-hint labels set or taken off

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "action": self.action}
        if self.live_id:
            out["id"] = self.live_id
        if self.reasons:
            out["reasons"] = list(self.reasons)
        if self.labels:
            out["labels"] = [{"label": e.label, "hint": e.hint, "before": e.before, "after": e.after}
                             for e in self.labels]
        return out


@dataclass(frozen=True)
class Plan:
    stack: str
    changes: tuple[Change, ...]
    services: tuple[ServiceRun, ...] = ()
    # `network:<name>` / `secret:<name>` / `config:<name>` -> live ID; services are posted with IDs.
    refs: dict[str, str] = field(default_factory=dict, hash=False, repr=False)

    def of(self, kind: Kind, *actions: Action) -> list[Change]:
        return [c for c in self.changes if c.kind == kind and (not actions or c.action in actions)]

    @property
    def is_noop(self) -> bool:
        return all(c.action == "unchanged" for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "changes": [c.to_json() for c in self.changes]}

    def lines(self) -> list[str]:
        """`create  service  voting_web`, one per object, in apply order."""
        return [
            f"{c.action:<9} {c.kind:<7} {c.name}" + (f"  ({', '.join(c.reasons)})" if c.reasons else "")
            for c in self.changes
        ]


# `submitted`: created or updated with --detach, not waited for.
OutcomeState = Literal["converged", "submitted", "failed", "unchanged", "skipped", "rolled back", "removed"]


@dataclass(frozen=True)
class ServiceOutcome:
    name: str
    state: OutcomeState
    running: int = 0
    desired: int = 0
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    ok: bool
    services: tuple[ServiceOutcome, ...]
    errors: tuple[str, ...] = ()
    rolled_back: bool = False
    elapsed: float = 0.0
    interrupted: bool = False  # Ctrl-C while applying (then rolled back unless --no-rollback)
    rollback_converged: bool | None = None  # after a rollback: do the restored services run again?

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rolled_back": self.rolled_back,
            "rollback_converged": self.rollback_converged,
            "interrupted": self.interrupted,
            "elapsed": round(self.elapsed, 3),
            "errors": list(self.errors),
            "services": [
                {
                    "name": s.name,
                    "state": s.state,
                    "running": s.running,
                    "desired": s.desired,
                    "errors": list(s.errors),
                }
                for s in self.services
            ],
        }


@dataclass(frozen=True)
class Progress:
    """One service's state, sent to the progress callback whenever it changes."""

    name: str
    state: str  # waiting, creating, updating, converging, converged, failed, rolling back, ...
    running: int = 0
    desired: int = 0
    message: str = ""
