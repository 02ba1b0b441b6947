from bakery.swarm.model import ServiceRun
from bakery.swarm.watch import Watch

SERVICE = {"ID": "s1", "Spec": {"Labels": {"com.bakery.spec-hash": "h1"}}}


def task(ident, state, desired="running", err=None, exit_code=None):
    status = {"State": state}
    if err:
        status["Err"] = err
    if exit_code is not None:
        status["ContainerStatus"] = {"ExitCode": exit_code}
    return {"ID": ident, "DesiredState": desired, "Status": status}


def watch(run=None, existing=(), **kw):
    kw.setdefault("max_failures", 3)
    kw.setdefault("stable_for", 2.0)
    return Watch(run or ServiceRun("web", expected_tasks=2), existing, spec_hash="h1", **kw)


def test_converged_then_done_after_stable_period():
    w = watch()
    assert w.observe(SERVICE, [task("a", "running"), task("b", "starting")], 0.0) == "pending"
    assert w.observe(SERVICE, [task("a", "running"), task("b", "running")], 1.0) == "converged"
    assert w.observe(SERVICE, [task("a", "running"), task("b", "running")], 3.0) == "done"


def test_a_crash_resets_stability():
    w = watch()
    w.observe(SERVICE, [task("a", "running"), task("b", "running")], 0.0)
    assert w.observe(SERVICE, [task("a", "running"), task("b", "failed", exit_code=1)], 1.0) == "pending"
    assert w.observe(SERVICE, [task("a", "running"), task("c", "running")], 2.0) == "converged"


def test_rejected_tasks_fail_with_their_error():
    w = watch(max_failures=2)
    tasks = [task("a", "rejected", "shutdown", "No such image: x:1")]
    assert w.observe(SERVICE, tasks, 0.0) == "pending"
    tasks.append(task("b", "rejected", "ready", "No such image: x:1"))
    assert w.observe(SERVICE, tasks, 1.0) == "failed"
    assert w.errors == ["task rejected: No such image: x:1"]


def test_failures_from_before_the_deploy_do_not_count():
    w = watch(existing={"old"}, max_failures=1)
    assert w.observe(SERVICE, [task("old", "failed", "shutdown"), task("a", "running")], 0.0) == "pending"


def test_without_restarts_one_failure_is_final_and_completion_counts():
    run = ServiceRun("init", expected_tasks=1, restarts=False)
    assert watch(run).observe(SERVICE, [task("a", "failed", "shutdown", exit_code=2)], 0.0) == "failed"
    assert watch(run, stable_for=0).observe(SERVICE, [task("a", "complete", "shutdown")], 0.0) == "done"


def test_jobs_are_done_when_complete():
    run = ServiceRun("migrate", expected_tasks=2, job=True)
    w = watch(run)
    assert w.observe(SERVICE, [task("a", "complete", "complete"), task("b", "running", "complete")], 0) == "pending"
    assert w.observe(SERVICE, [task("a", "complete", "complete"), task("b", "complete", "complete")], 0) == "done"


def test_engine_rollback_or_foreign_spec_is_a_failure():
    rolled = {**SERVICE, "UpdateStatus": {"State": "rollback_completed", "StartedAt": "t2"}}
    assert watch(update_started="t1").observe(rolled, [], 0.0) == "failed"
    # The same status from an earlier deploy is not ours.
    stale = {**SERVICE, "UpdateStatus": {"State": "rollback_completed", "StartedAt": "t1"}}
    assert watch(update_started="t1").observe(stale, [], 0.0) == "pending"
    foreign = {"ID": "s1", "Spec": {"Labels": {"com.bakery.spec-hash": "other"}}}
    assert watch().observe(foreign, [], 0.0) == "failed"


def test_pending_reason_is_shown():
    w = watch()
    w.observe(
        SERVICE,
        [{"ID": "a", "DesiredState": "running", "Status": {"State": "pending", "Err": "no suitable node"}}],
        0.0,
    )
    assert "no suitable node" in w.message


ROLLED_BACK = {"State": "rollback_completed", "StartedAt": "t2", "Message": "rollback completed"}


def test_an_engine_rollback_says_why_the_tasks_failed():
    rolled = {**SERVICE, "UpdateStatus": ROLLED_BACK}
    w = watch(update_started="t1", existing={"old"})
    failed = task("a", "rejected", "shutdown", "No such image: redis:no-such-tag")
    assert w.observe(rolled, [failed, task("old", "failed", "shutdown", "older")], 0.0) == "failed"
    assert w.errors == ["task rejected: No such image: redis:no-such-tag",
                        "the engine stopped the update (rollback_completed): rollback completed"]


def test_tasks_left_out_of_date_by_the_rollback_still_explain_it():
    """After the engine's rollback the failed tasks are no longer up to date: the applier passes
    every task of the service, and their error goes first."""
    rolled = {**SERVICE, "UpdateStatus": ROLLED_BACK}
    w = watch(update_started="t1", existing={"old"})
    assert w.observe(rolled, [], 0.0) == "failed"
    w.task_errors([task("old", "failed", "shutdown", "older"), task("a", "rejected", "shutdown", "No such image: x:1"),
                   task("b", "rejected", "shutdown", "No such image: x:1")])
    assert w.errors == ["task rejected: No such image: x:1",
                        "the engine stopped the update (rollback_completed): rollback completed"]
