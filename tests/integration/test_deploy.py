"""`bakery deploy` against a real dockerd in swarm mode (the `engine` fixture)."""

from __future__ import annotations

import time
import urllib.request

import pytest
import yaml
from testkit.deploy import case_net

pytestmark = pytest.mark.engine


def _services(engine, stack):
    c = engine.client().api
    return {s["Spec"]["Name"]: s for s in c.services(filters={"label": f"com.docker.stack.namespace={stack}"})}


def _running(engine, service_id):
    tasks = engine.client().api.tasks(filters={"service": service_id, "desired-state": "running"})
    return sum(1 for t in tasks if t["Status"]["State"] == "running")


def _get(url, attempts=40):
    """Wait for the port to answer: readiness polling, not a timing assertion."""
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 (loopback)
                return r.read().decode()
        except OSError:
            time.sleep(0.25)
    raise AssertionError(f"{url} never answered")


def test_deploy_then_noop_then_change(engine, deployer, case_dir):
    d, port = case_dir("basic")
    stack_file = str(d / "stack.yml")
    code, out = deployer(stack_file, "--name", "basic")
    assert code == 0, out
    assert out["result"]["ok"] is True
    assert {s["name"]: s["state"] for s in out["result"]["services"]} == {
        "basic_web": "converged",
        "basic_worker": "converged",
    }

    services = _services(engine, "basic")
    web, worker = services["basic_web"], services["basic_worker"]
    assert _running(engine, web["ID"]) == 1 and _running(engine, worker["ID"]) == 2
    spec = web["Spec"]["TaskTemplate"]
    assert spec["Placement"]["Constraints"] == ["node.role == manager"]
    mount = spec["ContainerSpec"]["Mounts"][0]
    assert (mount["Source"], mount["Target"], mount["Type"]) == ("basic_data", "/data", "volume")
    assert spec["ContainerSpec"]["Configs"][0]["File"]["Name"] == "/etc/motd"
    nets = engine.client().api.networks(names=["basic_front", "basic_back"])
    by_name = {n["Name"]: n for n in nets}
    assert by_name["basic_front"]["Attachable"] is True
    assert by_name["basic_front"]["Labels"] == {"com.docker.stack.namespace": "basic", "tier": "front"}
    assert by_name["basic_front"]["IPAM"]["Config"][0]["Subnet"] == f"10.231.{case_net(d)}.0/24"
    attached = {n["Target"] for n in worker["Spec"]["TaskTemplate"]["Networks"]}
    assert attached == {by_name["basic_front"]["Id"], by_name["basic_back"]["Id"]}
    assert "hello from bakery" in _get(f"http://127.0.0.1:{port}/")
    ps = engine.docker("stack", "ps", "basic", "--format", "{{.Name}} {{.CurrentState}}").stdout
    assert ps.count("basic_worker.") == 2 and "basic_web.1" in ps
    assert "basic" in engine.docker("stack", "ls").stdout

    # The same file again: nothing is updated, no task restarts.
    versions = {n: s["Version"]["Index"] for n, s in services.items()}
    code, out = deployer(stack_file, "--name", "basic")
    assert code == 0
    assert {c["action"] for c in out["plan"]} == {"unchanged"}
    assert {n: s["Version"]["Index"] for n, s in _services(engine, "basic").items()} == versions

    # One changed value updates that service only.
    text = (d / "stack.yml").read_text().replace("MODE: one", "MODE: two")
    (d / "stack.yml").write_text(text)
    code, out = deployer(stack_file, "--name", "basic")
    assert code == 0, out
    assert [c["name"] for c in out["plan"] if c["action"] == "update"] == ["basic_worker"]
    after = _services(engine, "basic")
    assert after["basic_web"]["Version"]["Index"] == versions["basic_web"]
    assert after["basic_worker"]["Version"]["Index"] > versions["basic_worker"]
    assert "MODE=two" in after["basic_worker"]["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]


def _edit(path, fn):
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data))


def test_broken_image_rolls_back(engine, deployer, case_dir):
    d, _ = case_dir("basic")
    stack_file = d / "stack.yml"
    code, out = deployer(str(stack_file), "--name", "rb")
    assert code == 0, out
    before = _services(engine, "rb")

    def break_it(data):
        data["services"]["worker"]["environment"]["MODE"] = "two"
        data["services"]["ghost"] = {
            "image": "local/does-not-exist:1",
            "deploy": {"restart_policy": {"condition": "any", "delay": "500ms"}},
        }

    _edit(stack_file, break_it)
    code, out = deployer(str(stack_file), "--name", "rb")
    assert code == 1
    assert out["result"]["rolled_back"] is True
    assert any("No such image" in e for e in out["result"]["errors"]), out["result"]["errors"]
    after = _services(engine, "rb")
    assert set(after) == {"rb_web", "rb_worker"}  # the created service is gone
    restored = after["rb_worker"]["Spec"]
    assert "MODE=one" in restored["TaskTemplate"]["ContainerSpec"]["Env"]
    assert restored["Labels"] == before["rb_worker"]["Spec"]["Labels"]
    assert after["rb_web"]["Version"]["Index"] == before["rb_web"]["Version"]["Index"]
    # The rollback waited until the restored worker ran again with its old spec.
    assert out["result"]["rollback_converged"] is True, out["result"]
    assert _running_with(engine, after["rb_worker"]["ID"], "MODE=one") == 2
    states = {s["name"]: s["state"] for s in out["result"]["services"]}
    assert states == {"rb_web": "unchanged", "rb_worker": "rolled back", "rb_ghost": "removed"}


def _running_with(engine, service_id, env):
    """Running tasks whose container spec has `env` (the spec they were started from)."""
    tasks = engine.client().api.tasks(filters={"service": service_id, "desired-state": "running"})
    return sum(
        1 for t in tasks if t["Status"]["State"] == "running" and env in (t["Spec"]["ContainerSpec"].get("Env") or [])
    )


def test_ctrl_c_while_applying_rolls_back_and_exits_130(engine, deployer, case_dir, monkeypatch):
    """A KeyboardInterrupt raised from the progress display (where a Ctrl-C lands while bakery
    waits) undoes what this deploy touched, against the real engine."""
    from bakery.commands import deploy

    d, _ = case_dir("basic")
    stack_file = d / "stack.yml"
    code, out = deployer(str(stack_file), "--name", "intr")
    assert code == 0, out
    before = _services(engine, "intr")

    def grow(data):
        data["services"]["worker"]["environment"]["MODE"] = "two"
        data["services"]["extra"] = {"image": "local/busybox:1", "command": ["sleep", "3600"], "networks": ["more"]}
        data["networks"]["more"] = {}

    _edit(stack_file, grow)
    seen = []
    original = deploy.ProgressView.__call__

    def interrupting(self, p):
        seen.append((p.name, p.state))
        original(self, p)
        if p.state == "converging" and sum(1 for _, s in seen if s == "converging") == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(deploy.ProgressView, "__call__", interrupting)
    code, out = deployer(str(stack_file), "--name", "intr")
    assert code == 130, out
    result = out["result"]
    assert (result["interrupted"], result["rolled_back"], result["rollback_converged"]) == (True, True, True), result
    assert "interrupted" in result["errors"]
    after = _services(engine, "intr")
    assert set(after) == {"intr_web", "intr_worker"}  # the created service is gone
    assert not engine.client().api.networks(names=["intr_more"])  # and so is the network it created
    assert after["intr_web"]["Version"]["Index"] == before["intr_web"]["Version"]["Index"]
    assert "MODE=one" in after["intr_worker"]["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert _running_with(engine, after["intr_worker"]["ID"], "MODE=one") == 2
    assert ("intr_worker", "restoring") in seen and ("intr_extra", "removed") in seen


def test_prune_removes_only_what_left_the_file(engine, deployer, case_dir):
    d, _ = case_dir("basic")
    stack_file = d / "stack.yml"
    code, out = deployer(str(stack_file), "--name", "pr")
    assert code == 0, out
    other = case_dir("legacy")[0]  # another stack on the same swarm must survive
    code, out = deployer(str(other / "docker-compose.yml"), "--name", "bystander")
    assert code == 0, out
    api = engine.client().api

    def shrink(data):
        del data["services"]["worker"]
        del data["networks"]["back"]
        del data["secrets"]
        del data["volumes"]
        del data["x-bakery"]
        web = data["services"]["web"]
        del web["secrets"], web["volumes"]

    _edit(stack_file, shrink)
    code, out = deployer(str(stack_file), "--name", "pr", "--prune")
    assert code == 0, out
    removed = sorted((c["kind"], c["name"]) for c in out["plan"] if c["action"] == "remove")
    assert [k for k, _ in removed] == ["network", "secret", "service"]
    assert set(_services(engine, "pr")) == {"pr_web"}
    assert not api.networks(names=["pr_back"])
    assert api.networks(names=["pr_front"])
    assert not [s for s in api.secrets() if s["Spec"]["Name"].startswith("pr_token")]
    assert [v for v in api.volumes()["Volumes"] if v["Name"] == "pr_data"]  # volumes are never pruned
    assert set(_services(engine, "bystander")) == {"bystander_app", "bystander_db"}


def test_unsatisfiable_constraint_is_refused_before_anything_is_created(engine, deployer, case_dir, capsys):
    d, _ = case_dir("basic")
    stack_file = d / "stack.yml"
    _edit(
        stack_file,
        lambda data: data["services"]["worker"]["deploy"].update(
            placement={"constraints": ["node.labels.zone == nowhere"]}
        ),
    )
    code, _ = deployer(str(stack_file), "--name", "nope")
    assert code == 2
    assert _services(engine, "nope") == {}
    assert not engine.client().api.networks(names=["nope_front"])


def test_dry_run_prints_the_plan_and_changes_nothing(engine, busybox_image, case_dir, capsys):
    from bakery.cli import main

    d, _ = case_dir("basic")
    code = main(["deploy", "-H", engine.host, "--name", "dry", "--dry-run", str(d / "stack.yml")])
    out = capsys.readouterr().out
    assert code == 0
    assert "create    service dry_web" in out and "create    network dry_front" in out
    assert _services(engine, "dry") == {}


def test_dry_run_diffs_against_the_live_swarm(engine, deployer, case_dir):
    d, _ = case_dir("basic")
    stack_file = d / "stack.yml"
    code, out = deployer(str(stack_file), "--name", "drydiff")
    assert code == 0, out
    versions = {n: s["Version"]["Index"] for n, s in _services(engine, "drydiff").items()}
    _edit(stack_file, lambda data: data["services"]["worker"]["environment"].update(MODE="two"))
    code, out = deployer(str(stack_file), "--name", "drydiff", "--dry-run")
    assert code == 0, out
    assert out["engine"]["reachable"] is True and "empty swarm" not in out["_stderr"]
    actions = {c["name"]: c["action"] for c in out["plan"] if c["kind"] == "service"}
    assert actions == {"drydiff_web": "unchanged", "drydiff_worker": "update"}
    assert {c["action"] for c in out["plan"] if c["kind"] != "service"} == {"unchanged"}
    assert {n: s["Version"]["Index"] for n, s in _services(engine, "drydiff").items()} == versions


def _node(engine):
    [node] = engine.client().api.nodes()  # the session's engine is a one-node swarm
    return node


def _hinted(tmp_path, hint, name="docker-compose.yml", **more):
    compose = tmp_path / name
    app = {"image": "local/busybox:1", "command": ["sleep", "3600"], "stop_signal": "SIGKILL", "restart": "always",
           "environment": [f"constraint:{hint}"]}
    compose.write_text(yaml.safe_dump({"version": "2", "services": {"app": app, **more}}))
    return compose


def _wait_running(engine, service_id, want, attempts=120):
    for _ in range(attempts):
        if (_running(engine, service_id) > 0) == want:
            return
        time.sleep(0.25)
    raise AssertionError(f"service {service_id}: running tasks never became {'some' if want else 'none'}")


def test_a_pattern_hint_labels_the_nodes_it_admits_and_no_other(engine, deployer, tmp_path):
    """`constraint:node==<first letter>*` is a constraint on a node label named after the hint:
    deploy labels the engine's node (its hostname matches) before creating the service, a second
    deploy changes nothing, a label taken off by hand stops the tasks there (the node no longer
    qualifies) and the next deploy puts it back. A hint the hostname does not match is refused
    at the hint, before anything is created: its tasks would pend forever."""
    node = _node(engine)
    hostname, ident = node["Description"]["Hostname"], node["ID"]
    compose = _hinted(tmp_path, f"node=={hostname[:1]}*")
    code, out = deployer(str(compose), "--name", "hinted")
    assert code == 0, out
    [labelled] = [c for c in out["plan"] if c["kind"] == "node"]
    [edit] = labelled["labels"]
    label = edit["label"]
    assert (labelled["name"], labelled["action"], edit["after"]) == (hostname, "update", "true")
    assert out["plan"].index(labelled) == 0  # before the network and the service
    assert engine.client().api.inspect_node(ident)["Spec"]["Labels"][label] == "true"
    app = _services(engine, "hinted")["hinted_app"]
    assert app["Spec"]["TaskTemplate"]["Placement"]["Constraints"] == [f"node.labels.{label}==true"]
    assert _running(engine, app["ID"]) == 1

    code, out = deployer(str(compose), "--name", "hinted")
    assert code == 0, out
    assert {c["action"] for c in out["plan"]} == {"unchanged"}, out["plan"]

    # Without the label the node does not qualify: swarm stops the task there and none runs.
    engine.docker("node", "update", "--label-rm", label, ident)
    _wait_running(engine, app["ID"], False)
    code, out = deployer(str(compose), "--name", "hinted")
    assert code == 0, out
    assert [(c["kind"], c["name"]) for c in out["plan"] if c["action"] != "unchanged"] == [("node", hostname)]
    assert engine.client().api.inspect_node(ident)["Spec"]["Labels"][label] == "true"
    _wait_running(engine, app["ID"], True)

    # A hint that does not match the node's hostname: refused, located, nothing created or labelled.
    other = _hinted(tmp_path, f"node==not-{hostname}*", "other.yml")
    labels_before = engine.client().api.inspect_node(ident)["Spec"]["Labels"]
    code, out = deployer(str(other), "--name", "unhinted")
    assert code == 2, out
    error = out["error"]
    assert "matches none of the 1 live node(s): its tasks would pend forever" in error["message"], error
    assert error["line"] and error["path"] == "services.app.environment[0]", error
    assert _services(engine, "unhinted") == {}
    assert engine.client().api.inspect_node(ident)["Spec"]["Labels"] == labels_before
    # The same with != : the hostname matches the pattern, so the hint admits no node.
    code, out = deployer(str(_hinted(tmp_path, f"node!={hostname[:1]}*", "not.yml")), "--name", "unhinted")
    assert code == 2 and "admits none of the 1 live node(s)" in out["error"]["message"], out
    engine.docker("stack", "rm", "hinted")


def test_a_hint_label_no_service_names_is_taken_off_unless_another_stack_names_it(engine, deployer, tmp_path):
    """A hint that left the file leaves no label behind on the nodes (a later hint could never be told
    from it), but a label another stack's service still names is kept."""
    node = _node(engine)
    hostname, ident = node["Description"]["Hostname"], node["ID"]
    hint = f"node=={hostname[:2]}*"
    code, out = deployer(str(_hinted(tmp_path, hint, "a.yml")), "--name", "hinta")
    assert code == 0, out
    [label] = [e["label"] for c in out["plan"] if c["kind"] == "node" for e in c["labels"] if e["after"]]
    code, out = deployer(str(_hinted(tmp_path, hint, "b.yml")), "--name", "hintb")
    assert code == 0, out
    plain = tmp_path / "plain.yml"
    plain.write_text(yaml.safe_dump({"version": "2", "services": {"app": {
        "image": "local/busybox:1", "command": ["sleep", "3600"], "stop_signal": "SIGKILL"}}}))

    # hinta's file drops the hint; hintb's service still names the label: kept.
    code, out = deployer(str(plain), "--name", "hinta")
    assert code == 0, out
    assert [c for c in out["plan"] if c["kind"] == "node"] == []
    assert engine.client().api.inspect_node(ident)["Spec"]["Labels"].get(label) == "true"

    # Once hintb is gone no service names it: the next deploy takes it off, and the one after is a no-op.
    engine.docker("stack", "rm", "hintb")
    code, out = deployer(str(plain), "--name", "hinta")
    assert code == 0, out
    [change] = [c for c in out["plan"] if c["kind"] == "node"]
    assert [(e["label"], e["before"], e["after"]) for e in change["labels"]] == [(label, "true", None)]
    assert label not in engine.client().api.inspect_node(ident)["Spec"]["Labels"]
    code, out = deployer(str(plain), "--name", "hinta")
    assert code == 0, out
    assert {c["action"] for c in out["plan"]} == {"unchanged"}, out["plan"]
    engine.docker("stack", "rm", "hinta")


def test_a_rolled_back_deploy_puts_the_node_labels_back(engine, deployer, tmp_path):
    node = _node(engine)
    hostname, ident = node["Description"]["Hostname"], node["ID"]
    ghost = {"image": "local/does-not-exist:1", "restart": "always"}
    compose = _hinted(tmp_path, f"node=={hostname[:2]}*", ghost=ghost)
    code, out = deployer(str(compose), "--name", "hintrb", "--max-failures", "1")
    assert code == 1, out
    assert out["result"]["rolled_back"] is True
    [edit] = next(c for c in out["plan"] if c["kind"] == "node")["labels"]
    assert edit["before"] is None
    assert f"node {hostname}" in out["_stderr"] and "labelled" in out["_stderr"]  # set, then rolled back
    assert edit["label"] not in engine.client().api.inspect_node(ident)["Spec"]["Labels"]
    assert _services(engine, "hintrb") == {}


def test_legacy_compose_file_is_converted_and_ordered(engine, deployer, case_dir):
    d, _ = case_dir("legacy")
    code, out = deployer(str(d / "docker-compose.yml"), "--name", "legacy")
    assert code == 0, out
    services = _services(engine, "legacy")
    db, app = services["legacy_db"], services["legacy_app"]
    db_running = [
        t["Status"]["Timestamp"]
        for t in engine.client().api.tasks(filters={"service": db["ID"]})
        if t["Status"]["State"] == "running"
    ]
    assert db_running and app["CreatedAt"] > min(db_running)  # app waited for a healthy db
    update = app["Spec"]["UpdateConfig"]
    assert (update["Order"], update["FailureAction"]) == ("start-first", "rollback")  # bakery's v2 defaults


def test_no_rollback_leaves_a_failed_deploy_in_place(engine, deployer, tmp_path):
    stack_file = tmp_path / "ghost.yml"
    ghost = {"image": "local/does-not-exist:1", "deploy": {"restart_policy": {"condition": "any", "delay": "500ms"}}}
    stack_file.write_text(yaml.safe_dump({"version": "3.8", "services": {"ghost": ghost}}))
    code, out = deployer(str(stack_file), "--name", "ghosts", "--no-rollback", "--max-failures", "1")
    assert code == 1
    assert out["result"]["rolled_back"] is False
    assert [s["state"] for s in out["result"]["services"]] == ["failed"]
    assert set(_services(engine, "ghosts")) == {"ghosts_ghost"}
    engine.docker("stack", "rm", "ghosts")


def test_the_compose_file_and_its_converted_stack_file_deploy_the_same(engine, deployer, case_dir):
    """`bakery deploy app.yml`, then `bakery convert app.yml -o stack.yml` and `bakery deploy
    stack.yml`: the second deploy updates nothing (same specs, same version indexes)."""
    from bakery.cli import main

    d, _ = case_dir("roundtrip")
    code, out = deployer(str(d / "docker-compose.yml"), "--name", "rt")
    assert code == 0, out
    services = _services(engine, "rt")
    app, db = services["rt_app"]["Spec"], services["rt_db"]["Spec"]
    assert "PRICE=$5" in app["TaskTemplate"]["ContainerSpec"]["Env"]
    assert db["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"] == 64 << 20
    assert (app["UpdateConfig"]["Order"], db["UpdateConfig"]["Order"]) == ("start-first", "stop-first")
    versions = {n: s["Version"]["Index"] for n, s in services.items()}

    [label] = [c[len("node.labels."):-len("==true")] for c in app["TaskTemplate"]["Placement"]["Constraints"]]
    assert engine.client().api.nodes()[0]["Spec"]["Labels"][label] == "true"  # the hint's node label

    assert main(["convert", str(d / "docker-compose.yml"), "-o", str(d / "stack.yml")]) == 0
    assert "/.$$/" in (d / "stack.yml").read_text()  # x-bakery is interpolated by docker too
    code, out = deployer(str(d / "stack.yml"), "--name", "rt")
    assert code == 0, out
    assert {c["action"] for c in out["plan"]} == {"unchanged"}, out["plan"]
    assert {n: s["Version"]["Index"] for n, s in _services(engine, "rt").items()} == versions


def test_a_v2_update_the_engine_rolls_back_says_why(engine, deployer, tmp_path):
    """v2 input deploys with update failure_action rollback: the engine rolls the bad update back
    itself, and the failure names the task's error, not only "rollback completed"."""
    compose = tmp_path / "docker-compose.yml"
    app = {"image": "local/busybox:1", "command": ["sleep", "3600"], "restart": "always"}
    compose.write_text(yaml.safe_dump({"version": "2.4", "services": {"app": app}}))
    code, out = deployer(str(compose), "--name", "v2rb")
    assert code == 0, out
    app["image"] = "local/busybox:no-such-tag"
    compose.write_text(yaml.safe_dump({"version": "2.4", "services": {"app": app}}))
    code, out = deployer(str(compose), "--name", "v2rb")
    assert code == 1, out
    errors = out["result"]["errors"]
    assert any("No such image: local/busybox:no-such-tag" in e for e in errors), errors
    engine.docker("stack", "rm", "v2rb")


def test_a_file_without_services_deploys_nothing(engine, deployer, tmp_path):
    """compose takes `services: {}` (both tools); the stack has no services and deploying it is a no-op."""
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    code, out = deployer(str(compose), "--name", "empty")
    assert code == 0, out
    assert out["plan"] == [] and out["result"]["ok"] is True
    assert _services(engine, "empty") == {}


def test_a_host_network_service_redeploys_as_a_noop(engine, deployer, tmp_path):
    """network_mode: host joins the engine's host network, which takes no aliases: a second deploy is
    `unchanged` (the service's own name as an alias there made every deploy an update)."""
    compose = tmp_path / "docker-compose.yml"
    app = {"image": "local/busybox:1", "command": ["sleep", "3600"], "network_mode": "host"}
    compose.write_text(yaml.safe_dump({"version": "2.4", "services": {"agent": app}}))
    code, out = deployer(str(compose), "--name", "hostnet", "--detach")
    assert code == 0, out
    code, again = deployer(str(compose), "--name", "hostnet", "--detach")
    assert code == 0, again
    assert {c["action"] for c in again["plan"]} == {"unchanged"}, [c.get("reasons") for c in again["plan"]]
    engine.docker("stack", "rm", "hostnet")


@pytest.mark.parametrize("exit_code", [0, 1])
def test_a_dependency_to_complete_successfully_is_waited_for(exit_code, engine, deployer, tmp_path):
    """depends_on with condition service_completed_successfully (a migration before the app): the app
    is created once the migration's task completed with exit 0; one that fails (exit 1) fails the
    deploy and the app is never created. The app was created as soon as the migration ran."""
    compose = tmp_path / "compose.yaml"
    services = {
        "migrate": {"image": "local/busybox:1", "command": ["sh", "-c", f"sleep 2; exit {exit_code}"], "restart": "no"},
        "app": {"image": "local/busybox:1", "command": ["sleep", "3600"],
                "depends_on": {"migrate": {"condition": "service_completed_successfully"}}},
    }
    compose.write_text(yaml.safe_dump({"services": services}))
    stack = f"mig{exit_code}"
    code, out = deployer(str(compose), "--name", stack, "--no-rollback")
    try:
        live = _services(engine, stack)
        if exit_code == 0:
            assert code == 0, out
            tasks = engine.client().api.tasks(filters={"service": f"{stack}_migrate"})
            finished = max(t["Status"]["Timestamp"] for t in tasks if t["Status"]["State"] == "complete")
            assert live[f"{stack}_app"]["CreatedAt"] > finished  # after the migration completed
        else:
            assert code == 1, out
            assert f"{stack}_app" not in live
    finally:
        engine.docker("stack", "rm", stack, check=False)
