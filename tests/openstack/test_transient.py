"""A flaky API on the HTTP-level fake cloud: a reset connection (what a proxy or an API worker closing an idle
keep-alive connection gives; CI met it from the real Nova under gunicorn while `down` watched a server go) or a
503 is polled again, not reported as a failure; a cloud that keeps failing still gets a clear, bounded answer."""

from __future__ import annotations

import pytest
from keystoneauth1 import exceptions as ksa
from openstack import exceptions as sdk
from testkit.fakecloud import connect

from bakery import config
from bakery.providers.openstack import errors
from bakery.providers.openstack import up as ou

OPTS = ou.UpOptions(cluster="prod", flavor="m1.small", image="debian-12", network="private",
                    operator_cidr="198.51.100.0/24", managers=1, workers=1, poll=1)
SERVER = r"/v2\.1/servers/[^/]+"
ONE_SERVER = r"/v2\.1/servers/(?!detail)[^/]+"


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    """keystoneauth's connect-retry backoff sleeps for real (0.5 s, 1 s, 2 s)."""
    import keystoneauth1.session

    monkeypatch.setattr(keystoneauth1.session.time, "sleep", lambda seconds: None)


def _up(cloud, clock, tmp_path):
    cloud.default_statuses = ["BUILD", "ACTIVE"]
    return ou.up(connect(), OPTS, config.build({}), tmp_path / "state", lambda m: None, clock)


def _alive(cloud):
    return sorted(s["name"] for s in cloud.servers.values() if not s.get("_deleted"))


def test_is_transient_names_connection_failures_and_gateway_answers():
    assert errors.is_transient(ksa.ConnectFailure("reset"))
    assert errors.is_transient(ksa.ConnectTimeout("slow"))
    assert errors.is_transient(sdk.HttpException("gateway", http_status=503))
    assert not errors.is_transient(sdk.HttpException("refused", http_status=400))
    assert not errors.is_transient(sdk.NotFoundException("gone", http_status=404))
    assert not errors.is_transient(ValueError("a bug"))


def test_down_rides_out_reset_connections_while_watching_servers_go(cloud, clock, tmp_path):
    _up(cloud, clock, tmp_path)
    assert _alive(cloud) == ["prod-seed", "prod-worker-1"]
    cloud.reset("GET", SERVER, 3, spread=True)  # the listing and every watch meet them
    cloud.reset("DELETE", SERVER, 2)
    problems = ou.down(connect(), "prod", lambda m: None, clock)
    assert problems == []
    assert _alive(cloud) == [] and cloud.neutron["ports"] == {} and cloud.server_groups == {}
    assert [r[2] for r in cloud.resets] == [0, 0], "every injected reset was met"


def test_up_rides_out_a_reset_while_watching_servers_boot(cloud, clock, tmp_path):
    cloud.reset("GET", SERVER, 2)
    ids = _up(cloud, clock, tmp_path)
    assert sorted(ids.servers) == ["prod-seed", "prod-worker-1"] and cloud.resets[0][2] == 0


def test_a_cloud_that_keeps_resetting_gets_a_bounded_clear_answer(cloud, clock, tmp_path):
    _up(cloud, clock, tmp_path)
    cloud.reset("GET", ONE_SERVER, 1000)
    problems = ou.down(connect(), "prod", lambda m: None, clock)
    assert problems and all("ConnectFailure" in p and "to go" in p for p in problems if p.startswith("server"))
    assert 1000 - cloud.resets[0][2] < 60, "a bounded number of tries, not a retry storm"


def test_a_create_is_never_sent_twice(cloud, clock, tmp_path):
    """POST is not retried: a reset after the cloud acted on it would boot a second server."""
    import pytest as _pytest

    from bakery.errors import CloudError

    cloud.reset("POST", r"/v2\.1/servers", 1)
    with _pytest.raises(CloudError, match="ConnectFailure"):
        _up(cloud, clock, tmp_path)
    assert [c for c in cloud.calls() if c == "POST /v2.1/servers"] == ["POST /v2.1/servers"]


def test_a_503_for_a_listing_is_asked_again(cloud, clock, tmp_path):
    """A gateway's 503 for one GET (a service restarting) is keystoneauth's retriable status: asked again."""
    _up(cloud, clock, tmp_path)
    nova, answered = cloud._nova, []

    def once_unavailable(method, path, query, body, context):
        if method == "GET" and path.endswith("/servers/detail") and not answered:
            answered.append(503)
            context.status_code = 503
            return {"computeFault": {"message": "Service Unavailable", "code": 503}}
        return nova(method, path, query, body, context)

    cloud._nova = once_unavailable
    assert sorted(ou.cluster_servers(connect(), "prod")) == ["prod-seed", "prod-worker-1"] and answered == [503]
