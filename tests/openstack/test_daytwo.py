"""The OpenStack day-two driver where no cloud is needed: fleet's decisions on members made from Nova servers
and a swarm listing, the plan lines as this provider words them, the refusal when no manager answers, and
the docker SDK swarm against a real dockerd behind mutual TLS (tls_engine). Against the real test cloud:
test_cloud_daytwo.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bakery import config, fleet
from bakery.errors import BakeryError, UserError
from bakery.providers.openstack import daytwo
from bakery.providers.openstack import up as ou

OPTS = ou.UpOptions(cluster="prod", flavor="m1.small", image="img", network="private", operator_cidr="198.51.100.7/32")


class FakeConn:
    """Just the listings the driver reads: servers by metadata, tagged ports and floating IPs."""

    def __init__(self, servers: dict[str, tuple[str, str]], ports: tuple[str, ...] = (), name: str = "prod") -> None:
        self.servers = [SimpleNamespace(name=n, id=f"id-{n}", status=st, metadata={"bakery.cluster": name,
                                        "bakery.role": role}, addresses={"private": [{"addr": "10.0.0.9"}]})
                        for n, (role, st) in servers.items()]
        self.ports = [SimpleNamespace(name=n, id=f"port-{n}", tags=[f"bakery.cluster={name}"],
                                      fixed_ips=[{"ip_address": f"10.0.0.{i}"}]) for i, n in enumerate(ports, 10)]
        self.compute = SimpleNamespace(servers=lambda details=True: list(self.servers))
        self.network = SimpleNamespace(ports=lambda tags=None: list(self.ports), ips=lambda tags=None: [])


def cluster(workers: int = 2, status: str = "ACTIVE") -> FakeConn:
    names = {"prod-seed": ("seed", status), "prod-manager-1": ("manager", status),
             "prod-manager-2": ("manager", status)}
    names |= {f"prod-worker-{i}": ("worker", "ACTIVE") for i in range(1, workers + 1)}
    return FakeConn(names, ports=("prod-seed", "prod-manager-1", "prod-manager-2"))


class FakeApi:
    """docker.APIClient's node, service and task listings (the shapes the Engine API returns)."""

    def __init__(self, nodes: list[dict], services: list[dict] = (), tasks: list[dict] = ()) -> None:
        self._nodes, self._services, self._tasks = nodes, list(services), list(tasks)

    def nodes(self):
        return self._nodes

    def services(self):
        return self._services

    def tasks(self, filters=None):
        """The Engine API's filters: node, service (ID or name), desired-state."""
        f = filters or {}
        names = {s["ID"]: s["Spec"]["Name"] for s in self.services()}
        return [t for t in self._tasks if f.get("node") in (None, t["NodeID"])
                and f.get("service") in (None, t["ServiceID"], names.get(t["ServiceID"]))
                and f.get("desired-state") in (None, t.get("DesiredState", "running"))]


def node(ident: str, hostname: str, role: str = "worker", state: str = "ready", leader: bool = False) -> dict:
    a = {"ID": ident, "Description": {"Hostname": hostname}, "Status": {"State": state},
         "Spec": {"Availability": "active", "Role": role}}
    if role == "manager":
        a["ManagerStatus"] = {"Leader": leader, "Reachability": "reachable"}
    return a


def driver(conn, asked=True, api=None, fail=None) -> daytwo.OpenStackDriver:
    def client_for(address):
        if fail:
            raise BakeryError(fail)
        return SimpleNamespace(api=api)

    return daytwo.OpenStackDriver(conn, OPTS, config.build({}), None, lambda m: None, asked=asked,
                                  client_for=client_for)


SWARM = [node("a", "prod-seed.novalocal", "manager", leader=True), node("b", "prod-manager-1", "manager"),
         node("c", "prod-manager-2", "manager"), node("d", "prod-worker-1"), node("e", "prod-worker-2")]


def test_members_are_the_tagged_servers_with_the_swarm_view():
    members = driver(cluster(), api=FakeApi(SWARM)).members()
    assert [(m.name, m.role, m.running, m.in_swarm, m.status, m.manager_status) for m in members] == [
        ("manager-1", "manager", True, True, "Ready", "Reachable"),
        ("manager-2", "manager", True, True, "Ready", "Reachable"),
        ("seed", "seed", True, True, "Ready", "Leader"),
        ("worker-1", "worker", True, True, "Ready", ""),
        ("worker-2", "worker", True, True, "Ready", ""),
    ]


def test_a_manager_entry_no_server_stands_for_counts_toward_the_majority():
    """A deleted server's manager entry (and a second entry of a re-booted hostname) are what raft counts:
    from the servers alone there are 3 managers and shrinking to 1 looks safe; raft has 5 and refuses."""
    lost = node("g", "prod-manager-9", "manager", state="down")
    lost["ManagerStatus"]["Reachability"] = "unreachable"
    twice = node("h", "prod-manager-1", "manager", state="down")
    twice["ManagerStatus"]["Reachability"] = "unreachable"
    d = driver(cluster(), api=FakeApi([*SWARM, lost, twice]))
    members = d.members()
    assert [(m.name, m.node_id) for m in members if m.ghost] == [("manager-9", "g"), ("manager-1", "h")]
    assert fleet.quorum_now(members) == (5, 3)
    with pytest.raises(fleet.Refused, match="would leave 2 of 4 managers reachable"):
        fleet.plan_scale(members, 1, 2, False, d.limit)
    plan = fleet.plan_scale(members, 3, 2, False, d.limit)
    assert plan.changes == [] and any("docker node demote g h && docker node rm --force g h" in n for n in plan.notes)


def test_booting_a_name_again_demotes_and_removes_its_stale_manager_entry():
    calls = []

    class Api(FakeApi):
        def inspect_node(self, ident):
            return next(n for n in self._nodes if n["ID"] == ident) | {"Version": {"Index": 1}}

        def update_node(self, ident, version, spec):
            calls.append(("update", ident, spec["Role"]))

        def remove_node(self, ident, force=False):
            calls.append(("rm", ident, force))

    stale = node("h", "prod-manager-1", "manager", state="down")
    d = driver(cluster(), api=Api([*SWARM[:1], stale]))
    d._forget("manager-1")
    assert calls == [("update", "h", "worker"), ("rm", "h", True)]


def test_shrink_and_grow_plans_in_server_names():
    d = driver(cluster(), api=FakeApi(SWARM))
    plan = fleet.plan_scale(d.members(), 3, 1, False, d.limit)
    assert plan.lines(daytwo.describer(d)) == [
        "1. retire prod-worker-2 (worker): drain, wait for its tasks elsewhere, leave, remove, delete"]
    plan = fleet.plan_scale(d.members(), 3, 3, False, d.limit)
    assert plan.lines(daytwo.describer(d)) == ["1. boot prod-worker-3 (worker) and wait until Ready"]


def test_no_manager_answering_is_no_quorum_with_the_reason_and_the_seam():
    d = driver(cluster(), fail="No route to host")
    with pytest.raises(UserError) as caught:
        fleet.plan_scale(d.members(), 3, 1, False, 99)
    wrapped = daytwo._unreachable(d, caught.value)
    assert wrapped.message.startswith("the swarm has no quorum: 0 of 3 managers reachable, a majority is 2")
    assert wrapped.message.endswith("last answer: prod-manager-2 at 10.0.0.12: No route to host")
    assert "--wait active deletes and boots servers without asking the swarm" in (wrapped.fix or "")


def test_nothing_to_change_needs_no_swarm():
    d = driver(cluster(), fail="No route to host")
    assert fleet.plan_scale(d.members(), 3, 2, False, 99).lines() == ["nothing to change"]


def test_wait_active_says_on_every_line_that_the_swarm_is_not_asked():
    d = driver(cluster(), asked=False)
    plan = fleet.plan_scale(d.members(), 3, 1, False, d.limit)
    assert plan.lines(daytwo.describer(d)) == [
        "1. delete server prod-worker-2 (--wait active: the swarm is not asked, nothing is drained)"]
    plan = fleet.plan_roll(d.members(), ["worker-1"], d.limit)
    assert plan.lines(daytwo.describer(d)) == [
        "1. boot server prod-worker-3 (worker) to replace server prod-worker-1, and wait until ACTIVE "
        "(--wait active: the swarm is not asked)",
        "2. delete server prod-worker-1 (--wait active: the swarm is not asked, nothing is drained)"]
    assert d.swarm().nodes() == []  # fleet.retire finds no entry: the server is only deleted
    with pytest.raises(BakeryError, match="--wait active: the swarm is not asked"):
        d.swarm().drain("x")


def test_wait_active_counts_active_managers_for_quorum():
    """Under --wait active the managers ACTIVE in Nova stand for the swarm's: 3 -> 1 goes one at a time,
    the seed last; with two of three managers not ACTIVE, the swarm has no quorum: any change is refused."""
    d = driver(cluster(workers=0), asked=False)
    plan = fleet.plan_scale(d.members(), 1, 0, False, d.limit)
    assert [c.node for c in plan.changes] == ["manager-2", "manager-1"]
    conn = cluster(workers=0)
    for s in conn.servers:
        if s.name != "prod-manager-2":
            s.status = "SHUTOFF"
    with pytest.raises(UserError, match="no quorum: 1 of 3 managers reachable"):
        fleet.plan_scale(driver(conn, asked=False).members(), 1, 0, False, 99)


def test_a_roll_replaces_workers_first_and_the_seed_with_a_manager():
    d = driver(cluster(workers=1), asked=False)
    plan = fleet.plan_roll(d.members(), None, d.limit)
    adds = [(c.replaces, c.node, c.role) for c in plan.changes if c.kind == "add"]
    assert adds == [("worker-1", "worker-2", "worker"), ("manager-1", "manager-3", "manager"),
                    ("manager-2", "manager-4", "manager"), ("seed", "manager-5", "manager")]


def test_docker_swarm_tasks_and_replicas():
    services = [{"ID": "s1", "Spec": {"Name": "web", "Mode": {"Replicated": {"Replicas": 4}}}},
                {"ID": "s2", "Spec": {"Name": "agent", "Mode": {"Global": {}}}}]
    tasks = [{"NodeID": "d", "ServiceID": "s1", "DesiredState": "running", "Status": {"State": "running"}},
             {"NodeID": "e", "ServiceID": "s1", "DesiredState": "running", "Status": {"State": "running"}},
             {"NodeID": "e", "ServiceID": "s1", "DesiredState": "running", "Status": {"State": "preparing"}},
             {"NodeID": "d", "ServiceID": "s2", "DesiredState": "running", "Status": {"State": "running"}},
             {"NodeID": "d", "ServiceID": "s1", "DesiredState": "shutdown", "Status": {"State": "running"}}]
    swarm = daytwo.DockerSwarm(SimpleNamespace(api=FakeApi(SWARM, services, tasks)), "prod")
    # a draining task (desired shutdown, still running) is the node's too
    assert sorted(swarm.tasks("d")) == [("agent", "Running"), ("web", "Running"), ("web", "Running")]
    assert swarm.desired() == {"web": 4}
    assert swarm.running("s1") == 2 and swarm.running("web") == 2


@pytest.mark.engine
def test_docker_swarm_through_mutual_tls(tls_engine):
    """nodes, replicas, drain (and back) through a real dockerd's TLS API, with bakery's certificates."""
    from bakery import state
    from bakery.providers.openstack import ready

    client = ready.tls_client("127.0.0.1", tls_engine.port, state.client_cert_dir(tls_engine.cluster,
                                                                                   tls_engine.state_dir))
    swarm = daytwo.DockerSwarm(client, tls_engine.cluster)
    (me,) = swarm.nodes()
    assert (me["Hostname"], me["Status"], me["Availability"], me["ManagerStatus"]) == ("seed", "Ready", "Active",
                                                                                       "Leader")
    tls_engine.docker("service", "create", "--detach", "--no-resolve-image", "--replicas", "0", "--name",
                      "daytwo-web", "local/none:1")
    try:
        assert swarm.desired()["daytwo-web"] == 0 and swarm.running("daytwo-web") == 0
        assert swarm.tasks(me["ID"]) == []
        swarm.drain(me["ID"])
        assert swarm.nodes()[0]["Availability"] == "Drain"
    finally:
        tls_engine.docker("node", "update", "--availability", "active", me["ID"])
        tls_engine.docker("service", "rm", "daytwo-web")


@pytest.mark.engine
def test_the_driver_asks_a_real_swarm_through_mutual_tls(tls_engine):
    """The engine is the seed of cluster tlstest; a worker server it never saw is not in the swarm (so a
    retirement only deletes it), and a new one is not Ready until the swarm lists it."""
    from bakery import state
    from bakery.providers.openstack import ready

    certs = state.client_cert_dir(tls_engine.cluster, tls_engine.state_dir)
    conn = FakeConn({"tlstest-seed": ("seed", "ACTIVE"), "tlstest-worker-1": ("worker", "ACTIVE")},
                    name=tls_engine.cluster)
    opts = ou.UpOptions(cluster=tls_engine.cluster, flavor="f", image="i", network="n", operator_cidr="127.0.0.1/32")
    d = daytwo.OpenStackDriver(conn, opts, config.build({}), tls_engine.state_dir, lambda m: None,
                               client_for=lambda address: ready.tls_client("127.0.0.1", tls_engine.port, certs))
    members = {m.name: m for m in d.members()}
    assert (members["seed"].in_swarm, members["seed"].status, members["seed"].manager_status) == (True, "Ready",
                                                                                                  "Leader")
    assert not members["worker-1"].in_swarm
    assert d.ready(["seed", "worker-1"]) == {"seed": True, "worker-1": False}
    plan = fleet.plan_scale(list(members.values()), 1, 0, False, d.limit)
    assert plan.lines(daytwo.describer(d)) == [
        "1. retire tlstest-worker-1 (worker): drain, wait for its tasks elsewhere, leave, remove, delete"]
    assert [n["Hostname"] for n in d.swarm(avoid=["worker-1"]).nodes()] == ["seed"]


def test_after_the_seed_was_rolled_the_api_is_the_first_managers_port():
    from bakery.providers.openstack.up import seed_address

    conn = FakeConn({}, ports=("prod-manager-3", "prod-manager-1"))
    assert seed_address(conn, "prod") == "10.0.0.11"  # manager-1's port, not manager-3's
    conn = FakeConn({}, ports=("prod-manager-1", "prod-seed"))
    assert seed_address(conn, "prod") == "10.0.0.11"  # the seed while there is one
    assert seed_address(FakeConn({}, ports=("prod-worker-1",)), "prod") is None
