"""The stacks/ examples, deployed onto the real engine from their compose input.

No registry is reachable, so every image they name is a stand-in (the busybox
rootfs tagged as that ref, see the `stand_ins` fixture). Stacks whose services
can run on busybox are waited for; those whose own `command:` (python,
nodemon) or host paths (/mnt/nfs) cannot work here are deployed with
`--detach` and their specs checked instead. Classic-Swarm pins name nodes
this machine does not have (`pocket`, `manager1`): the examples as they are
must be refused before anything is created, and a copy pinned to this node's
hostname must deploy with that constraint.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from testkit.deploy import STACKS

pytestmark = pytest.mark.engine


@pytest.fixture
def stacks(engine, stand_ins, deployer):  # type: ignore[no-untyped-def]
    """The deployer, and the stack names to `docker stack rm` afterwards (failing tasks would
    otherwise restart for the rest of the session)."""
    names: list[str] = []
    yield deployer, names
    for name in names:
        engine.docker("stack", "rm", name, check=False)


def _copy(name: str, dest: Path, pin: tuple[str, str] | None = None) -> Path:
    """stacks/<name> under tmp_path; `pin` replaces a pinned node name with one that exists."""
    out = dest / name
    shutil.copytree(STACKS / name, out)
    if pin:
        for f in out.glob("*.yml"):
            f.write_text(f.read_text().replace(*pin))
    return out


def _services(engine: Any, stack: str) -> dict[str, dict[str, Any]]:
    """Live services of a stack by their name in the file."""
    api = engine.client().api
    found = api.services(filters={"label": f"com.docker.stack.namespace={stack}"})
    return {s["Spec"]["Name"].removeprefix(f"{stack}_"): s for s in found}


def _task(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["Spec"]["TaskTemplate"]


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    mounts = _task(service)["ContainerSpec"].get("Mounts") or []
    return sorted((m["Type"], m["Source"], m["Target"], bool(m.get("ReadOnly"))) for m in mounts)


def _restart(service: dict[str, Any]) -> str:
    return str(_task(service)["RestartPolicy"]["Condition"])


def _replicas(service: dict[str, Any]) -> int | str:
    mode = service["Spec"]["Mode"]
    return "global" if "Global" in mode else int(mode["Replicated"]["Replicas"])


def _network_names(engine: Any, service: dict[str, Any]) -> set[str]:
    api = engine.client().api
    return {api.inspect_network(n["Target"])["Name"] for n in _task(service).get("Networks") or []}


def _hostname(engine: Any) -> str:
    return str(engine.client().api.nodes()[0]["Description"]["Hostname"])


def _listed(engine: Any, stack: str) -> dict[str, str]:
    """`docker stack services NAME`: service name -> replicas column."""
    out = engine.docker("stack", "services", stack, "--format", "{{.Name}} {{.Replicas}}").stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())


def _states(out: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["state"] for s in out["result"]["services"]}


def test_global_service_converges_on_every_node(engine, stacks, tmp_path):
    deploy, names = stacks
    d = _copy("global-service", tmp_path)
    names.append("agents")
    code, out = deploy(str(d / "docker-compose.yml"), "--name", "agents")
    assert code == 0, out
    assert _states(out) == {"agents_node-agent": "converged"}
    agent = _services(engine, "agents")["node-agent"]
    assert _replicas(agent) == "global"  # from classic Swarm's `affinity:container!=*node-agent*`
    assert _task(agent)["Resources"]["Limits"]["MemoryBytes"] == 32 * 1024 * 1024
    assert _restart(agent) == "any"
    env = _task(agent)["ContainerSpec"].get("Env") or []
    assert not [e for e in env if e.startswith("affinity:")]  # the hint is not left as a variable
    assert _listed(engine, "agents") == {"agents_node-agent": "1/1"}
    ps = engine.docker("stack", "ps", "agents", "--format", "{{.Name}} {{.CurrentState}}").stdout
    assert "Running" in ps


def test_selenium_hub_converges_in_order_and_redeploys_as_a_noop(engine, stacks, tmp_path):
    deploy, names = stacks
    d = _copy("selenium-hub", tmp_path)
    names.append("grid")
    code, out = deploy(str(d / "docker-compose.yml"), "--name", "grid")
    assert code == 0, out
    assert set(_states(out).values()) == {"converged"}
    services = _services(engine, "grid")
    assert {k: _replicas(s) for k, s in services.items()} == {"hub": 1, "chrome": 3, "firefox": 2}
    assert {_restart(s) for s in services.values()} == {"none"}  # v2 without `restart`: never restart
    assert _network_names(engine, services["chrome"]) == {"grid_default"}
    assert _listed(engine, "grid") == {"grid_hub": "1/1", "grid_chrome": "3/3", "grid_firefox": "2/2"}
    # depends_on: the browsers were created once the hub ran.
    assert services["chrome"]["CreatedAt"] > services["hub"]["CreatedAt"]

    code, again = deploy(str(d / "docker-compose.yml"), "--name", "grid")
    assert code == 0, again
    assert {c["action"] for c in again["plan"]} == {"unchanged"}
    assert {k: s["Version"]["Index"] for k, s in _services(engine, "grid").items()} == {
        k: s["Version"]["Index"] for k, s in services.items()
    }


@pytest.mark.parametrize("source", ["docker-compose.yml", "stack.yml"])
def test_whoami_pinned_to_a_missing_node_is_refused(engine, stacks, tmp_path, source):
    deploy, _ = stacks
    d = _copy("whoami-pinned", tmp_path)
    code, out = deploy(str(d / source), "--name", "whoami")
    assert code == 2
    assert "pocket" in out["_stderr"] and _hostname(engine) in out["_stderr"], out["_stderr"]
    assert f"{source}:" in out["_stderr"]  # the file (and line) the pin comes from
    assert _services(engine, "whoami") == {}


def test_whoami_pinned_to_this_node_converges(engine, stacks, tmp_path):
    deploy, names = stacks
    host = _hostname(engine)
    d = _copy("whoami-pinned", tmp_path, pin=("pocket", host))
    names.append("whoami")
    code, out = deploy(str(d / "docker-compose.yml"), "--name", "whoami")
    assert code == 0, out
    whoami = _services(engine, "whoami")["whoami"]
    assert _task(whoami)["Placement"]["Constraints"] == [f"node.hostname=={host}"]
    assert [(p["TargetPort"], p["PublishedPort"]) for p in whoami["Spec"]["EndpointSpec"]["Ports"]] == [(80, 8000)]
    assert _listed(engine, "whoami") == {"whoami_whoami": "1/1"}


def test_monitoring_global_agents_and_pinned_servers_converge(engine, stacks, tmp_path):
    deploy, names = stacks
    code, out = deploy(str(_copy("monitoring", tmp_path / "as-is") / "docker-compose.yml"), "--name", "mon")
    assert code == 2 and "manager1" in out["_stderr"], out["_stderr"]
    assert _services(engine, "mon") == {}

    host = _hostname(engine)
    d = _copy("monitoring", tmp_path, pin=("manager1", host))
    names.append("mon")
    code, out = deploy(str(d / "docker-compose.yml"), "--name", "mon")
    assert code == 0, out
    s = _services(engine, "mon")
    assert {k: _replicas(v) for k, v in s.items()} == {
        "cadvisor": "global",
        "node-exporter": "global",
        "prometheus": 1,
        "grafana": 1,
    }
    for pinned in ("prometheus", "grafana"):
        assert _task(s[pinned])["Placement"]["Constraints"] == [f"node.hostname=={host}"]
    assert _mounts(s["cadvisor"]) == [
        ("bind", "/", "/rootfs", True),
        ("bind", "/sys", "/sys", True),
        ("bind", "/var/lib/docker", "/var/lib/docker", True),  # cleaned, as docker does
        ("bind", "/var/run", "/var/run", True),
    ]
    assert _mounts(s["prometheus"]) == [("volume", "mon_prometheus-data", "/prometheus", False)]
    assert {_restart(v) for v in s.values()} == {"any"}
    assert "GF_SECURITY_ADMIN_PASSWORD=admin" in _task(s["grafana"])["ContainerSpec"]["Env"]
    # prometheus waited for both agents, grafana for prometheus.
    assert s["prometheus"]["CreatedAt"] > max(s["cadvisor"]["CreatedAt"], s["node-exporter"]["CreatedAt"])
    assert s["grafana"]["CreatedAt"] > s["prometheus"]["CreatedAt"]
    assert set(_listed(engine, "mon").values()) == {"1/1"}


def test_voting_app_detached_specs(engine, stacks, tmp_path):
    """vote and result run `python`/`nodemon`, which busybox lacks: submit and check the specs."""
    deploy, names = stacks
    d = _copy("voting-app", tmp_path)
    names.append("voting")
    code, out = deploy(str(d / "docker-compose.yml"), "--name", "voting", "--detach")
    assert code == 0, out
    assert set(_states(out).values()) == {"submitted"}
    s = _services(engine, "voting")
    assert set(_listed(engine, "voting")) == {f"voting_{k}" for k in ("vote", "result", "worker", "redis", "db")}
    assert {k: _replicas(v) for k, v in s.items()} == dict.fromkeys(("vote", "result", "worker", "redis", "db"), 1)
    both = {"voting_front-tier", "voting_back-tier"}
    assert {k: _network_names(engine, v) for k, v in s.items()} == {
        "vote": both,
        "result": both,
        "worker": {"voting_back-tier"},
        "redis": {"voting_back-tier"},
        "db": {"voting_back-tier"},
    }
    nets = engine.client().api.networks(names=sorted(both))
    assert {n["Driver"] for n in nets} == {"overlay"}  # compose's default bridge became overlay
    assert _mounts(s["db"]) == [("volume", "voting_db-data", "/var/lib/postgresql/data", False)]
    assert {k: _restart(v) for k, v in s.items()} == {
        "vote": "any",
        "result": "none",
        "worker": "on-failure",
        "redis": "none",
        "db": "none",
    }
    endpoints = {k: (v["Spec"].get("EndpointSpec") or {}).get("Ports") or [] for k, v in s.items()}
    ports = {k: sorted(p["TargetPort"] for p in v) for k, v in endpoints.items()}
    assert ports == {"vote": [80], "result": [80, 5858], "worker": [], "redis": [6379], "db": []}
    container = _task(s["vote"])["ContainerSpec"]
    assert (container.get("Command") or []) + (container.get("Args") or []) == ["python", "app.py"]


def test_nfs_web_rejected_mount_rolls_back_then_detached_specs(engine, stacks, tmp_path):
    """/mnt/nfs is not mounted here: waiting fails on the rejected task and rolls back;
    --detach submits, and the specs carry the mounts, the healthcheck and the restart policy."""
    deploy, names = stacks
    d = _copy("nfs-web", tmp_path)
    names.append("web")
    code, out = deploy(str(d / "docker-compose.yml"), "--name", "web", "--max-failures", "1")
    assert code == 1, out
    assert out["result"]["rolled_back"] is True
    assert any("/mnt/nfs/mysql" in e for e in out["result"]["errors"]), out["result"]["errors"]
    assert _services(engine, "web") == {}  # it created them, so the rollback removed them

    code, out = deploy(str(d / "docker-compose.yml"), "--name", "web", "--detach")
    assert code == 0, out
    s = _services(engine, "web")
    assert _mounts(s["nginx"]) == [("bind", "/mnt/nfs/www", "/usr/share/nginx/html", True)]
    assert _mounts(s["mariadb"]) == [("bind", "/mnt/nfs/mysql", "/var/lib/mysql", False)]
    health = _task(s["mariadb"])["ContainerSpec"]["Healthcheck"]
    assert health["Test"] == ["CMD", "mysqladmin", "ping"] and health["Interval"] == 10 * 10**9
    assert {_restart(v) for v in s.values()} == {"any"}
    assert [(p["TargetPort"], p["PublishedPort"]) for p in s["nginx"]["Spec"]["EndpointSpec"]["Ports"]] == [(80, 80)]
    assert set(_listed(engine, "web")) == {"web_nginx", "web_mariadb"}
