"""Classic-Swarm hints into placement constraints, with and without a node inventory."""

from __future__ import annotations

import pytest

from bakery.compose import hints
from bakery.compose.model import NodeInfo, Ref
from bakery.errors import ComposeError
from bakery.report import Report
from bakery.stack.values import hint_label
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
    placed = hints.place("web", found, nodes)
    report.add_all(placed.findings)
    return placed.constraints, placed.global_mode, report, placed.labels


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
    "text, admitted",
    [
        ("node==web*", ["web1", "web2"]),
        ("node==db?", ["db1"]),
        ("node!=web*", ["db1"]),
        ("node==/^WEB[0-9]$/", ["web1", "web2"]),
        ("node==/eb/", ["web1", "web2"]),  # a regex is searched, as classic Swarm's regexp.MatchString
        ("storage==ssd*", ["db1", "web1"]),
        ("region==/eu-.*/", ["web1", "web2"]),
        ("region!=/eu-.*/", ["db1"]),
        ("zone!=a*", ["db1", "web1", "web2"]),  # a node without the engine label satisfies !=
    ],
)
def test_a_pattern_is_a_node_label_and_the_commands_name_the_nodes_it_admits(text, admitted):
    key, op, value = text.partition("!=" if "!=" in text else "==")
    label = hint_label(key, op, value)
    constraints, _, report, labels = place(text, nodes=NODES)
    assert constraints == [f"node.labels.{label}==true"]
    assert list(labels) == [label] and labels[label].hint == text
    rewrite, commands = report.findings
    assert (rewrite.code, rewrite.kind) == ("compose.hint.node_label", "rewritten")
    assert (commands.code, commands.severity) == ("compose.hint.label_nodes", "warning")
    assert commands.message.endswith("; ".join(f"docker node update --label-add {label}=true {h}" for h in admitted))


@pytest.mark.parametrize("text", ["node==web*", "node==/web/", "storage==s?d", "node!=web*"])
def test_a_pattern_without_inventory_converts_and_says_how_to_label(text):
    constraints, _, report, labels = place(text)
    [label] = labels
    assert constraints == [f"node.labels.{label}==true"]
    warning = report.warnings[0]
    assert f"docker node update --label-add {label}=true NODE" in warning.message
    assert "--nodes" in (warning.fix or "") and "bakery deploy labels the nodes itself" in (warning.fix or "")


def test_the_label_is_the_hints_whatever_the_service_or_spelling():
    one = place("node==web*", nodes=NODES)[3]
    other = hints.place("db", [hints.Hint("constraint", " node == web* ", REF)], NODES).labels
    assert list(one) == list(other)
    assert list(place("node!=web*")[3]) != list(one)


@pytest.mark.parametrize("text", ["node==zz*", "node!=*", "storage==/^nvme/"])
def test_a_pattern_admitting_no_node_is_refused(text):
    with pytest.raises(ComposeError, match="admits none of the 3 nodes: its tasks would pend forever"):
        place(text, nodes=NODES)


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
    constraints, _, report, _ = place(text, kind=kind)
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
