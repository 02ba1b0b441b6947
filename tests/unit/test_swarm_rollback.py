"""What "running again" means for a restored spec, and the TLS hints of connect."""

from __future__ import annotations

import pytest

from bakery.swarm.connect import _why
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


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        ('400 Client Error: Bad Request ("Client sent an HTTP request to an HTTPS server.")', "only speaks mutual TLS"),
        ("SSLError(1, '[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate')", "refused the client"),
        ("[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required", "asks for a client"),
        ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", "not signed by the given CA"),
        ("SSLEOFError(8, 'EOF occurred in violation of protocol (_ssl.c:2427)')", "refusing the client"),
        ("Connection refused", "Connection refused"),
    ],
)
def test_tls_failures_say_what_to_do(error, hint):
    assert hint in _why(RuntimeError(error))
