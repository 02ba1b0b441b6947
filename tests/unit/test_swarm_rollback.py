"""What "running again" means for a restored spec, and the TLS hints of connect."""

from __future__ import annotations

import pytest

from bakery.swarm.model import ServiceRun
from bakery.swarm.rollback import run_of

NODE = {
    "ID": "n1",
    "Description": {"Hostname": "vm"},
    "Spec": {"Role": "manager", "Availability": "active"},
    "Status": {"State": "ready"},
}
DRAINED = {**NODE, "ID": "n2", "Spec": {"Role": "worker", "Availability": "drain"}}


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ({}, ServiceRun("s", (), 1, False, False, True)),  # engine defaults: 1 replica, restart any
        ({"Mode": {"Replicated": {"Replicas": 3}}}, ServiceRun("s", (), 3, False, False, True)),
        (
            {"Mode": {"Replicated": {"Replicas": 2}}, "TaskTemplate": {"RestartPolicy": {"Condition": "none"}}},
            ServiceRun("s", (), 2, False, False, False),
        ),
        ({"Mode": {"Global": {}}}, ServiceRun("s", (), 1, False, True, True)),  # the drained node does not count
        (
            {"Mode": {"Global": {}}, "TaskTemplate": {"Placement": {"Constraints": ["node.role==worker"]}}},
            ServiceRun("s", (), 0, False, True, True),
        ),
        ({"Mode": {"ReplicatedJob": {"TotalCompletions": 4}}}, ServiceRun("s", (), 4, True, False, True)),
    ],
)
def test_run_of_a_restored_spec(spec, want):
    assert run_of("s", spec, [NODE, DRAINED]) == want
