"""Is one service there yet? Judged from its up-to-date tasks and its UpdateStatus.

Up-to-date tasks (the engine's `_up-to-date` filter, as `docker service
update --detach=false` uses) are those matching the current spec, so a
scale-only change counts its old tasks, and a rolling update counts only the
replacements. Failures are tasks that failed or were rejected after we
submitted; an engine-side rollback or pause of our update is a failure too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

from .model import ServiceRun

Verdict = Literal["pending", "converged", "done", "failed"]
_FAILED = ("failed", "rejected")
_ENGINE_GAVE_UP = ("paused", "rollback_started", "rollback_paused", "rollback_completed")


class Watch:
    def __init__(
        self,
        run: ServiceRun,
        existing: Collection[str],
        *,
        max_failures: int,
        stable_for: float,
        spec_hash: str | None,
        update_started: str | None = None,
    ) -> None:
        self.run, self.existing, self.spec_hash = run, set(existing), spec_hash
        # Without restarts a failed task is final; with them, allow a few before giving up.
        self.max_failures = max_failures if run.restarts else 1
        self.stable_for, self.update_started = stable_for, update_started
        self.running = self.complete = 0
        self.failed: set[str] = set()
        self.errors: list[str] = []
        self.converged_at: float | None = None
        self.message = ""

    def task_errors(self, tasks: Sequence[Mapping[str, Any]]) -> None:
        """Record the errors of tasks that failed since we submitted. After the engine rolled our
        update back, those tasks are no longer up to date: the caller passes every task of the
        service, so the message says why (`No such image: ...`), not only that it rolled back."""
        before = len(self.errors)
        self._errors(tasks)
        # The task's own error first: it says why the engine gave up.
        self.errors[:] = self.errors[before:] + self.errors[:before]

    def _errors(self, tasks: Sequence[Mapping[str, Any]]) -> None:
        for t in tasks:
            status = t.get("Status") or {}
            if status.get("State") in _FAILED and t["ID"] not in self.existing and t["ID"] not in self.failed:
                self.failed.add(t["ID"])
                err = status.get("Err") or status.get("Message") or status.get("State")
                code = (status.get("ContainerStatus") or {}).get("ExitCode")
                text = f"task {status.get('State')}: {err}" + (f" (exit code {code})" if code else "")
                if text not in self.errors:
                    self.errors.append(text)

    def observe(self, service: Mapping[str, Any] | None, tasks: list[Mapping[str, Any]], now: float) -> Verdict:
        if service is None:
            self.errors.append("the service disappeared")
            return "failed"
        update = service.get("UpdateStatus") or {}
        if update.get("State") in _ENGINE_GAVE_UP and update.get("StartedAt") != self.update_started:
            self._errors(tasks)
            self.errors.append(f"the engine stopped the update ({update['State']}): {update.get('Message', '')}")
            return "failed"
        if (service["Spec"].get("Labels") or {}).get("com.bakery.spec-hash") != self.spec_hash:
            self._errors(tasks)
            self.errors.append("the service spec was changed by someone else or rolled back by the engine")
            return "failed"
        self._errors(tasks)
        live = [t for t in tasks if t.get("DesiredState") in ("running", "complete")]
        self.running = sum(1 for t in live if (t.get("Status") or {}).get("State") == "running")
        self.complete = sum(1 for t in tasks if (t.get("Status") or {}).get("State") == "complete")
        want = self.run.expected_tasks
        self.message = f"{self.running}/{want} running" + (f", {self.complete} completed" if self.complete else "")
        stuck = [(t.get("Status") or {}).get("Err") for t in live if (t.get("Status") or {}).get("State") == "pending"]
        if self.errors:
            self.message += f"; {self.errors[-1]}"
        elif any(stuck):
            # The scheduler says why (no node with enough memory, a port taken, an address pool overlap).
            self.message += f"; pending: {next(e for e in stuck if e)}"
        if len(self.failed) >= self.max_failures:
            return "failed"
        if self.run.job:
            return "done" if self.complete >= want else "pending"
        if self.running + (0 if self.run.restarts else self.complete) < want:
            self.converged_at = None
            return "pending"
        if self.converged_at is None:
            self.converged_at = now
        return "done" if now - self.converged_at >= self.stable_for else "converged"
