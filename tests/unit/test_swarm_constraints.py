import pytest

from bakery.swarm import constraints

MANAGER = {
    "ID": "abc123",
    "Description": {
        "Hostname": "Node-1",
        "Platform": {"OS": "linux", "Architecture": "x86_64"},
        "Engine": {"Labels": {"storage": "ssd"}},
    },
    "Spec": {"Role": "manager", "Availability": "active", "Labels": {"zone": "a"}},
    "Status": {"State": "ready", "Addr": "10.0.0.5"},
}
DRAINED = {**MANAGER, "Spec": {**MANAGER["Spec"], "Availability": "drain"}}


@pytest.mark.parametrize(
    ("exprs", "ok"),
    [
        (["node.role==manager"], True),
        (["node.role == worker"], False),
        (["node.hostname==node-1"], True),  # case-insensitive
        (["node.hostname==node-*"], False),  # a glob is literal in swarm mode
        (["node.labels.zone==a", "node.platform.os==linux"], True),
        (["node.labels.rack==r1"], False),  # absent label never equals
        (["node.labels.rack!=r1"], True),  # ... and always differs
        (["engine.labels.storage==ssd"], True),
        (["node.ip==10.0.0.0/24"], True),
        (["node.ip!=10.0.0.0/24"], False),
        (["node.id==abc123"], True),
        ([], True),
    ],
)
def test_satisfies(exprs, ok):
    assert constraints.satisfies(MANAGER, exprs) is ok


@pytest.mark.parametrize("expr", ["node.role", "node.role=manager", "region==eu", "node.role=="])
def test_bad_constraints_are_refused(expr):
    with pytest.raises(constraints.ConstraintError):
        constraints.parse(expr)


def test_drained_nodes_are_not_eligible():
    assert constraints.eligible([MANAGER, DRAINED], ["node.role==manager"]) == [MANAGER]
    assert "not schedulable" in constraints.describe([DRAINED])
