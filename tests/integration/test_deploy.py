"""`bakery deploy` against a real dockerd in swarm mode (the `engine` fixture)."""

from __future__ import annotations

import time
import urllib.request

import pytest

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
        "basic_web": "converged", "basic_worker": "converged"}

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
    assert by_name["basic_front"]["IPAM"]["Config"][0]["Subnet"] == "10.231.7.0/24"
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
