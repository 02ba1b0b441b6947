"""The Ready wait against a real dockerd in swarm mode behind mutual TLS, with bakery's own certificates."""

from __future__ import annotations

import shutil

import pytest
from testkit.tls_engine import TlsEngine

from bakery import state
from bakery.errors import BakeryError, EnvironmentMissing
from bakery.providers.openstack import ready

pytestmark = pytest.mark.engine


def client(eng: TlsEngine, cert_dir=None, port=None):
    certs = cert_dir or state.client_cert_dir(eng.cluster, eng.state_dir)
    return ready.tls_client("127.0.0.1", port or eng.port, certs)


def test_ready_through_mutual_tls_lists_the_swarm(tls_engine, clock):
    msgs = []
    nodes = ready.wait_ready(client(tls_engine), {tls_engine.hostname: "manager"}, 60, 2, msgs.append, clock)
    assert nodes == [ready.SwarmNode(tls_engine.hostname, "manager", "ready", "Leader")]
    assert msgs == [f"1/1 nodes Ready: {tls_engine.hostname}"]
    assert clock.fake.slept == []


def test_a_node_that_never_joins_times_out_naming_it(tls_engine, clock):
    msgs = []
    expected = {tls_engine.hostname: "manager", "prod-worker-1": "worker"}
    with pytest.raises(BakeryError, match=r"not Ready after 30s: prod-worker-1$"):
        ready.wait_ready(client(tls_engine), expected, 30, 5, msgs.append, clock)
    assert msgs == [f"1/2 nodes Ready: {tls_engine.hostname}"]  # progress only when it changes
    assert clock.fake.t >= 30 and set(clock.fake.slept) == {5}


def test_wrong_role_is_not_ready(tls_engine, clock):
    with pytest.raises(BakeryError, match="not Ready after 0s"):
        ready.wait_ready(client(tls_engine), {tls_engine.hostname: "worker"}, 0, 1, lambda m: None, clock)


def test_a_client_certificate_from_another_ca_is_refused(tls_engine, tmp_path, clock):
    """Mutual TLS: a certificate the cluster CA did not sign gets no answer, and the error says why."""
    import subprocess
    import sys

    (tmp_path / "c.yml").write_text(f"cluster:\n  name: {tls_engine.cluster}\n")
    subprocess.run([sys.executable, "-m", "bakery", "certs", "--config", str(tmp_path / "c.yml"),
                    "--state-dir", str(tmp_path / "other")], check=True, capture_output=True)
    foreign = state.client_cert_dir(tls_engine.cluster, tmp_path / "other")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(state.client_cert_dir(tls_engine.cluster, tls_engine.state_dir) / "ca.pem", mixed / "ca.pem")
    for name in ("cert.pem", "key.pem"):
        shutil.copy(foreign / name, mixed / name)
    with pytest.raises(BakeryError) as err:
        ready.wait_ready(client(tls_engine, mixed), {tls_engine.hostname: "manager"}, 4, 2, lambda m: None, clock)
    assert "the seed's Docker API:" in str(err.value) and "\n" not in str(err.value)


def test_nothing_listening_is_retried_until_the_deadline(tmp_path, tls_engine, clock):
    from testkit.engine import _free_port

    msgs = []
    refused = r"cannot connect \(Connection refused\)"
    with pytest.raises(BakeryError, match=f"not Ready after 10s: n1; the seed's Docker API: {refused}"):
        ready.wait_ready(client(tls_engine, port=_free_port()), {"n1": "manager"}, 10, 5, msgs.append, clock)
    assert msgs == ["the seed's Docker API does not answer yet: cannot connect (Connection refused)"]


def test_missing_client_certificate_is_a_clear_environment_error(tmp_path):
    with pytest.raises(EnvironmentMissing, match="no operator client certificate in .*missing ca.pem, cert.pem"):
        ready.tls_client("127.0.0.1", 2376, tmp_path)


@pytest.mark.parametrize("hostname, name, same", [
    ("prod-seed", "prod-seed", True), ("prod-seed.novalocal", "prod-seed", True),
    ("PROD-Seed", "prod-seed", True), ("prod-seed-2", "prod-seed", False),
])
def test_hostnames_match_on_the_first_label(hostname, name, same):
    listed = [ready.SwarmNode(hostname, "manager", "ready", "Leader")]
    assert ready.readiness({name: "manager"}, listed) == {name: same}


def test_a_ca_bundle_in_the_environment_does_not_replace_the_cluster_ca(tls_engine, clock, monkeypatch, tmp_path):
    """requests would let $REQUESTS_CA_BUNDLE override the session's CA; operators often set it."""
    bundle = tmp_path / "public-cas.pem"
    bundle.write_text("not a certificate\n")  # requests fails loading it if it ever uses it
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bundle))
    nodes = ready.wait_ready(client(tls_engine), {tls_engine.hostname: "manager"}, 10, 2, lambda m: None, clock)
    assert [n.state for n in nodes] == ["ready"]
