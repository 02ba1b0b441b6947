"""The node labels of pattern hints against live nodes (swarm/labels.py), and their x-bakery form."""

from __future__ import annotations

import copy

import pytest

from bakery.compose.model import Ref
from bakery.errors import ComposeError
from bakery.stack import load
from bakery.stack.model import NodeLabel
from bakery.stack.values import hint_label, hint_parts
from bakery.swarm import constraints
from bakery.swarm.labels import labelled, plan_labels
from bakery.yamlsrc import loads

REF = Ref(loads("environment: []\n", "c.yml"), ("environment",))


def node(ident: str, hostname: str, labels: dict | None = None, engine: dict | None = None) -> dict:
    return {"ID": ident, "Description": {"Hostname": hostname, "Engine": {"Labels": engine or {}}},
            "Spec": {"Role": "worker", "Availability": "active", "Labels": labels or {}},
            "Status": {"State": "ready"}}


def hint(text: str) -> NodeLabel:
    parts = hint_parts(text)
    assert parts is not None
    return NodeLabel(hint_label(*parts), *parts, ref=REF)


WEB = hint("node==web*")
L = WEB.label


@pytest.mark.parametrize(
    "nodes, edits",
    [
        # a fresh swarm: the matching nodes get the label, the others nothing
        ([node("1", "web1"), node("2", "web2"), node("3", "db1")],
         {"web1": [(L, None, "true")], "web2": [(L, None, "true")]}),
        # already labelled: nothing to do (a second deploy is a no-op)
        ([node("1", "web1", {L: "true"}), node("3", "db1")], {}),
        # a node that joined since (web3) is labelled now; one renamed away (was web2) loses the label
        ([node("1", "web1", {L: "true"}), node("2", "db2", {L: "true"}), node("4", "web3")],
         {"db2": [(L, "true", None)], "web3": [(L, None, "true")]}),
        # someone set it to false by hand: it is ours by name, so it is set to true
        ([node("1", "web1", {L: "false", "zone": "a"})], {"web1": [(L, "false", "true")]}),
    ],
)
def test_the_nodes_the_hint_admits_carry_its_label_and_only_those(nodes, edits):
    before = copy.deepcopy(nodes)
    changes = plan_labels([WEB], nodes)
    got = {c.name: [(e.label, e.before, e.after) for e in c.labels] for c in changes}
    assert got == edits
    assert all(c.kind == "node" and c.action == "update" for c in changes)
    after = labelled(nodes, changes)
    assert [n["Description"]["Hostname"] for n in constraints.eligible(after, [WEB.constraint])] == sorted(
        h for h in ("web1", "web2", "web3") if h in {n["Description"]["Hostname"] for n in nodes})
    assert all(n["Spec"]["Labels"].get("zone") in (None, "a") for n in after)  # other labels stay
    assert nodes == before  # planning edits copies, never the live nodes


@pytest.mark.parametrize(
    "text, admitted",
    [
        ("disk==ss*", ["a"]),
        ("disk!=ss*", ["b", "c"]),  # c has no disk label: != admits it
        ("node==/^[ab]$/", ["a", "b"]),
    ],
)
def test_engine_labels_and_operators(text, admitted):
    nodes = [node("1", "a", engine={"disk": "ssd"}), node("2", "b", engine={"disk": "hdd"}), node("3", "c")]
    changes = plan_labels([hint(text)], nodes)
    assert sorted(c.name for c in changes) == admitted


@pytest.mark.parametrize("text, verb", [("node==zz*", "matches"), ("node!=*", "admits")])
def test_a_hint_no_live_node_satisfies_is_refused_at_the_hint(text, verb):
    with pytest.raises(ComposeError) as err:
        plan_labels([hint(text)], [node("1", "web1"), node("2", "db1")])
    assert f"{verb} none of the 2 live node(s): its tasks would pend forever" in err.value.message
    assert err.value.source == "c.yml" and err.value.path == ("environment",)
    assert "web1, db1" in (err.value.fix or "")


def test_the_plan_lines_say_what_each_node_gets():
    [change] = plan_labels([WEB], [node("1", "web1")])
    assert change.reasons == (f"+{L}=true (node==web*)",)
    assert change.to_json()["labels"] == [{"label": L, "hint": "node==web*", "before": None, "after": "true"}]


def _stack(node_labels: dict) -> dict:
    return {"services": {"a": {"image": "x", "deploy": {"placement": {"constraints": [WEB.constraint]}}}},
            "node_labels": node_labels}


def test_the_stack_carries_the_hint():
    [got] = load(_stack({L: "node==web*"})).node_labels
    assert (got.label, got.key, got.op, got.value, got.constraint) == (L, "node", "==", "web*", WEB.constraint)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({L: "node==web1"}, "has no pattern"),
        ({L: "node!=web*"}, "does not name the hint"),
        ({L: "nonsense"}, "is not a classic-Swarm hint"),
        ({L: ["node==web*"]}, "is not a classic-Swarm hint"),
        ({hint_label("node", "==", "/(/"): "node==/(/"}, "bad regular expression"),
    ],
)
def test_a_hand_edited_entry_is_a_located_error(entry, message):
    with pytest.raises(ComposeError, match=message) as err:
        load(_stack(entry))
    assert err.value.path[0] == "node_labels"


def test_a_hint_label_nothing_names_is_taken_off_and_one_in_use_is_kept():
    stale, kept = "bakery.hint.0123456789ab", "bakery.hint.ba9876543210"
    nodes = [node("1", "web1", {L: "true", stale: "true", kept: "true", "zone": "a"}), node("2", "db1", {stale: "x"})]
    changes = plan_labels([WEB], nodes, in_use={kept})
    got = {c.name: [(e.label, e.before, e.after) for e in c.labels] for c in changes}
    assert got == {"web1": [(stale, "true", None)], "db1": [(stale, "x", None)]}
    assert all("no service names it any more" in r for c in changes for r in c.reasons)
    assert plan_labels([WEB], nodes) == []  # without what services name (no engine asked), nothing is taken off
    assert labels_of(labelled(nodes, changes)) == [{L: "true", kept: "true", "zone": "a"}, {}]


def labels_of(nodes: list[dict]) -> list[dict]:
    return [n["Spec"]["Labels"] for n in nodes]


def test_the_labels_live_constraints_name():
    from bakery.swarm.labels import named_hint_labels

    svc = {"Spec": {"TaskTemplate": {"Placement": {"Constraints": [
        "node.labels.bakery.hint.0123456789ab==true", "node.role==worker", "node.labels.bakery.hint.ffff != true"]}}}}
    assert named_hint_labels([svc, {"Spec": {}}, {}]) == {"bakery.hint.0123456789ab", "bakery.hint.ffff"}
