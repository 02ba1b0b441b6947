"""Classic-Swarm hints into placement constraints, with and without a node inventory."""

from __future__ import annotations

import pytest

from bakery.compose import hints
from bakery.compose.model import NodeInfo, Ref
from bakery.errors import ComposeError
from bakery.report import Report
from bakery.yamlsrc import loads

NODES = [
    NodeInfo("web1", engine_labels={"storage": "ssd", "region": "eu-1"}),
    NodeInfo("web2", engine_labels={"storage": "hdd", "region": "eu-2"}),
    NodeInfo("db1", engine_labels={"storage": "ssd", "region": "us-1"}),
]
REF = Ref(loads("environment: []\n", "c.yml"), ("environment",))


def place(*texts: str, nodes=None, kind: str = "constraint"):
    report = Report()
    found = [hints.Hint(kind, t, REF) for t in texts]
    constraints, global_mode = hints.place("web", found, nodes, report)
    return constraints, global_mode, report


@pytest.mark.parametrize(
    "text, expected",
    [
        ("node==web1", ["node.hostname==web1"]),
        ("node!=web1", ["node.hostname!=web1"]),
        ("storage==ssd", ["engine.labels.storage==ssd"]),
        ("storage != ssd", ["engine.labels.storage!=ssd"]),
        ("com.example.zone==a", ["engine.labels.com.example.zone==a"]),
    ],
)
def test_exact_hints(text, expected):
    assert place(text)[0] == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("node==web*", ["node.hostname!=db1"]),
        ("node==db?", ["node.hostname==db1"]),
        ("node!=web*", ["node.hostname!=web1", "node.hostname!=web2"]),
        ("node==/^WEB[0-9]$/", ["node.hostname!=db1"]),
        ("storage==ssd*", ["node.hostname!=web2"]),
        ("region==/eu-.*/", ["node.hostname!=db1"]),
        ("region!=/eu-.*/", ["node.hostname!=web1", "node.hostname!=web2"]),
    ],
)
def test_patterns_expand_against_the_inventory(text, expected):
    constraints, _, report = place(text, nodes=NODES)
    assert constraints == expected
    assert [f.code for f in report.findings] == ["compose.hint.expanded"]


@pytest.mark.parametrize("text", ["node==web*", "node==/web/", "storage==s?d"])
def test_patterns_without_inventory_are_refused(text):
    with pytest.raises(ComposeError) as exc:
        place(text)
    assert "--nodes" in str(exc.value) and "pend forever" in str(exc.value)


def test_pattern_matching_no_node_is_refused():
    with pytest.raises(ComposeError, match="matches none of the 3 nodes"):
        place("node==zz*", nodes=NODES)


def test_bad_regex():
    with pytest.raises(ComposeError, match="bad regular expression"):
        place("node==/(/", nodes=NODES)


@pytest.mark.parametrize(
    "kind, text, code, level",
    [
        ("constraint", "node==~web1", "compose.hint.soft", "warning"),
        ("affinity", "container==db", "compose.hint.affinity", "warning"),
        ("affinity", "image==~redis", "compose.hint.affinity", "warning"),
        ("constraint", "operatingsystem==ubuntu*", "compose.hint.tag", "warning"),
        ("constraint", "kernelversion!=3.*", "compose.hint.tag", "warning"),
        ("reschedule", "on-node-failure", "compose.hint.reschedule", "info"),
        ("reschedule", "off", "compose.hint.reschedule", "warning"),
        ("affinity", "container!=*web*", "compose.hint.global", "info"),
    ],
)
def test_hints_without_equivalent(kind, text, code, level):
    constraints, _, report = place(text, kind=kind)
    assert constraints == []
    [finding] = report.findings
    assert (finding.code, finding.severity) == (code, level)


def test_self_anti_affinity_means_global():
    assert place("container!=*web*", kind="affinity")[1] is True
    assert place("container!=web", kind="affinity")[1] is True
    assert place("container!=*db*", kind="affinity")[1] is False


@pytest.mark.parametrize(
    "env, kept, texts",
    [
        ({"constraint:node==a": None, "A": "1"}, {"A": "1"}, ["node==a"]),
        ({"constraint:node": "=a"}, {}, ["node==a"]),
        ({"constraint:node": "!=a"}, {}, ["node!=a"]),
        ({"affinity:container!=x": None}, {}, ["container!=x"]),
        ({"reschedule:on-node-failure": None}, {}, ["on-node-failure"]),
        ({"CONSTRAINT": "x"}, {"CONSTRAINT": "x"}, []),
    ],
)
def test_environment_split(env, kept, texts):
    rest, found = hints.from_environment(env, REF)
    assert rest == kept
    assert [h.text for h in found] == texts


def test_labels_split():
    rest, found = hints.from_labels(
        {"com.docker.swarm.constraints": '["node==a", "disk==ssd"]', "com.docker.swarm.affinities": '["image==x"]',
         "keep": "1"}, REF)
    assert rest == {"keep": "1"}
    assert [(h.kind, h.text) for h in found] == [("constraint", "node==a"), ("constraint", "disk==ssd"),
                                                  ("affinity", "image==x")]
