"""Carry out a plan: node labels, objects, services in dependency order, wait, roll back on failure.

The node labels of pattern hints are set and taken off first, so a service is
never created or updated before the nodes its constraint names carry the label.

Independent services are submitted together and converge concurrently; one
poll of the task list per round watches all of them. A service is done when
its up-to-date tasks have run for `stable_for` seconds (or completed, for
one-shot jobs). Task failures, an engine-side rollback or the timeout fail
the deploy; then every service this deploy touched gets its previous spec
back, services it created are removed, and so are the networks, secrets and
configs it created, and the node labels it changed get their old values. Volumes
are never removed. The rollback then waits for
the restored services to run again. Ctrl-C (KeyboardInterrupt) while applying
rolls back the same way. With `detach`, services are submitted in dependency
order and nothing waits for them, like `docker stack deploy --detach`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import EngineError
from .engine import Engine
from .model import HASH_LABEL, Change, OutcomeState, Plan, Progress, Result, ServiceOutcome, ServiceRun
from .plan import differences, resolve
from .rollback import Restored, wait_restored
from .watch import Watch

ProgressFn = Callable[[Progress], None]
_WORKERS = 8


@dataclass
class _Track:
    """Mutable per-service bookkeeping while applying (never leaves this module)."""

    change: Change
    run: ServiceRun
    ident: str | None = None
    state: str = "waiting"
    watch: Watch | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.change.name


class _Applier:
    def __init__(self, engine: Engine, plan: Plan, progress: ProgressFn | None, options: dict[str, Any]) -> None:
        self.engine, self.plan, self.options = engine, plan, options
        self.progress = progress or (lambda _p: None)
        self.refs = dict(plan.refs)
        self.created: list[tuple[Any, str, str]] = []  # (kind, id, name) of networks/volumes/secrets/configs
        self.labelled: list[Change] = []  # nodes whose hint labels this deploy changed
        runs = {r.key: r for r in plan.services}
        self.tracks = {c.key: _Track(c, runs[c.key]) for c in plan.of("service", "create", "update", "unchanged")}
        # Services another one waits on to complete successfully (compose's service_completed_successfully):
        # each is done when its tasks have completed, not when they run.
        self.to_complete = {dep for t in self.tracks.values() for dep, condition in t.run.depends_on
                            if condition == "service_completed_successfully"}
        self.pool = ThreadPoolExecutor(max_workers=_WORKERS)
        self.rollback_converged: bool | None = None  # set once a rollback has waited

    def emit(self, t: _Track, state: str, message: str = "") -> None:
        t.state = state
        w = t.watch
        desired = w.run.expected_tasks if w else t.run.expected_tasks  # a rollback watches the old spec
        self.progress(Progress(t.name, state, w.running if w else 0, desired, message))

    # -- node labels -----------------------------------------------------------
    def label_nodes(self) -> None:
        for c in self.plan.of("node", "update"):
            assert c.live_id is not None
            self.engine.label_node(c.live_id, c.name, {e.label: e.after for e in c.labels})
            self.labelled.append(c)
            self.progress(Progress(f"node {c.name}", "labelled", message=", ".join(c.reasons)))

    def unlabel_nodes(self) -> list[str]:
        """Give the node labels this deploy changed their values from before it."""
        problems = []
        for c in reversed(self.labelled):
            assert c.live_id is not None
            try:
                self.engine.label_node(c.live_id, c.name, {e.label: e.before for e in c.labels})
                self.progress(Progress(f"node {c.name}", "rolled back", message="labels as before"))
            except EngineError as exc:
                problems.append(str(exc))
        return problems

    # -- objects ---------------------------------------------------------------
    def create_objects(self) -> None:
        todo = [c for c in self.plan.changes if c.kind != "service" and c.action == "create"]

        def one(c: Change) -> None:
            assert c.spec is not None
            ident = self.engine.create(c.kind, c.spec, c.data)
            # Recorded by the worker, so an interrupt in the main thread cannot lose it.
            self.created.append((c.kind, ident, c.name))
            self.refs[f"{c.kind}:{c.name}"] = ident

        futures = [self.pool.submit(one, c) for c in todo]
        errors = []
        for f in futures:
            try:
                f.result()
            except EngineError as exc:
                errors.append(str(exc))
        if errors:
            raise EngineError("; ".join(errors))

    # -- services --------------------------------------------------------------
    def ready(self, t: _Track) -> bool:
        for dep, condition in t.run.depends_on:
            d = self.tracks.get(dep)
            if d is None or d.state in ("unchanged", "done", "submitted"):
                continue  # a dependency to complete is watched until it did (`to_complete`): its done is that
            if condition == "service_started" and d.state == "converged":
                continue
            return False
        return True

    def submit(self, batch: list[_Track]) -> None:
        """Create or update a batch of services at once; record which tasks already existed."""
        existing = {t["ID"] for t in self.engine.tasks([t.ident for t in batch if t.ident])}

        def one(t: _Track) -> None:
            spec = resolve(t.change.spec or {}, self.refs)
            if t.change.action == "create":
                t.ident = self.engine.create("service", spec)
            else:
                assert t.ident is not None
                self.engine.update_service(t.ident, t.change.live_version, spec)

        for t in batch:
            t.ident = t.ident or t.change.live_id
            self.emit(t, "creating" if t.change.action == "create" else "updating")
        for t, f in [(t, self.pool.submit(one, t)) for t in batch]:
            try:
                f.result()
            except EngineError as exc:
                t.errors.append(str(exc))
                self.emit(t, "failed", str(exc))
                continue
            if self.options["detach"]:
                self.emit(t, "submitted")
                continue
            t.watch = Watch(
                dataclasses.replace(t.run, job=True) if t.run.key in self.to_complete else t.run,
                existing,
                max_failures=self.options["max_failures"],
                stable_for=self.options["stable_for"],
                spec_hash=(t.change.spec or {})["Labels"][HASH_LABEL],
                update_started=t.change.live_update_started,
            )
            self.emit(t, "converging")

    def poll(self, active: list[_Track], now: float) -> None:
        ids = [t.ident for t in active if t.ident]
        tasks = self.engine.tasks(ids, up_to_date=True)
        services = {s["ID"]: s for s in self.engine.services(self.plan.stack)}
        for t in active:
            assert t.watch is not None and t.ident is not None
            service = services.get(t.ident)
            before = (t.state, t.watch.running)
            verdict = t.watch.observe(service, [x for x in tasks if x.get("ServiceID") == t.ident], now)
            if verdict == "failed":
                # Every task of the service, not only the up-to-date ones: an update the engine rolled
                # back leaves its failed tasks out of date, and their error is the one that explains.
                t.watch.task_errors(self.engine.tasks([t.ident]))
                t.errors.extend(t.watch.errors or ["did not converge"])
                self.emit(t, "failed", "; ".join(t.watch.errors))
            elif verdict == "done":
                self.emit(t, "done", t.watch.message)
            elif verdict == "converged":
                if before != ("converged", t.watch.running):
                    self.emit(t, "converged")
            elif before != ("converging", t.watch.running):
                self.emit(t, "converging", t.watch.message)

    def run_services(self) -> bool:
        deadline = time.monotonic() + self.options["timeout"]
        for t in self.tracks.values():
            if t.change.action == "unchanged":
                t.ident = t.change.live_id
                self.emit(t, "unchanged")
        while True:
            waiting = [t for t in self.tracks.values() if t.state == "waiting" and self.ready(t)]
            if waiting:
                self.submit(waiting)
            if any(t.state == "failed" for t in self.tracks.values()):
                return False
            active = [t for t in self.tracks.values() if t.state in ("converging", "converged")]
            if not active and all(t.state in ("done", "unchanged", "submitted") for t in self.tracks.values()):
                return True
            if time.monotonic() > deadline:
                for t in active:
                    assert t.watch is not None
                    t.errors.append(f"not converged after {self.options['timeout']:.0f}s: {t.watch.message}")
                    self.emit(t, "failed", t.errors[-1])
                return False
            if active:
                self.poll(active, time.monotonic())
            if not any(t.state == "done" for t in active):
                time.sleep(self.options["poll"])

    # -- afterwards ------------------------------------------------------------
    def rollback(self) -> list[str]:
        problems = []
        restored: list[Restored] = []
        for t in reversed(list(self.tracks.values())):
            if t.state in ("waiting", "unchanged") or not t.ident:
                continue
            try:
                back = self._restore(t)
            except EngineError as exc:
                problems.append(str(exc))
                continue
            if back:
                restored.append(back)
        for kind, ident, name in reversed(self.created):
            if kind == "volume":
                continue  # volumes hold data: never removed
            try:
                self.engine.remove(kind, ident, name, retry_for=20)
            except EngineError as exc:
                problems.append(str(exc))
        problems += self.unlabel_nodes()
        try:
            problems += self._wait_restored(restored)
        except EngineError as exc:
            problems.append(f"waiting for the restored services: {exc}")
            self.rollback_converged = False
        return problems

    def _restore(self, t: _Track) -> Restored | None:
        """Remove a created service, or give an updated one its previous spec back."""
        assert t.ident is not None
        if t.change.action == "create":
            self.engine.remove("service", t.ident, t.name)
            self.emit(t, "removed")
            return None
        existing = frozenset(x["ID"] for x in self.engine.tasks([t.ident]))
        live = self.engine.inspect_service(t.ident)
        previous = t.change.live_spec or {}
        ours = (live["Spec"].get("Labels") or {}).get(HASH_LABEL) != (previous.get("Labels") or {}).get(HASH_LABEL)
        if ours or differences(previous, live["Spec"]):
            self.engine.update_service(t.ident, int(live["Version"]["Index"]), previous)
            live = self.engine.inspect_service(t.ident)
        started = (live.get("UpdateStatus") or {}).get("StartedAt")
        self.emit(t, "restoring")
        return Restored(t.name, t.ident, previous, existing, started)

    def _wait_restored(self, restored: list[Restored]) -> list[str]:
        """Bounded wait until the restored services run again; their outcome says whether they do."""
        tracks = {t.name: t for t in self.tracks.values()}

        def on_change(name: str, verdict: str, watch: Watch) -> None:
            t = tracks[name]
            t.watch = watch
            if verdict == "done":
                self.emit(t, "rolled back", f"running again ({watch.message})")
            elif verdict == "failed":
                self.emit(t, "rolled back", "; ".join(watch.errors))

        problems = wait_restored(
            self.engine,
            self.plan.stack,
            restored,
            timeout=self.options["timeout"],
            poll=self.options["poll"],
            stable_for=self.options["stable_for"],
            max_failures=self.options["max_failures"],
            on_change=on_change,
        )
        for name, problem in problems.items():
            tracks[name].errors.append(f"after rollback: {problem}")
            self.emit(tracks[name], "rolled back", problem)
        self.rollback_converged = not problems
        return [f"{name}: {p}" for name, p in sorted(problems.items())]

    def prune(self) -> list[str]:
        problems = []
        removals = [c for c in self.plan.changes if c.action == "remove"]
        for c in sorted(removals, key=lambda c: c.kind != "service"):
            try:
                self.engine.remove(c.kind, c.live_id or c.name, c.name, retry_for=0 if c.kind == "service" else 20)
            except EngineError as exc:
                problems.append(str(exc))
        return problems

    def outcomes(self, rolled_back: bool) -> tuple[ServiceOutcome, ...]:
        out = []
        for t in self.tracks.values():
            state: OutcomeState
            if t.state == "failed":
                state = "failed"
            elif t.state == "unchanged":
                state = "unchanged"
            elif t.state == "waiting":
                state = "skipped"
            elif t.state == "removed":
                state = "removed"
            elif t.state == "submitted":
                state = "submitted"
            elif rolled_back:
                state = "rolled back"
            else:
                state = "converged"
            running = t.watch.running if t.watch else 0
            desired = t.watch.run.expected_tasks if t.watch else t.run.expected_tasks
            out.append(ServiceOutcome(t.name, state, running, desired, tuple(t.errors)))
        return tuple(out)


def apply(
    engine: Engine,
    plan: Plan,
    *,
    progress: ProgressFn | None = None,
    timeout: float = 300.0,
    rollback: bool = True,
    stable_for: float = 2.0,
    poll: float = 0.5,
    max_failures: int = 3,
    detach: bool = False,
) -> Result:
    """Apply `plan`; returns what happened. Raises only for an engine that cannot be reached
    (or a second Ctrl-C while rolling back)."""
    start = time.monotonic()
    options = {"timeout": timeout, "stable_for": stable_for, "poll": poll, "max_failures": max_failures}
    a = _Applier(engine, plan, progress, {**options, "detach": detach})
    errors: list[str] = []
    interrupted = False
    try:
        try:
            a.label_nodes()
            a.create_objects()
            ok = a.run_services()
        except EngineError as exc:
            errors.append(str(exc))
            ok = False
        except KeyboardInterrupt:
            # Let calls already sent finish (their IDs get recorded), then undo what they did.
            a.pool.shutdown(wait=True)
            errors.append("interrupted")
            ok, interrupted = False, True
        errors += [f"{t.name}: {e}" for t in a.tracks.values() for e in t.errors]
        rolled_back = False
        if not ok and rollback:
            errors += [f"rollback: {p}" for p in a.rollback()]
            rolled_back = True
        if ok:
            problems = a.prune()
            errors += [f"prune: {p}" for p in problems]
            ok = not problems
    finally:
        a.pool.shutdown(wait=True)
    return Result(
        ok,
        a.outcomes(rolled_back),
        tuple(errors),
        rolled_back,
        time.monotonic() - start,
        interrupted=interrupted,
        rollback_converged=a.rollback_converged,
    )
