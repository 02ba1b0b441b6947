"""The day-two planner (bakery/fleet.py): which nodes go, in which order, and the majority rule."""

from __future__ import annotations

import pytest

from bakery import fleet
from bakery.errors import UserError


def member(name: str, role: str, *, running: bool = True, status: str = "Ready", availability: str = "Active",
           manager_status: str | None = None) -> fleet.Member:
    if manager_status is None:
        manager_status = "Reachable" if role in ("seed", "manager") else ""
    return fleet.Member(name, role, running, True, status, availability, manager_status)


def cluster(managers: int = 3, workers: int = 2) -> list[fleet.Member]:
    out = [member("seed", "seed", manager_status="Leader")]
    out += [member(f"manager-{i}", "manager") for i in range(1, managers)]
    out += [member(f"worker-{i}", "worker") for i in range(1, workers + 1)]
    return out


def test_growing_boots_the_lowest_free_names() -> None:
    plan = fleet.plan_scale(cluster(3, 2), 5, 4, False, 19)
    assert [(c.kind, c.node, c.role) for c in plan.changes] == [
        ("add", "manager-3", "manager"), ("add", "manager-4", "manager"),
        ("add", "worker-3", "worker"), ("add", "worker-4", "worker")]


def test_the_same_counts_change_nothing() -> None:
    plan = fleet.plan_scale(cluster(3, 2), 3, 2, False, 19)
    assert plan.changes == [] and plan.lines() == ["nothing to change"]


def test_shrinking_retires_down_then_drained_then_the_highest_numbered() -> None:
    nodes = cluster(3, 4)
    nodes[4] = member("worker-2", "worker", running=False, status="Down")
    nodes[3] = member("worker-1", "worker", availability="Drain")
    plan = fleet.plan_scale(nodes, 3, 1, False, 19)
    assert [c.node for c in plan.changes] == ["worker-2", "worker-1", "worker-4"]
    assert all(c.kind == "retire" for c in plan.changes)


def test_shrinking_managers_keeps_the_seed_and_retires_workers_first() -> None:
    plan = fleet.plan_scale(cluster(5, 2), 3, 1, False, 19)
    assert [c.node for c in plan.changes] == ["worker-2", "manager-4", "manager-3"]
    assert "demote" in plan.changes[1].describe()


def test_an_even_manager_count_is_refused() -> None:
    with pytest.raises(UserError, match="odd number of managers"):
        fleet.plan_scale(cluster(), 4, 2, False, 19)


def test_no_quorum_refuses_every_swarm_change_with_the_reason() -> None:
    nodes = cluster(3, 2)
    nodes[1] = member("manager-1", "manager", running=False, status="Down", manager_status="Unreachable")
    nodes[2] = member("manager-2", "manager", running=False, status="Down", manager_status="Unreachable")
    with pytest.raises(UserError, match=r"no quorum: 1 of 3 managers reachable, a majority is 2") as err:
        fleet.plan_scale(nodes, 3, 3, False, 19)
    assert "manager-1, manager-2" in str(err.value) and "--force-new-cluster" in (err.value.fix or "")


def test_unreachable_managers_are_retired_before_reachable_ones() -> None:
    nodes = cluster(5, 0)
    nodes[1] = member("manager-1", "manager", running=False, status="Down", manager_status="Unreachable")
    nodes[2] = member("manager-2", "manager", running=False, status="Down", manager_status="Unreachable")
    plan = fleet.plan_scale(nodes, 1, 0, False, 19)
    # 5 listed, 3 reachable: the two lost ones go first (5->4->3 listed, 3 reachable), then two live ones.
    assert [c.node for c in plan.changes] == ["manager-2", "manager-1", "manager-4", "manager-3"]


def test_a_step_that_would_lose_the_majority_is_refused() -> None:
    nodes = cluster(3, 0)
    nodes[2] = member("manager-2", "manager", running=False, status="Down", manager_status="Unreachable")
    changes = [fleet.Change("retire", "manager-1", "manager")]  # a live one while manager-2 is lost
    with pytest.raises(UserError, match=r"step 1 .* leave 1 of 2 managers reachable, fewer than a majority \(2\)"):
        fleet.check_quorum(nodes, changes)


def test_roll_replaces_workers_first_then_managers_the_seed_last() -> None:
    plan = fleet.plan_roll(cluster(3, 2), None, 19)
    pairs = [(c.node, c.replaces) for c in plan.changes if c.kind == "add"]
    assert pairs == [("worker-3", "worker-1"), ("worker-4", "worker-2"), ("manager-3", "manager-1"),
                     ("manager-4", "manager-2"), ("manager-5", "seed")]
    assert [c.kind for c in plan.changes] == ["add", "retire"] * 5
    seed_add = plan.changes[-2]
    assert seed_add.role == "manager"  # a replaced seed joins, it never inits


def test_roll_continues_with_the_names_an_interrupted_roll_chose() -> None:
    nodes = [*cluster(3, 2), member("worker-3", "worker")]  # worker-3 replaces worker-1, booted already
    plan = fleet.plan_roll(nodes, None, 19, done={"worker-1": "worker-3"})
    adds = [(c.node, c.replaces) for c in plan.changes if c.kind == "add"]
    assert adds[0] == ("worker-3", "worker-1") and ("worker-4", "worker-2") in adds
    assert all(c.node != "worker-3" for c in plan.changes if c.kind == "retire")


def test_roll_of_named_nodes_only_and_unknown_names_refused() -> None:
    plan = fleet.plan_roll(cluster(3, 2), ["worker-2"], 19)
    assert [(c.kind, c.node) for c in plan.changes] == [("add", "worker-3"),
                                                        ("retire", "worker-2")]
    with pytest.raises(UserError, match="no node 'worker-9'"):
        fleet.plan_roll(cluster(3, 2), ["worker-9"], 19)


def test_names_run_out_with_a_clear_error() -> None:
    with pytest.raises(UserError, match="no free worker name"):
        fleet.plan_scale(cluster(1, 2), 1, 4, False, 3)


def test_replicas_column_is_parsed_with_or_without_the_per_node_limit() -> None:
    assert fleet.parse_replicas("3/4") == (3, 4)
    assert fleet.parse_replicas("2/3 (max 1 per node)") == (2, 3)
    assert fleet.parse_replicas("") is None


def test_a_node_booted_by_a_stopped_run_is_waited_for_and_a_dead_one_named() -> None:
    nodes = [*cluster(3, 1), fleet.Member("worker-2", "worker", True, False),  # booted, never joined
             member("worker-3", "worker", running=False, status="Down")]
    plan = fleet.plan_scale(nodes, 3, 3, False, 19)
    assert [(c.kind, c.node) for c in plan.changes] == [("add", "worker-2")]
    assert plan.notes == ["not running, and kept: worker-3 (they count as nodes; `bakery roll --nodes worker-3` "
                          "replaces them)"]


def test_a_manager_the_swarm_lists_as_a_worker_is_finished_not_counted() -> None:
    """A retire stopped after its demote: the swarm has 2 managers, not 3; the re-run finishes the retire
    and the counts come from the swarm's view."""
    nodes = cluster(3, 0)
    nodes[2] = member("manager-2", "manager", availability="Drain", manager_status="")
    assert fleet.quorum_now(nodes) == (2, 2)
    plan = fleet.plan_scale(nodes, 3, 0, False, 19)
    assert [(c.kind, c.node) for c in plan.changes] == [("add", "manager-3"), ("retire", "manager-2")]
    plan = fleet.plan_scale(nodes, 1, 0, False, 19)
    assert [c.node for c in plan.changes][0] == "manager-2"  # finished first
    assert [c.node for c in plan.changes].count("manager-1") == 1


def test_a_roll_stopped_after_the_seeds_demote_can_finish() -> None:
    nodes = [member("seed", "seed", availability="Drain", manager_status=""),
             member("manager-1", "manager", manager_status="Leader")]
    plan = fleet.plan_roll(nodes, None, 19, done={"seed": "manager-1"})
    assert [(c.kind, c.node) for c in plan.changes] == [("add", "manager-1"), ("retire", "seed")]


def test_a_node_that_died_before_it_joined_is_booted_again() -> None:
    nodes = [*cluster(3, 2), fleet.Member("worker-3", "worker", False, False)]
    plan = fleet.plan_scale(nodes, 3, 3, False, 19)
    assert [(c.kind, c.node) for c in plan.changes] == [("add", "worker-3")] and plan.notes == []


def test_a_dead_seed_goes_first_and_a_roll_replaces_lost_managers_first() -> None:
    nodes = cluster(3, 0)
    nodes[0] = member("seed", "seed", running=False, status="Down", manager_status="Unreachable")
    plan = fleet.plan_scale(nodes, 1, 0, False, 19)
    assert [c.node for c in plan.changes] == ["seed", "manager-2"]
    nodes = cluster(5, 0)
    nodes[3] = member("manager-3", "manager", running=False, status="Down", manager_status="Unreachable")
    order = [c.replaces for c in fleet.plan_roll(nodes, None, 19).changes if c.kind == "add"]
    assert order == ["manager-3", "manager-1", "manager-2", "manager-4", "seed"]


def test_an_interrupted_roll_of_named_nodes_continues() -> None:
    nodes = [*cluster(1, 1)[:1], member("worker-2", "worker"), member("worker-3", "worker")]
    # worker-1 -> worker-3 done (worker-1 deleted); worker-2 -> worker-4 chosen, not booted yet
    plan = fleet.plan_roll(nodes, ["worker-1", "worker-2"], 19, done={"worker-1": "worker-3", "worker-2": "worker-4"})
    assert [(c.kind, c.node) for c in plan.changes] == [("add", "worker-4"), ("retire", "worker-2")]


def test_consul_is_not_rolled() -> None:
    nodes = [*cluster(1, 1), member("consul", "consul")]
    plan = fleet.plan_roll(nodes, None, 19)
    assert all(c.node != "consul" and c.replaces != "consul" for c in plan.changes)
    assert plan.notes == ["consul is not rolled (its data does not move with it)"]
    with pytest.raises(UserError, match="consul server: a roll does not move its data"):
        fleet.plan_roll(nodes, ["consul"], 19)


def test_a_worker_that_left_while_running_is_finished_and_replaced() -> None:
    nodes = [*cluster(3, 2), member("worker-3", "worker", status="Down", availability="Drain")]
    plan = fleet.plan_scale(nodes, 3, 3, False, 19)
    assert [(c.kind, c.node) for c in plan.changes] == [("add", "worker-4"), ("retire", "worker-3")]


def test_a_kept_drained_node_is_named_with_the_undrain_command() -> None:
    nodes = [*cluster(3, 1), member("worker-2", "worker", availability="Drain")]
    plan = fleet.plan_scale(nodes, 3, 2, False, 19)
    assert plan.changes == []
    assert plan.notes == ["worker-2 is drained and kept: no task goes there until `docker node update "
                          "--availability active worker-2` (or it is retired first when you shrink)"]


class DeadDriver:
    """Just enough of a Driver and Swarm for a dead node that held a service that cannot run elsewhere."""

    limit = 19

    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.removed: list[tuple[str, bool]] = []

    def swarm(self, avoid=()):
        return self

    def nodes(self):
        return [] if self.removed else [{"ID": "id3", "Hostname": "worker-3", "Status": "Down",
                                         "Availability": "Active", "ManagerStatus": ""}]

    def tasks(self, node_id):
        return [("pinned", "Running 5 minutes ago")]

    def desired(self):
        return {"pinned": 1}

    def running(self, name_or_service):
        return 0 if name_or_service == "pinned" else False

    def drain(self, node_id):
        pass

    def remove(self, node_id, force):
        self.removed.append((node_id, force))

    def delete(self, name):
        self.deleted.append(name)


def test_a_dead_node_is_retired_even_when_its_service_cannot_run_elsewhere() -> None:
    driver = DeadDriver()
    said: list[str] = []
    fleet.retire(driver, fleet.Change("retire", "worker-3", "worker"), said.append,  # type: ignore[arg-type]
                 fleet.Timeouts(drain=2, step=2))
    assert driver.deleted == ["worker-3"] and driver.removed == [("id3", False)]
    assert any("not running, so retired anyway" in line and "pinned 0/1 running" in line for line in said)
    assert not any("before its drain" in line for line in said)


# --- the swarm's view counts: ghosts and duplicates (a manager entry no node stands for) ---

def entry(host: str, ident: str, status: str = "Ready", manager: str = "Reachable",
          availability: str = "Active") -> dict[str, str]:
    return {"ID": ident, "Hostname": host, "Status": status, "Availability": availability, "ManagerStatus": manager}


NODES = [("seed", "seed", True), ("manager-1", "manager", True), ("manager-2", "manager", True),
         ("worker-1", "worker", True)]
LISTED = [entry("seed", "id-seed", manager="Leader"), entry("manager-1", "id-m1"), entry("manager-2", "id-m2"),
          entry("worker-1", "id-w1", manager="")]


def test_members_of_matches_entries_and_returns_unmatched_managers_as_ghosts() -> None:
    listed = [*LISTED,
              entry("manager-1", "id-m1-old", status="Down", manager="Unreachable"),  # the hostname twice
              entry("manager-9", "id-m9", status="Down", manager="Unreachable"),  # its machine is gone
              entry("worker-7", "id-w7", status="Down", manager="")]  # a stale worker: raft does not count it
    members = fleet.members_of(NODES, listed)
    assert [(m.name, m.node_id) for m in members if not m.ghost] == [
        ("seed", "id-seed"), ("manager-1", "id-m1"), ("manager-2", "id-m2"), ("worker-1", "id-w1")]
    assert [(m.name, m.node_id, m.reachable) for m in members if m.ghost] == [
        ("manager-1", "id-m1-old", False), ("manager-9", "id-m9", False)]
    assert fleet.quorum_now(members) == (5, 3)


def test_no_answer_makes_every_manager_unreachable() -> None:
    members = fleet.members_of(NODES, None)
    assert fleet.quorum_now(members) == (3, 0) and not any(m.ghost for m in members)


def test_ghost_managers_count_toward_the_majority() -> None:
    """3 live managers and 2 ghosts: raft counts 5, so retiring a live manager leaves 2 of 4, no majority.
    Counted from the nodes alone (3), it would have been allowed, and the swarm would have lost quorum."""
    listed = [*LISTED, entry("manager-8", "id-m8", status="Down", manager="Unreachable"),
              entry("manager-9", "id-m9", status="Down", manager="Unreachable")]
    members = fleet.members_of(NODES, listed)
    with pytest.raises(fleet.Refused, match="would leave 2 of 4 managers reachable"):
        fleet.plan_scale(members, 1, 1, False, 19)
    plan = fleet.plan_scale(members, 3, 2, False, 19)  # ghosts are not nodes: the counts are met
    assert [(c.kind, c.node) for c in plan.changes] == [("add", "worker-2")]
    assert any("manager-8 id-m8 (Unreachable), manager-9 id-m9 (Unreachable)" in n and
               "docker node demote id-m8 id-m9 && docker node rm --force id-m8 id-m9" in n for n in plan.notes)


def test_a_roll_never_replaces_a_ghost() -> None:
    listed = [*LISTED, entry("manager-9", "id-m9", status="Down", manager="Unreachable")]
    plan = fleet.plan_roll(fleet.members_of(NODES, listed), None, 19)
    assert "manager-9" not in {c.node for c in plan.changes} and "manager-9" not in {c.replaces for c in plan.changes}
    assert any("manager-9 id-m9" in n for n in plan.notes)
    with pytest.raises(UserError, match="no node 'manager-9'"):
        fleet.plan_roll(fleet.members_of(NODES, listed), ["manager-9"], 19)


class Recorder:
    def __init__(self, refuse: str = "") -> None:
        self.calls: list[tuple[str, str]] = []
        self.refuse = refuse

    def demote(self, node_id: str) -> None:
        self.calls.append(("demote", node_id))

    def remove(self, node_id: str, force: bool) -> None:
        if node_id == self.refuse:
            raise fleet.Stopped("refused")
        self.calls.append(("rm", node_id))


def test_forget_demotes_a_manager_entry_before_removing_it_and_leaves_others_alone() -> None:
    swarm = Recorder(refuse="id-m1-b")
    listed = [*LISTED, entry("manager-1", "id-m1-b", status="Down", manager="Unreachable"),
              entry("manager-1", "id-m1-c", status="Down", manager="")]
    fleet.forget(swarm, "manager-1", listed)  # type: ignore[arg-type]
    assert swarm.calls == [("demote", "id-m1"), ("rm", "id-m1"), ("demote", "id-m1-b"), ("rm", "id-m1-c")]


def test_an_even_count_kept_from_the_cluster_asks_which_way() -> None:
    assert fleet.kept_managers(3, "prod") == 3
    with pytest.raises(UserError) as raised:
        fleet.kept_managers(4, "prod")
    assert "cluster prod has 4 managers now, an even number" in str(raised.value)
    assert raised.value.fix == "say which way to converge: --managers 3 or --managers 5"
    with pytest.raises(UserError, match="has 0 managers"):
        fleet.kept_managers(0, "prod")


def test_a_swarm_that_lists_none_of_the_clusters_managers_is_not_trusted() -> None:
    """A manager that answers from another swarm (it left and formed its own): workers would be deleted
    undrained, since that swarm does not know them."""
    listed = [entry("stranger", "id-x", manager="Leader")]
    members = fleet.members_of(NODES, listed)
    with pytest.raises(fleet.Refused, match="lists none of the cluster's managers"):
        fleet.plan_scale(members, 3, 0, False, 19)


class TwiceListed:
    """A live worker the swarm lists twice: a stale Down entry first (it left and joined again), then its live
    one; records the order of what is done to each entry."""

    limit = 19

    def __init__(self) -> None:
        self.entries = {"old": {"ID": "old", "Hostname": "worker-1", "Status": "Down", "Availability": "Active",
                                "ManagerStatus": ""},
                        "new": {"ID": "new", "Hostname": "worker-1", "Status": "Ready", "Availability": "Active",
                                "ManagerStatus": ""}}
        self.log: list[tuple[str, ...]] = []

    def swarm(self, avoid=()):
        return self

    def nodes(self):
        return list(self.entries.values())

    def tasks(self, node_id):
        return []

    def desired(self):
        return {}

    def running(self, name_or_service):
        return name_or_service == "worker-1" and ("leave",) not in self.log

    def drain(self, node_id):
        self.log.append(("drain", node_id))
        self.entries[node_id]["Availability"] = "Drain"

    def demote(self, node_id):
        self.log.append(("demote", node_id))

    def leave(self, name):
        self.log.append(("leave",))
        self.entries["new"]["Status"] = "Down"
        return True

    def remove(self, node_id, force):
        self.log.append(("rm", node_id))
        del self.entries[node_id]

    def delete(self, name):
        self.log.append(("delete", name))


def test_a_hostname_listed_twice_drains_its_live_entry_before_it_leaves() -> None:
    driver = TwiceListed()
    fleet.retire(driver, fleet.Change("retire", "worker-1", "worker"), lambda m: None,  # type: ignore[arg-type]
                 fleet.Timeouts(drain=5, step=5))
    assert driver.log == [("drain", "new"), ("leave",), ("rm", "new"), ("rm", "old"), ("delete", "worker-1")]


def test_a_worker_promoted_by_hand_counts_in_the_majority() -> None:
    """5 managers listed, 3 reachable; worker-2 is one of the reachable (promoted by hand): retiring it leaves
    2 of 4, no majority."""
    members = [member("seed", "seed", manager_status="Leader"), member("manager-1", "manager"),
               member("manager-2", "manager", running=False, status="Down", manager_status="Unreachable"),
               member("manager-3", "manager", running=False, status="Down", manager_status="Unreachable"),
               member("worker-1", "worker"), member("worker-2", "worker", manager_status="Reachable")]
    with pytest.raises(fleet.Refused, match="would leave 2 of 4 managers reachable"):
        fleet.check_quorum(members, [fleet.Change("retire", "worker-2", "worker")])
    with pytest.raises(fleet.Refused, match="would leave 2 of 4 managers reachable"):
        fleet.plan_roll(members, ["worker-2"], 19)


def test_a_roll_never_takes_a_ghosts_name() -> None:
    listed = [*LISTED, entry("manager-3", "id-m3", manager="Reachable")]  # joined by hand, live
    plan = fleet.plan_roll(fleet.members_of(NODES, listed), ["manager-1"], 19)
    assert [c.node for c in plan.changes if c.kind == "add"] == ["manager-4"]
